"""Ballé, Laparra & Simoncelli, "End-to-end optimized image compression", ICLR 2017 [4].

    x --g_a--> y --Q--> y_hat --g_s--> x_hat          rate: -log2 p(y_hat), p factorized per channel

g_a and g_s are four-layer GDN/IGDN transforms (the form used as the factorized baseline of Ballé et al. 2018,
with N/M channels). The prior is the learned non-parametric density of `licodec.entropy.factorized`, one per
channel. One model serves every quality level through per-channel gain vectors (`licodec.quant.gain`), each
level with its own density.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy import coder
from licodec.entropy.categorical import CategoricalPriors
from licodec.entropy.factorized import FactorizedDensities
from licodec.errors import BitstreamError, CodecError
from licodec.nn.blocks import gdn_analysis, gdn_synthesis
from licodec.quant import quantize
from licodec.quant.admm import AdmmPruning
from licodec.quant.gain import GainUnit
from licodec.quant.nonuniform import NonUniformQuantizer
from licodec.quant.softhard import SoftToHard
from licodec.registry import register
from licodec.taxonomy import Taxonomy

#: MSE lambdas (distortion in 8-bit units squared / 255**2, as CompressAI's q1..q6).
DEFAULT_LMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


@register("balle2017-factorized")
class FactorizedPrior(Codec):
    """GDN transforms with a factorized prior (section docstring above)."""

    taxonomy = Taxonomy(
        reference="[4] Ballé, Laparra, Simoncelli 2017",
        network="CNN with GDN/IGDN",
        coding_unit="full image",
        spatial_tools="nonlinear transform; factorized prior (no spatial context)",
        rate_control="one model per rate in the paper; here one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(4, 14, 15),
    )
    fewest_bits_per_pixel = 3.5e-3  # measured: 1/32 of a flat image's at quality 1
    multiple = 16

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed", quantizer: str = "uniform", quantizer_options: dict | None = None,
                 ) -> None:
        if quantizer not in QUANTIZERS:
            raise CodecError(f"unknown quantizer {quantizer!r}; expected one of {', '.join(QUANTIZERS)}")
        options = dict(quantizer_options or {})
        config = {"quantizer": quantizer, "quantizer_options": options} if quantizer != "uniform" else {}
        super().__init__(lmbdas, N=N, M=M, quantization=quantization, **config)
        self.quantization = quantization
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        if quantizer in ("uniform", "admm"):
            self.densities = FactorizedDensities(self.qualities, M)
        else:
            self.indexed = IndexedLatent(quantizer, self.qualities, M, options)
        self.pruning = AdmmPruning(**options) if quantizer == "admm" else None

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:
        """Training pass: noisy latents for the rate; STE-rounded ones for synthesis when `quantization="mixed"`.

        With another quantizer of the survey ([11]-[13]): ADMM pruning adds its augmented term (and prunes in
        eval mode); the non-uniform and vector quantizers code indices with learned categoricals."""
        y = self.transform(self.analysis, x) * self.gain.gain(quality)
        aux = {}
        if self.pruning is not None:
            if self.training:
                aux["penalty"] = self.pruning.penalty(y)
            else:
                y = self.pruning.prune(y)
        if hasattr(self, "indexed"):
            y_hat, likelihood = self.indexed(y, quality)
            x_hat = self.transform(self.synthesis, y_hat * self.gain.inverse_gain(quality))
            return RDOutput(x_hat, {"y": likelihood}, aux)
        rate_mode = "noise" if self.training and self.quantization in ("noise", "mixed") else "round"
        y_noisy, likelihood = self.densities(y, quality, rate_mode)
        if self.training and self.quantization == "mixed":
            y_hat = quantize(y, "ste")
        else:
            y_hat = y_noisy
        x_hat = self.transform(self.synthesis, y_hat * self.gain.inverse_gain(quality))
        return RDOutput(x_hat, {"y": likelihood}, aux)

    def update(self) -> None:
        """Freeze the integer tables of every level's density (or of the index categoricals)."""
        if hasattr(self, "indexed"):
            self.indexed.update()
        else:
            self.densities.update()

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code a 1x3xHxW image in [0, 1] at `quality` (1-based)."""
        level = self.check_quality(quality)
        height, width = x.shape[-2:]
        y = self.transform(self.analysis, self.layout(self.pad(x))) * self.gain.gain(torch.tensor([level]))
        if self.pruning is not None:
            y = self.pruning.prune(y)
        if hasattr(self, "indexed"):
            return Encoded([self.indexed.encode(y, level)], height, width, quality)
        density = self.densities[level]
        symbols, index = density.symbols(y)
        return Encoded([coder.encode(symbols, index, density.tables)], height, width, quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        shape = self.latent_shape(encoded.height, encoded.width)
        if hasattr(self, "indexed"):
            return self.synthesise(self.indexed.decode(encoded.sections[0], shape, level).double(), level, encoded)
        density = self.densities[level]
        symbols = coder.decode(encoded.sections[0], density.table_index(shape), density.tables)
        return self.synthesise(density.dequantize(symbols.astype(np.int64)).double(), level, encoded)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Shape of y for an image of height x width."""
        padded_h, padded_w = self.padded_size(height, width)
        return (1, self.config["M"], padded_h // 16, padded_w // 16)


QUANTIZERS = ("uniform", "admm", "nonuniform", "vq")


class IndexedLatent(nn.Module):
    """A latent quantized to indices (non-uniform levels [12] or vector centers [13]) and coded with a learned
    categorical per quality level and channel group. The training rate is the expected code length under the
    soft assignment, sum_l a_l (-log2 p_l), which is differentiable in the latent, as in [13].

    The categoricals start from the histogram of the indices of the first training batch: from equal logits
    they would need thousands of steps at the transforms' learning rate just to reach the latent's statistics.
    """

    def __init__(self, kind: str, levels: int, channels: int, options: dict) -> None:
        super().__init__()
        if kind == "nonuniform":
            self.quantizer = NonUniformQuantizer(channels, **options)
        else:
            self.quantizer = SoftToHard(options.get("centers", 16), options.get("dim", 2),
                                        options.get("sigma", 1.0), options.get("spread", 4.0))
        self.groups = channels // getattr(self.quantizer, "dim", 1)
        self.priors = CategoricalPriors(levels * self.groups, self.quantizer.alphabet)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _table(self, level: Tensor) -> Tensor:
        """Table of each (sample, group): level * groups + group, shape (N, G)."""
        return level.view(-1, 1) * self.groups + torch.arange(self.groups, device=level.device).view(1, -1)

    def forward(self, y: Tensor, quality: Tensor) -> tuple[Tensor, Tensor]:
        """(y_hat, likelihood per group element) for training or evaluation."""
        y_hat, indices = self.quantizer(y)
        if self.training and not bool(self.fitted):
            self.fit(indices)
        log_p = torch.log_softmax(self.priors.logits[self._table(quality)], dim=2)  # (N, G, L)
        if self.training:
            expected = (self.quantizer.assignment(y) * log_p[..., None, None]).sum(2)
        else:
            expected = torch.gather(log_p[..., None, None].expand(*indices.shape[:2], -1, *indices.shape[2:]),
                                    2, indices.unsqueeze(2)).squeeze(2)
        return y_hat, torch.exp(expected).clamp(min=1e-9)

    @torch.no_grad()
    def fit(self, indices: Tensor) -> None:
        """Set every level's categoricals to the smoothed histogram of `indices` (N, G, H, W), group by group."""
        alphabet = self.quantizer.alphabet
        counts = torch.zeros(self.groups, alphabet, device=indices.device)
        counts.scatter_add_(1, indices.transpose(0, 1).flatten(1), torch.ones_like(indices, dtype=counts.dtype)
                            .transpose(0, 1).flatten(1))
        logits = torch.log((counts + 1) / (counts + 1).sum(1, keepdim=True))
        self.priors.logits.copy_(logits.repeat(self.priors.logits.shape[0] // self.groups, 1))
        self.fitted.fill_(True)

    def update(self) -> None:
        """Freeze the categorical tables."""
        self.priors.update()

    def encode(self, y: Tensor, level: float) -> bytes:
        """The indices of y (1, C, H, W), each group with its level's table."""
        indices = self.quantizer.indices(y).numpy()
        table = self._table(torch.tensor([int(level + 0.5)])).numpy().reshape(1, -1, 1, 1)
        return coder.encode(indices, np.broadcast_to(table, indices.shape), self.priors.tables)

    def decode(self, data: bytes, shape: tuple[int, ...], level: float) -> Tensor:
        """y_hat (1, C, H, W) from `encode`'s bytes."""
        n, _, h, w = shape
        table = self._table(torch.tensor([int(level + 0.5)])).numpy().reshape(1, -1, 1, 1)
        indices = coder.decode(data, np.broadcast_to(table, (n, self.groups, h, w)), self.priors.tables)
        if indices.size and (indices.min() < 0 or indices.max() >= self.quantizer.alphabet):
            raise BitstreamError("quantizer index out of range")
        return self.quantizer.dequantize(torch.from_numpy(indices))
