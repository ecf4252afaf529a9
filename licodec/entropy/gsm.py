"""Gaussian scale mixtures per channel: the rate model of Theis, Shi, Cunningham & Huszár 2017 [3].

Each channel c (at each quality level) has a zero-mean mixture of S Gaussians,

    p_c(z) = sum_s pi_cs N(z; 0, sigma_cs^2),

and an integer z costs -log2 of its mass over [z - 1/2, z + 1/2] (the bound [3] trains with). `update()` freezes
one integer table per level and channel from the same masses, so the coded rate is what training measured.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtr
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.latent import LIKELIHOOD_BOUND, LatentCodec, LatentOutput, nearest_level, nearest_levels
from licodec.entropy.tables import CdfTables, quantize_pmfs
from licodec.quant import quantize

MAX_HALF_WIDTH = 1 << 12  # tables span at most +-4096; larger values are escaped


class GaussianScaleMixtures(nn.Module):
    """S-component zero-mean Gaussian scale mixtures, per quality level and channel."""

    def __init__(self, levels: int, channels: int, components: int = 6, tail_mass: float = 1e-9) -> None:
        super().__init__()
        self.levels = levels
        self.channels = channels
        self.tail_mass = tail_mass
        spread = torch.linspace(math.log(0.3), math.log(30.0), components)
        self.log_scales = nn.Parameter(spread.repeat(levels, channels, 1))
        self.logits = nn.Parameter(torch.zeros(levels, channels, components))
        self.tables: CdfTables | None = None

    def likelihood(self, z_hat: Tensor, quality: Tensor) -> Tensor:
        """Mass of [z_hat - 1/2, z_hat + 1/2] for (N, C, H, W), each sample under its level's mixtures."""
        scales = torch.exp(self.log_scales[quality])[:, :, :, None, None]  # (N, C, S, 1, 1)
        weights = torch.softmax(self.logits[quality], dim=2)[:, :, :, None, None]
        normal = torch.distributions.Normal(0.0, 1.0)
        values = torch.abs(z_hat).unsqueeze(2)
        mass = normal.cdf((0.5 - values) / scales) - normal.cdf((-0.5 - values) / scales)
        return (weights * mass).sum(2).clamp(min=LIKELIHOOD_BOUND)

    @torch.no_grad()
    def update(self) -> None:
        """One table per (level, channel), index level * C + c, covering all but `tail_mass` of the mixture."""
        scales = torch.exp(self.log_scales.double()).numpy()
        weights = torch.softmax(self.logits.double(), dim=2).numpy()
        pmfs, tails, offsets = [], [], []
        for level in range(self.levels):
            for c in range(self.channels):
                half = int(min(math.ceil(6.1 * scales[level, c].max()), MAX_HALF_WIDTH))
                support = np.arange(-half, half + 1, dtype=np.float64)[:, None]
                sigma = scales[level, c][None, :]
                mass = (ndtr((support + 0.5) / sigma) - ndtr((support - 0.5) / sigma)) @ weights[level, c]
                tail = float(2 * (weights[level, c] * ndtr(-(half + 0.5) / scales[level, c])).sum())
                pmfs.append(mass)
                tails.append(max(tail, self.tail_mass))
                offsets.append(-half)
        self.tables = quantize_pmfs(pmfs, tails, offsets)

    def table_index(self, level: int, shape: tuple[int, ...]) -> np.ndarray:
        """The table of every element of a latent of `shape` (1, C, H, W) at a trained level."""
        index = level * self.channels + np.arange(self.channels).reshape(1, -1, 1, 1)
        return np.broadcast_to(index, shape)


class MixtureLatent(LatentCodec):
    """y rounded to integers (straight-through gradient in training, as [3]) and coded with the Gaussian scale
    mixture of its channel and level. One section."""

    def __init__(self, levels: int, channels: int, components: int = 6) -> None:
        super().__init__()
        self.densities = GaussianScaleMixtures(levels, channels, components)

    def forward(self, y: Tensor, level: Tensor) -> LatentOutput:  # noqa: D102
        y_hat = quantize(y, "ste" if self.training else "round")
        return LatentOutput(y_hat, {"y": self.densities.likelihood(y_hat, nearest_levels(level))})

    def update(self) -> None:  # noqa: D102
        self.densities.update()

    @torch.no_grad()
    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:  # noqa: D102
        symbols = torch.round(y).long()
        index = self.densities.table_index(nearest_level(level), tuple(symbols.shape))
        return [coder.encode(symbols.numpy(), index, self.densities.tables)], symbols.double()

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:  # noqa: D102
        index = self.densities.table_index(nearest_level(level), shape)
        symbols = coder.decode(sections[0], index, self.densities.tables)
        return torch.from_numpy(symbols.astype(np.int64)).double()
