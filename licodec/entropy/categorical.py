"""A learned categorical distribution per quality level, over a small alphabet (0 .. K-1): for side information
such as the per-position channel counts of an importance map [17]."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from licodec.entropy.tables import CdfTables, quantize_pmfs


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
