"""A learned per-channel density: the "entropy bottleneck" of Ballé et al. 2018, appendix 6.1.

Each channel c has its own univariate cumulative function

    F_c(x) = sigmoid(f_K(...f_1(x)))      f_k(x) = g_k(H_k x + b_k),   g_k(x) = x + a_k * tanh(x)

with softplus(H_k) > 0 and tanh(a_k) > -1, so F_c is monotonic. The likelihood of a value quantized to an integer
offset from the channel's median is F_c(x + 1/2) - F_c(x - 1/2) (the density convolved with a unit box, which is
what uniform training noise sees). Three quantiles per channel (the tails and the median) are learned by an
auxiliary loss and bound the integer tables that `update()` freezes for coding.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.latent import LIKELIHOOD_BOUND, LatentCodec, LatentOutput, nearest_level, nearest_levels
from licodec.entropy.tables import CdfTables, quantize_pmfs
from licodec.nn.ops import lower_bound
from licodec.quant import quantize


class FactorizedDensity(nn.Module):
    """Non-parametric density per channel, for tensors of shape (N, C, H, W)."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0,
                 tail_mass: float = 1e-9, integer_grid: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.integer_grid = integer_grid  # code integers (round(y)) instead of offsets from the medians
        self.tail_mass = tail_mass
        widths = (1, *filters, 1)
        scale = init_scale ** (1 / (len(widths) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(widths) - 1):
            init = math.log(math.expm1(1 / scale / widths[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[k + 1], widths[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, widths[k + 1], 1) - 0.5))
            if k < len(widths) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[k + 1], 1)))
        target = math.log(2 / tail_mass - 1)
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))
        self.tables: CdfTables | None = None

    def _logits_cdf(self, x: Tensor, detach: bool = False, channel: int | None = None) -> Tensor:
        """Logits of F_c at x, where x has shape (C, 1, L) (or (1, 1, L) for one `channel`).

        `detach` keeps gradients off the density's parameters.
        """

        def param(p: Tensor) -> Tensor:
            p = p if channel is None else p[channel : channel + 1]
            return p.detach() if detach else p

        logits = x
        for k, (matrix, bias) in enumerate(zip(self.matrices, self.biases)):
            logits = torch.matmul(F.softplus(param(matrix)), logits) + param(bias)
            if k < len(self.factors):
                logits = logits + torch.tanh(param(self.factors[k])) * torch.tanh(logits)
        return logits

    @property
    def medians(self) -> Tensor:
        """The learned median of each channel, shape (C,)."""
        return self.quantiles[:, 0, 1].detach()

    @property
    def centres(self) -> Tensor:
        """What symbols are offsets from: the medians, or the rounded medians on the integer grid (then several
        densities can code the same rounded latent, as the local entropy models of [18] do)."""
        return torch.round(self.medians) if self.integer_grid else self.medians

    def _channel_major(self, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        perm = x.permute(1, 0, 2, 3)
        return perm.reshape(self.channels, 1, -1), perm.shape

    def likelihood(self, y_hat: Tensor) -> Tensor:
        """P(y_hat) under the box-convolved density, same shape as `y_hat`."""
        values, shape = self._channel_major(y_hat)
        lower = self._logits_cdf(values - 0.5)
        upper = self._logits_cdf(values + 0.5)
        # Subtract in the tail where the sigmoid saturates least (Ballé 2018, appendix 6.1).
        sign = -torch.sign(lower + upper).detach()
        probs = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        probs = lower_bound(probs, LIKELIHOOD_BOUND)
        return probs.reshape(shape).permute(1, 0, 2, 3)

    def forward(self, y: Tensor, mode: str = "noise") -> tuple[Tensor, Tensor]:
        """Quantize `y` around the channel medians and return (y_hat, likelihood)."""
        medians = self.medians.view(1, -1, 1, 1)
        y_hat = quantize(y, mode, medians if mode != "noise" else None)
        return y_hat, self.likelihood(y_hat)

    def aux_loss(self) -> Tensor:
        """Pull the three quantiles onto the tail masses and the median (their logits hit `target`).

        Only the quantiles learn from it: the density's own parameters are detached.
        """
        logits = self._logits_cdf(self.quantiles, detach=True)
        return torch.abs(logits - self.target).sum()

    @torch.no_grad()
    def update(self) -> None:
        """Freeze one integer table per channel, covering the learned quantiles around the integer median."""
        medians = self.centres
        low = torch.floor(self.quantiles[:, 0, 0] - medians).long()
        high = torch.ceil(self.quantiles[:, 0, 2] - medians).long()
        pmfs, tails, offsets = [], [], []
        for c in range(self.channels):
            support = torch.arange(int(low[c]), int(high[c]) + 1, dtype=torch.float32)
            values = (support + medians[c]).view(1, 1, -1)
            lower = self._logits_cdf(values - 0.5, channel=c).double()
            upper = self._logits_cdf(values + 0.5, channel=c).double()
            pmf = (torch.sigmoid(upper) - torch.sigmoid(lower)).flatten().numpy()
            tail = float(torch.sigmoid(lower.flatten()[0]) + torch.sigmoid(-upper.flatten()[-1]))
            pmfs.append(pmf)
            tails.append(tail)
            offsets.append(int(low[c]))
        self.tables = quantize_pmfs(pmfs, tails, offsets)

    def symbols(self, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Integer symbols (offsets from the centres) and each symbol's table index."""
        medians = self.centres.view(1, -1, 1, 1)
        symbols = torch.round(y - medians).long()
        index = torch.arange(self.channels).view(1, -1, 1, 1).expand_as(symbols)
        return symbols.numpy(), index.numpy()

    def dequantize(self, symbols: np.ndarray) -> Tensor:
        """y_hat from decoded symbols."""
        return torch.from_numpy(symbols).float() + self.centres.view(1, -1, 1, 1)

    def table_index(self, shape: tuple[int, ...]) -> np.ndarray:
        """Table of every symbol of a latent of `shape`: its channel."""
        return np.broadcast_to(np.arange(self.channels).reshape(1, -1, 1, 1), shape)


class FactorizedDensities(nn.Module):
    """One `FactorizedDensity` per quality level: the latent's statistics change with the level's gain."""

    def __init__(self, levels: int, channels: int, integer_grid: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.levels = nn.ModuleList(FactorizedDensity(channels, integer_grid=integer_grid) for _ in range(levels))

    def __getitem__(self, level: float) -> FactorizedDensity:
        """The density of a 0-based level; a level between two trained ones takes the nearer one's density."""
        return self.levels[nearest_level(level)]

    # The per-level interface of a hyperprior's z prior (`licodec.entropy.hyperprior`), shared with
    # `GaussianPriors`: every method takes the 0-based level first.

    def medians(self, level: float) -> Tensor:
        """What z's symbols are offsets from, per channel (C,)."""
        return self[level].medians

    def symbols(self, level: float, z: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Integer symbols of z and each symbol's table index."""
        return self[level].symbols(z)

    def table_index(self, level: float, shape: tuple[int, ...]) -> np.ndarray:
        """The table of every symbol of a z of `shape`."""
        return self[level].table_index(shape)

    def level_tables(self, level: float) -> CdfTables:
        """The tables that `table_index` indexes."""
        return self[level].tables

    def forward(self, y: Tensor, quality: Tensor, mode: str = "noise") -> tuple[Tensor, Tensor]:
        """Quantize each sample with the density of its 0-based level (the nearest trained one); returns
        (y_hat, likelihood)."""
        quality = nearest_levels(quality)
        y_hat = torch.empty_like(y)
        likelihood = torch.empty_like(y)
        for level in torch.unique(quality).tolist():
            rows = torch.nonzero(quality == level).flatten()
            y_hat_rows, likelihood_rows = self.levels[level](y[rows], mode)
            y_hat = y_hat.index_put((rows,), y_hat_rows)
            likelihood = likelihood.index_put((rows,), likelihood_rows)
        return y_hat, likelihood

    def update(self) -> None:
        """Freeze the tables of every level."""
        for density in self.levels:
            density.update()


class FactorizedLatent(LatentCodec):
    """y coded with a learned density per channel and level, no side information (Ballé et al. 2017 [4]).

    `quantization`: "noise" (uniform noise in training), "ste" (rounding, straight-through gradients) or "mixed"
    (noise for the rate, STE rounding into the synthesis). One section."""

    def __init__(self, levels: int, channels: int, quantization: str = "mixed") -> None:
        super().__init__()
        self.quantization = quantization
        self.densities = FactorizedDensities(levels, channels)

    def forward(self, y: Tensor, level: Tensor) -> LatentOutput:  # noqa: D102
        rate_mode = "noise" if self.training and self.quantization in ("noise", "mixed") else "round"
        y_noisy, likelihood = self.densities(y, level, rate_mode)
        y_hat = quantize(y, "ste") if self.training and self.quantization == "mixed" else y_noisy
        return LatentOutput(y_hat, {"y": likelihood})

    def update(self) -> None:  # noqa: D102
        self.densities.update()

    @torch.no_grad()
    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:  # noqa: D102
        density = self.densities[level]
        symbols, index = density.symbols(y)
        return [coder.encode(symbols, index, density.tables)], density.dequantize(symbols).double()

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:  # noqa: D102
        density = self.densities[level]
        symbols = coder.decode(sections[0], density.table_index(shape), density.tables)
        return density.dequantize(symbols.astype(np.int64)).double()
