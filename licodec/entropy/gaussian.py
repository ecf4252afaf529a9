"""Gaussian conditional entropy model with a fixed table of scales (Ballé et al. 2018 [5]; Minnen et al. 2018).

Each latent element y is modelled as N(mu, sigma^2) convolved with a unit box:

    P(y_hat | mu, sigma) = Phi((y_hat - mu + 1/2) / sigma) - Phi((y_hat - mu - 1/2) / sigma)

For coding, sigma is snapped to one of `levels` log-spaced scales between `scale_min` and `scale_max`, each with an
integer table frozen by `update()`. The snapping is done on fixed-point integers (`index`), so encoder and decoder
choose the same table on any machine.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtr, ndtri
from torch import Tensor, nn

from licodec.entropy.tables import CdfTables, quantize_pmfs
from licodec.nn.ops import lower_bound
from licodec.quant import quantize

LIKELIHOOD_BOUND = 1e-9


class GaussianConditional(nn.Module):
    """Scale (and optionally mean) conditioned Gaussian likelihoods and their integer tables."""

    def __init__(self, scale_min: float = 0.11, scale_max: float = 256.0, levels: int = 128,
                 tail_mass: float = 1e-9) -> None:
        super().__init__()
        self.scale_min = scale_min
        self.tail_mass = tail_mass
        table = np.exp(np.linspace(math.log(scale_min), math.log(scale_max), levels))
        self.register_buffer("scale_table", torch.from_numpy(table))
        self.tables: CdfTables | None = None

    def likelihood(self, y_hat: Tensor, scales: Tensor, means: Tensor | None = None) -> Tensor:
        """P(y_hat) under N(means, scales^2) convolved with a unit box."""
        scales = lower_bound(scales, self.scale_min)
        values = torch.abs(y_hat - means) if means is not None else torch.abs(y_hat)
        normal = torch.distributions.Normal(0.0, 1.0)
        upper = normal.cdf((0.5 - values) / scales)
        lower = normal.cdf((-0.5 - values) / scales)
        return lower_bound(upper - lower, LIKELIHOOD_BOUND)

    def forward(self, y: Tensor, scales: Tensor, means: Tensor | None = None,
                mode: str = "noise") -> tuple[Tensor, Tensor]:
        """Quantize `y` (around `means` when rounding) and return (y_hat, likelihood)."""
        y_hat = quantize(y, mode, means)
        return y_hat, self.likelihood(y_hat, scales, means)

    @torch.no_grad()
    def update(self) -> None:
        """Freeze an integer table per scale level over +-ceil(tail multiplier * scale)."""
        multiplier = -ndtri(self.tail_mass / 2)
        pmfs, tails, offsets = [], [], []
        for scale in self.scale_table.tolist():
            half = int(math.ceil(multiplier * scale))
            support = np.arange(-half, half + 1, dtype=np.float64)
            pmf = ndtr((support + 0.5) / scale) - ndtr((support - 0.5) / scale)
            pmfs.append(pmf)
            tails.append(2 * ndtr(-(half + 0.5) / scale))
            offsets.append(-half)
        self.tables = quantize_pmfs(pmfs, tails, offsets)

    def index_thresholds(self, fraction_bits: int) -> Tensor:
        """Fixed-point boundaries between scale levels (geometric midpoints), as int64."""
        table = self.scale_table.double()
        mids = torch.sqrt(table[1:] * table[:-1])
        return torch.ceil(mids * (1 << fraction_bits)).long()

    def index(self, scales_fixed: Tensor, fraction_bits: int) -> Tensor:
        """Table index of each fixed-point scale: the level nearest in the log domain, in integers only."""
        thresholds = self.index_thresholds(fraction_bits)
        return torch.searchsorted(thresholds, scales_fixed.contiguous(), right=True)
