"""What a training run ran on, and how fast: the record every exported weights file keeps (`trained_on`).

Torch-free, so that `licodec zoo` and the catalog can format a record without importing PyTorch.
"""

from __future__ import annotations

import os
import platform

#: The CPU features that decide training speed most (bf16 natively or not; AVX-512 or only AVX2).
SPEED_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")

#: The keys of a segment that name the machine and setting; consecutive segments equal on them are one.
MACHINE_KEYS = ("cpu", "cpu_flags", "logical_cpus", "threads", "device", "gpu", "precision", "processes")


def cpu_name() -> str:
    """The CPU's model name as the operating system reports it (/proc/cpuinfo's "model name" on Linux), else
    Python's `platform.processor()`, else "unknown CPU"."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def cpu_flags() -> list[str]:
    """Which of `SPEED_FLAGS` this CPU reports (x86 Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "flags":
                    present = set(value.split())
                    return [flag for flag in SPEED_FLAGS if flag in present]
    except OSError:
        pass
    return []


def machine(threads: int, device: str, precision: str, processes: int = 1, gpu: str = "") -> dict:
    """The machine keys of a timing segment for a run on this host."""
    record = {"cpu": cpu_name(), "cpu_flags": " ".join(cpu_flags()), "logical_cpus": os.cpu_count() or 0,
              "threads": threads, "device": device, "precision": precision, "processes": processes}
    if gpu:
        record["gpu"] = gpu
    return record


def add_time(segments: list[dict], where: dict, steps: int, seconds: float) -> list[dict]:
    """`segments` with `steps` steps that took `seconds` (the optimizer steps alone: no loading, no checkpoint
    writes) on the machine `where`, added to the last segment when that ran on the same machine and setting."""
    if steps <= 0:
        return segments
    segments = [dict(s) for s in segments]
    last = segments[-1] if segments else None
    if last is not None and all(last.get(k) == where.get(k) for k in MACHINE_KEYS):
        last["steps"] += steps
        last["seconds"] += seconds
    else:
        segments.append({**where, "steps": steps, "seconds": seconds})
    return segments


def trained_on(segments: list[dict]) -> list[dict]:
    """The provenance record of `segments`: each with its steps per second (rounded) beside its steps and time."""
    return [{**s, "seconds": round(s["seconds"], 3), "steps_per_second": round(s["steps"] / s["seconds"], 3)}
            for s in segments if s.get("seconds", 0) > 0]


def describe(provenance: dict) -> str:
    """One line for users: on which CPU a weights file trained and at how many steps per second, from its
    provenance; what an older file did not record is said to be "not recorded" (never estimated)."""
    segments = provenance.get("trained_on")
    if segments:
        parts = []
        for s in segments:
            flags = f", {s['cpu_flags']}" if s.get("cpu_flags") else ""
            gpu = f", GPU {s['gpu']}" if s.get("gpu") else ""
            processes = f" x {s['processes']} processes" if s.get("processes", 1) > 1 else ""
            parts.append(f"{s['cpu']} ({s['logical_cpus']} logical CPUs{flags}){gpu}, {s['threads']} "
                         f"thread{'s' if s['threads'] != 1 else ''}{processes}, {s['precision']}: "
                         f"{s['steps_per_second']:g} steps/s over {s['steps']} steps")
        return "; ".join(parts)
    if provenance.get("imported_from"):
        return f"imported from {provenance['imported_from']}: not trained here"
    hardware = provenance.get("hardware") or (f"device {provenance['device']}" if provenance.get("device") else "")
    cpu = f"{hardware} (CPU model not recorded)" if hardware else "CPU not recorded"
    time = f"; recorded time: {provenance['time']}" if provenance.get("time") else ""
    return f"{cpu}; steps per second not recorded{time}"
