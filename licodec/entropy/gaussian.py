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

from licodec.entropy.latent import LIKELIHOOD_BOUND, nearest_level, nearest_levels
from licodec.entropy.tables import CdfTables, quantize_pmfs
from licodec.nn.ops import lower_bound
from licodec.quant import quantize


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


class GaussianPriors(nn.Module):
    """A zero-mean Gaussian per channel and quality level with a trained standard deviation: the prior of the
    hyper-latent z in Lee, Cho & Beack 2019 [19] (where Ballé 2018 uses a non-parametric density).

    z is coded on the integer grid with the `GaussianConditional` tables; the table of each channel is chosen at
    `update()` and stored (`index`), so the decoder never evaluates a float to pick it. Its per-level methods
    (medians, symbols, table_index, level_tables) are those of `FactorizedDensities`, so a hyperprior takes
    either.
    """

    def __init__(self, levels: int, channels: int, init_scale: float = 4.0) -> None:
        super().__init__()
        self.channels = channels
        self.log_scales = nn.Parameter(torch.full((levels, channels), math.log(init_scale)))
        self.gaussian = GaussianConditional()
        self.register_buffer("index", torch.zeros(levels, channels, dtype=torch.long))

    def forward(self, z: Tensor, quality: Tensor, mode: str = "noise") -> tuple[Tensor, Tensor]:
        """Quantize z (noise, STE or rounding, on the integer grid) and return (z_hat, likelihood)."""
        z_hat = quantize(z, mode)
        scales = torch.exp(self.log_scales[nearest_levels(quality)])[:, :, None, None]
        return z_hat, self.gaussian.likelihood(z_hat, scales)

    @torch.no_grad()
    def update(self) -> None:
        """Freeze the scale tables and each channel's table index (from its scale in 16-bit fixed point)."""
        self.gaussian.update()
        fixed = torch.floor(torch.exp(self.log_scales.detach().double()) * (1 << 16) + 0.5).long()
        self.index.copy_(self.gaussian.index(fixed, 16))

    def medians(self, level: float) -> Tensor:
        """What z's symbols are offsets from: zero (the priors are zero-mean)."""
        return torch.zeros(self.channels)

    def symbols(self, level: float, z: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """z rounded to integers, and each symbol's table index."""
        symbols = torch.round(z).long().numpy()
        return symbols, self.table_index(level, symbols.shape)

    def table_index(self, level: float, shape: tuple[int, ...]) -> np.ndarray:
        """The table of every symbol of a z of `shape`: its channel's, chosen at `update()`."""
        return np.broadcast_to(self.index[nearest_level(level)].numpy().reshape(1, -1, 1, 1), shape)

    def level_tables(self, level: float) -> CdfTables:
        """The tables that `table_index` indexes (shared by every level)."""
        return self.gaussian.tables
