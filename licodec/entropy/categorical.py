"""A learned categorical distribution per quality level, over a small alphabet (0 .. K-1): for side information
such as the per-position channel counts of an importance map [17]."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.tables import CdfTables, quantize_pmfs
from licodec.errors import BitstreamError


class CategoricalPriors(nn.Module):
    """Logits per level; `update()` freezes one integer table per level (table index = level)."""

    def __init__(self, levels: int, alphabet: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(levels, alphabet))
        self.tables: CdfTables | None = None

    def likelihood(self, values: Tensor, quality: Tensor) -> Tensor:
        """P(values) for a batch (N, ...) of integer values, each sample under its level's distribution."""
        probabilities = torch.softmax(self.logits[quality], dim=1)  # (N, alphabet)
        return torch.gather(probabilities, 1, values.flatten(1)).view(values.shape)

    @torch.no_grad()
    def update(self) -> None:
        """Freeze the integer tables (no escape is ever needed: the alphabet is closed)."""
        pmfs = torch.softmax(self.logits.double(), dim=1).numpy()
        self.tables = quantize_pmfs(list(pmfs), [0.0] * len(pmfs), [0] * len(pmfs))

    def table_index(self, level: int, shape: tuple[int, ...]) -> np.ndarray:
        """The table of every value of a map of `shape` coded at `level`."""
        return np.full(shape, level, dtype=np.int64)

    def uniform_tables(self) -> CdfTables:
        """One table of equal probabilities over the alphabet: fixed-length coding."""
        alphabet = self.logits.shape[1]
        return quantize_pmfs([np.full(alphabet, 1.0 / alphabet)], [0.0], [0])

    def encode_rows(self, symbols: np.ndarray) -> bytes:
        """Row r of `symbols` (rows, n) with table r, or all with equal probabilities, whichever is smaller: a
        flag byte (1: the learned tables, 0: equal probabilities), then the coded symbols."""
        rows = np.broadcast_to(np.arange(symbols.shape[0]).reshape(-1, 1), symbols.shape)
        learned = coder.encode(symbols, rows, self.tables)
        uniform = coder.encode(symbols, np.zeros_like(symbols), self.uniform_tables())
        return b"\x01" + learned if len(learned) < len(uniform) else b"\x00" + uniform

    def decode_rows(self, data: bytes, rows: int, count: int) -> np.ndarray:
        """Inverse of `encode_rows`: symbols (rows, count), checked against the alphabet."""
        if not data or data[0] not in (0, 1):
            raise BitstreamError("unknown symbol coding flag")
        if data[0] == 1:
            index = np.broadcast_to(np.arange(rows).reshape(-1, 1), (rows, count))
            symbols = coder.decode(data[1:], index, self.tables)
        else:
            symbols = coder.decode(data[1:], np.zeros((rows, count), dtype=np.int64), self.uniform_tables())
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self.logits.shape[1]):
            raise BitstreamError("symbol out of the alphabet")
        return symbols

    def encode(self, values: np.ndarray, level: int) -> bytes:
        """A map of integer values, all with `level`'s table."""
        return coder.encode(values, self.table_index(level, values.shape), self.tables)

    def decode(self, data: bytes, level: int, shape: tuple[int, ...]) -> np.ndarray:
        """Inverse of `encode`: the map of `shape`."""
        return coder.decode(data, self.table_index(level, shape), self.tables)
