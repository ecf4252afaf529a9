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
from torch import Tensor

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy import coder
from licodec.entropy.factorized import FactorizedDensities
from licodec.nn.blocks import gdn_analysis, gdn_synthesis
from licodec.quant import quantize
from licodec.quant.gain import GainUnit
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
    multiple = 16

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed") -> None:
        super().__init__(lmbdas, N=N, M=M, quantization=quantization)
        self.quantization = quantization
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        self.densities = FactorizedDensities(self.qualities, M)

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:
        """Training pass: noisy latents for the rate; STE-rounded ones for synthesis when `quantization="mixed"`."""
        y = self.transform(self.analysis, x) * self.gain.gain(quality)
        rate_mode = "noise" if self.training and self.quantization in ("noise", "mixed") else "round"
        y_noisy, likelihood = self.densities(y, quality, rate_mode)
        if self.training and self.quantization == "mixed":
            y_hat = quantize(y, "ste")
        else:
            y_hat = y_noisy
        x_hat = self.transform(self.synthesis, y_hat * self.gain.inverse_gain(quality))
        return RDOutput(x_hat, {"y": likelihood})

    def update(self) -> None:
        """Freeze the integer tables of every level's density."""
        self.densities.update()

    @torch.no_grad()
    def compress(self, x: Tensor, quality: int) -> Encoded:
        """Code a 1x3xHxW image in [0, 1] at `quality` (1-based)."""
        level = self.check_quality(quality)
        height, width = x.shape[-2:]
        y = self.transform(self.analysis, self.layout(self.pad(x))) * self.gain.gain(torch.tensor([level]))
        density = self.densities[level]
        symbols, index = density.symbols(y)
        return Encoded([coder.encode(symbols, index, density.tables)], height, width, quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        density = self.densities[level]
        shape = self.latent_shape(encoded.height, encoded.width)
        symbols = coder.decode(encoded.sections[0], density.table_index(shape), density.tables)
        return self.synthesise(density.dequantize(symbols.astype(np.int64)).double(), level, encoded)

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Shape of y for an image of height x width."""
        padded_h, padded_w = self.padded_size(height, width)
        return (1, self.config["M"], padded_h // 16, padded_w // 16)
