"""Image-dependent local entropy models: Minnen, Toderici, Singh, Hwang & Covell, ICIP 2018 [18].

A small dictionary of K entropy models is learned per quality level (each a learned per-channel density,
`FactorizedDensity`, on the integer grid). The latent is cut into blocks of `block` x `block` positions; for each
block the encoder picks the model that codes it in the fewest bits, counted exactly from the integer tables, and
signals the choice as side information (log2 K bits per block with a uniform table). Training is winner-take-all:
each block's rate is its best model's, so the models specialise to kinds of image content (a hard EM, as in
k-means), and the choice itself costs its log2 K bits.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.factorized import FactorizedDensities, FactorizedDensity
from licodec.entropy.latent import LatentCodec, LatentOutput, nearest_levels
from licodec.entropy.tables import PRECISION, CdfTables, quantize_pmfs
from licodec.errors import BitstreamError
from licodec.quant import quantize

ESCAPE_BITS = 40.0  # a generous count for an escaped value: such blocks simply prefer another model


def block_sums(values: Tensor, block: int) -> Tensor:
    """Sum (N, C, H, W) over block x block tiles (zero-padded at the bottom and right): (N, C, Hb, Wb)."""
    n, c, h, w = values.shape
    padded = F.pad(values, (0, (-w) % block, 0, (-h) % block))
    hb, wb = padded.shape[-2] // block, padded.shape[-1] // block
    return padded.reshape(n, c, hb, block, wb, block).sum(dim=(3, 5))


def expand_blocks(choice: Tensor, block: int, height: int, width: int) -> Tensor:
    """Per-position copy of a per-block map (..., Hb, Wb) -> (..., height, width)."""
    return choice.repeat_interleave(block, -2).repeat_interleave(block, -1)[..., :height, :width]


class LocalDensities(nn.Module):
    """K learned densities per channel and quality level, one chosen per block of the latent."""

    def __init__(self, levels: int, channels: int, models: int = 8, block: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.models = models
        self.block = block
        # Model k of channel c is "channel" k * channels + c of one factorized density per level.
        self.densities = FactorizedDensities(levels, models * channels, integer_grid=True)
        self.choice_tables: CdfTables = quantize_pmfs([np.full(models, 1.0 / models)], [0.0], [0])

    def forward(self, y_hat: Tensor, quality: Tensor) -> tuple[Tensor, Tensor]:
        """Training pass on a quantized (or noisy) latent: the likelihood of each element under its block's best
        model, and the likelihood of each block's choice (1/K), shaped (N, Hb * Wb)."""
        quality = nearest_levels(quality)
        likelihood = torch.empty_like(y_hat)
        n, m, h, w = y_hat.shape
        for level in torch.unique(quality).tolist():
            rows = torch.nonzero(quality == level).flatten()
            density = self.densities.levels[level]
            all_models = density.likelihood(y_hat[rows].repeat(1, self.models, 1, 1))
            all_models = all_models.view(len(rows), self.models, m, h, w)
            bits = block_sums(-torch.log2(all_models).sum(2), self.block)  # (n, K, Hb, Wb)
            choice = expand_blocks(bits.argmin(1).detach(), self.block, h, w)  # (n, H, W)
            chosen = torch.gather(all_models, 1, choice[:, None, None].expand(-1, 1, m, h, w))[:, 0]
            likelihood = likelihood.index_put((rows,), chosen)
        hb, wb = math.ceil(h / self.block), math.ceil(w / self.block)
        choice_likelihood = torch.full((n, hb * wb), 1.0 / self.models, device=y_hat.device)
        return likelihood, choice_likelihood

    def level(self, level: float) -> FactorizedDensity:
        """The dictionary of a 0-based quality level (the nearer trained level between two)."""
        return self.densities[level]

    def choose(self, y_int: np.ndarray, level: float) -> np.ndarray:
        """The model of every block (Hb, Wb): the fewest bits under the integer tables, ties to the lower k."""
        density = self.level(level)
        tables = density.tables
        m = self.channels
        centres = density.centres.numpy().astype(np.int64)
        costs = []
        for k in range(self.models):
            t = np.arange(k * m, (k + 1) * m).reshape(1, -1, 1, 1)
            values = y_int - centres[t] - tables.offsets[t]
            lengths = tables.lengths[t]
            inside = (values >= 0) & (values < lengths)
            freqs = tables.freqs[np.broadcast_to(t, values.shape), np.where(inside, values, lengths)]
            bits = PRECISION - np.log2(freqs.astype(np.float64)) + np.where(inside, 0.0, ESCAPE_BITS)
            costs.append(block_sums(torch.from_numpy(bits.sum(1, keepdims=True)), self.block)[0, 0])
        return torch.stack(costs).argmin(0).numpy()

    def table_index(self, choice: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """The table of every element of a latent of `shape` (1, M, H, W) given the blocks' choices."""
        per_position = expand_blocks(torch.from_numpy(np.asarray(choice)), self.block, shape[-2], shape[-1])
        return (per_position.numpy()[None, None] * self.channels
                + np.arange(self.channels).reshape(1, -1, 1, 1)).astype(np.int64)

    def update(self) -> None:
        """Freeze the tables of every model of every level."""
        self.densities.update()


class LocalLatent(LatentCodec):
    """y coded with the local entropy models of [18] (`LocalDensities`). Sections: the blocks' choices (a uniform
    table), then y with the chosen tables. `quantization` as for `FactorizedLatent`."""

    sections = 2

    def __init__(self, levels: int, channels: int, models: int = 8, block: int = 4,
                 quantization: str = "mixed") -> None:
        super().__init__()
        self.quantization = quantization
        self.local = LocalDensities(levels, channels, models, block)

    def forward(self, y: Tensor, level: Tensor) -> LatentOutput:
        """Training pass: the rate of each block under its best model, plus the choices' log2 K bits."""
        noisy = self.training and self.quantization in ("noise", "mixed")
        y_rate = quantize(y, "noise" if noisy else ("ste" if self.training else "round"))
        likelihood, choice_likelihood = self.local(y_rate, level)
        y_hat = quantize(y, "ste" if self.training else "round") if self.quantization != "noise" else y_rate
        return LatentOutput(y_hat, {"y": likelihood, "choices": choice_likelihood})

    def update(self) -> None:  # noqa: D102
        self.local.update()

    @torch.no_grad()
    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:  # noqa: D102
        y_int = torch.round(y).long().numpy()
        density = self.local.level(level)
        choice = self.local.choose(y_int, level)
        index = self.local.table_index(choice, y_int.shape)
        symbols = y_int - density.centres.numpy().astype(np.int64)[index]
        sections = [coder.encode(choice, np.zeros_like(choice), self.local.choice_tables),
                    coder.encode(symbols, index, density.tables)]
        return sections, torch.from_numpy(y_int).double()

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:  # noqa: D102
        density = self.local.level(level)
        blocks = (math.ceil(shape[-2] / self.local.block), math.ceil(shape[-1] / self.local.block))
        choice = coder.decode(sections[0], np.zeros(blocks, dtype=np.int64), self.local.choice_tables)
        if choice.min() < 0 or choice.max() >= self.local.models:
            raise BitstreamError("entropy model choice out of range")
        index = self.local.table_index(choice, shape)
        symbols = coder.decode(sections[1], index, density.tables)
        return torch.from_numpy(symbols + density.centres.numpy().astype(np.int64)[index]).double()
