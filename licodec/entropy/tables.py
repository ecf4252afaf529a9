"""Integer probability tables: the frozen form of every entropy model, shared by encoder and decoder.

A `CdfTables` holds T tables. Table t codes the integers offset[t] .. offset[t] + length[t] - 1 with frequencies
freqs[t, :length[t]] and reserves freqs[t, length[t]] for an escape symbol: a value outside the range is sent as
the escape followed by the value itself (see `licodec.entropy.coder`). Frequencies are integers that sum to
2**PRECISION and are at least 1, so every symbol stays codable. They are computed once, by `update()`, and stored
with the weights; the coder never derives them again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PRECISION = 16


@dataclass(frozen=True)
class CdfTables:
    """T integer frequency tables with escape symbols (see the module docstring)."""

    freqs: np.ndarray  # int32 [T, max_length + 1]
    lengths: np.ndarray  # int32 [T]
    offsets: np.ndarray  # int32 [T]

    @property
    def count(self) -> int:
        """The number of tables."""
        return int(self.lengths.shape[0])

    def to_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tables as named tensors, for a safetensors file: frequencies packed without padding, each stored
        as frequency - 1 in 16 bits (a frequency is 1 .. 2**16 - 1, every table having the escape as a second
        symbol), the bits held in an int16 tensor; lengths and offsets int32."""
        packed = np.concatenate([self.freqs[t, : self.lengths[t] + 1] for t in range(self.count)])
        return {
            f"{prefix}.freqs": torch.from_numpy((packed - 1).astype(np.uint16).view(np.int16)),
            f"{prefix}.lengths": torch.from_numpy(self.lengths.astype(np.int32)),
            f"{prefix}.offsets": torch.from_numpy(self.offsets.astype(np.int32)),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str) -> CdfTables:
        """Inverse of `to_tensors` (also reads the int32 frequencies that files written before stored)."""
        stored = tensors[f"{prefix}.freqs"].numpy()
        packed = stored.view(np.uint16).astype(np.int32) + 1 if stored.dtype == np.int16 else stored.astype(np.int32)
        lengths = tensors[f"{prefix}.lengths"].numpy().astype(np.int32)
        if packed.ndim != 1 or int((lengths + 1).sum()) != packed.size:
            raise ValueError(f"tables {prefix} are inconsistent with their lengths")
        freqs = np.zeros((len(lengths), int(lengths.max()) + 1), dtype=np.int32)
        starts = np.concatenate([[0], np.cumsum(lengths + 1)])
        for t, length in enumerate(lengths):
            freqs[t, : length + 1] = packed[starts[t] : starts[t + 1]]
        return cls(freqs=freqs, lengths=lengths, offsets=tensors[f"{prefix}.offsets"].numpy().astype(np.int32))


def quantize_pmfs(pmfs: list[np.ndarray], tails: list[float], offsets: list[int]) -> CdfTables:
    """Turn float probability mass functions (plus the mass left for the escape) into integer tables.

    Each symbol gets at least frequency 1 and the remaining mass in proportion to its probability. Runs only at
    `update()` time, in float64 on the CPU.
    """
    total = 1 << PRECISION
    max_length = max(len(p) for p in pmfs)
    freqs = np.zeros((len(pmfs), max_length + 1), dtype=np.int64)
    for t, (pmf, tail) in enumerate(zip(pmfs, tails)):
        probs = np.concatenate([np.asarray(pmf, dtype=np.float64), [max(float(tail), 0.0)]])
        probs = np.clip(probs, 0.0, None)
        probs /= probs.sum()
        if len(probs) > total:
            raise ValueError(f"table {t} has {len(probs)} symbols, more than 2**{PRECISION} can code")
        # One count per symbol for free, the rest shared in proportion, leftovers to the largest remainders.
        share = probs * (total - len(probs))
        counts = 1 + np.floor(share).astype(np.int64)
        leftover = total - int(counts.sum())
        if leftover:
            order = np.argsort(-(share - np.floor(share)), kind="stable")
            counts[order[:leftover]] += 1
        freqs[t, : len(counts)] = counts
    return CdfTables(
        freqs=freqs.astype(np.int32),
        lengths=np.array([len(p) for p in pmfs], dtype=np.int32),
        offsets=np.asarray(offsets, dtype=np.int32),
    )
