"""Which float precision the transforms run in: "fp32", "bf16", or "auto" (bf16 only where the CPU has it).

bf16 runs the analysis and synthesis transforms under bfloat16 autocast. The file format does not change: a file
written in either precision decodes in either, because table selection is integer arithmetic. The pixels change
slightly (bf16 rounds the transforms' arithmetic), and so do the bytes an encoder writes.

Speed depends on the CPU: with AMX or AVX512-BF16 (Intel Xeon since Cooper Lake / Sapphire Rapids, AMD Zen 4 and
later) oneDNN runs bf16 natively; elsewhere it is emulated in fp32 arithmetic and much slower (5 to 15 times
slower than fp32, measured on an AVX2 AMD EPYC). "auto" therefore picks bf16 only with native support, and asking
for "bf16" elsewhere warns.
"""

from __future__ import annotations

import os
import platform
import warnings
from functools import cache

PRECISIONS = ("fp32", "bf16", "auto")


class PrecisionWarning(RuntimeWarning):
    """bf16 asked for on a CPU that only emulates it."""


#: oneDNN's ISA names (`ONEDNN_MAX_CPU_ISA`) below which it has no native bf16 arithmetic.
_ONEDNN_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}


@cache
def native_bf16() -> bool:
    """Whether this CPU runs bfloat16 arithmetic natively (x86 AMX-BF16 or AVX512-BF16; Arm BF16), and oneDNN is
    allowed to use it (an `ONEDNN_MAX_CPU_ISA` / `DNNL_MAX_CPU_ISA` below AVX512_CORE_BF16 makes it emulate)."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "x86"):
        limit = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "").upper()
        if limit in _ONEDNN_WITHOUT_BF16:
            return False
        try:
            import torch

            return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
        except (ImportError, AttributeError):
            return _cpu_flags() & {"avx512_bf16", "amx_bf16"} != set()
    if machine in ("aarch64", "arm64"):
        return "bf16" in _cpu_flags()
    return False


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        pass
    return set()


def resolve(precision: str) -> str:
    """"fp32" or "bf16" for a requested precision; "auto" is bf16 with native support, else fp32.

    Asking for "bf16" on a CPU without native support warns (`PrecisionWarning`) and still uses bf16. An unknown
    name is returned as it is, for the codec to refuse."""
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    if precision == "bf16" and not native_bf16():
        warnings.warn("bf16 is emulated here (no AMX or AVX512-BF16 in use): expect it several times slower than "
                      "fp32; --precision auto picks fp32 here", PrecisionWarning, stacklevel=3)
    return precision
