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
        """The tables as named int32 tensors, for a safetensors file."""
        return {
            f"{prefix}.freqs": torch.from_numpy(self.freqs.astype(np.int32)),
            f"{prefix}.lengths": torch.from_numpy(self.lengths.astype(np.int32)),
            f"{prefix}.offsets": torch.from_numpy(self.offsets.astype(np.int32)),
        }

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str) -> CdfTables:
        """Inverse of `to_tensors`."""
        return cls(
            freqs=tensors[f"{prefix}.freqs"].numpy().astype(np.int32),
            lengths=tensors[f"{prefix}.lengths"].numpy().astype(np.int32),
            offsets=tensors[f"{prefix}.offsets"].numpy().astype(np.int32),
        )


def quantize_pmfs(pmfs: list[np.ndarray], tails: list[float], offsets: list[int]) -> CdfTables:
    """Turn float probability mass functions (plus the mass left for the escape) into integer tables.

    Each symbol gets at least frequency 1; the rounding error is absorbed by the most probable symbol. Runs only at
    `update()` time, in float64 on the CPU.
    """
    total = 1 << PRECISION
    max_length = max(len(p) for p in pmfs)
    freqs = np.zeros((len(pmfs), max_length + 1), dtype=np.int64)
    for t, (pmf, tail) in enumerate(zip(pmfs, tails)):
        probs = np.concatenate([np.asarray(pmf, dtype=np.float64), [max(float(tail), 0.0)]])
        probs = np.clip(probs, 0.0, None)
        probs /= probs.sum()
        counts = np.maximum(1, np.round(probs * total)).astype(np.int64)
        while counts.sum() != total:
            excess = counts.sum() - total
            top = int(np.argmax(counts))
            # Take from (or give to) the most probable symbol; it cannot drop below 1 unless the table is too long.
            counts[top] -= min(excess, counts[top] - 1)
            if counts.sum() > total and counts[top] == 1:
                raise ValueError(f"table {t} has {len(counts)} symbols, more than 2**{PRECISION} can code")
        freqs[t, : len(counts)] = counts
    return CdfTables(
        freqs=freqs.astype(np.int32),
        lengths=np.array([len(p) for p in pmfs], dtype=np.int32),
        offsets=np.asarray(offsets, dtype=np.int32),
    )
