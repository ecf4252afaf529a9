"""Ballé, Minnen, Singh, Hwang & Johnston, "Variational image compression with a scale hyperprior", ICLR 2018 [5],
and its mean-scale variant (Minnen, Ballé & Toderici, NeurIPS 2018, without the context model).

    x --g_a--> y --Q--> y_hat --g_s--> x_hat
               |                 ^
              |y|                | N(mu, sigma^2) per element of y
               v                 |
             h_a --> z --Q--> z_hat --h_s--> sigma (and mu)

z is coded with a factorized density, y with a Gaussian conditional whose scale (and mean) h_s predicts from
z_hat. At coding time h_s runs as an integer network (`licodec.nn.integer`) so that encoder and decoder pick the
same tables on any machine and thread count. One model serves every quality level through gain vectors.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from licodec.codecs.balle2017 import DEFAULT_LMBDAS
from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy import coder
from licodec.entropy.factorized import FactorizedDensities
from licodec.entropy.gaussian import GaussianConditional
from licodec.nn.blocks import conv, deconv, gdn_analysis, gdn_synthesis
from licodec.nn.integer import IntegerConvNet
from licodec.quant import quantize
from licodec.quant.gain import GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy


@register("balle2018-hyperprior")
class ScaleHyperprior(Codec):
    """Scale hyperprior: h_s predicts the standard deviation of each element of y."""

    taxonomy = Taxonomy(
        reference="[5] Ballé, Minnen, Singh, Hwang, Johnston 2018",
        network="CNN with GDN/IGDN; hyperprior CNN",
        coding_unit="full image",
        spatial_tools="hyperprior (side information) for scales",
        rate_control="one model per rate in the paper; here one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(5,),
    )
    fewest_bits_per_pixel = 1.3e-3  # measured: 1/32 of a flat image's at quality 1
    multiple = 64
    predicts_means = False

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed") -> None:
        super().__init__(lmbdas, N=N, M=M, quantization=quantization)
        self.quantization = quantization
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.hyper_analysis = nn.Sequential(
            conv(M, N, 3, 1), nn.ReLU(), conv(N, N), nn.ReLU(), conv(N, N),
        )
        self.hyper_synthesis = self.build_hyper_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        self.hyper_densities = FactorizedDensities(self.qualities, N)
        self.gaussian = GaussianConditional()
        self._integer: dict[str, IntegerConvNet] = {}

    @staticmethod
    def build_hyper_synthesis(N: int, M: int) -> nn.Sequential:
        """h_s of the scale hyperprior: ends in a ReLU, as the scales are non-negative."""
        return nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(), conv(N, M, 3, 1), nn.ReLU())

    def hyper_input(self, y: Tensor) -> Tensor:
        """What h_a sees: |y| for the scale-only model."""
        return torch.abs(y)

    def split(self, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """(scales, means) from h_s's output."""
        return params, None

    def hyperprior(self, y: Tensor, quality: Tensor, rate_mode: str) -> tuple[Tensor, Tensor]:
        """Training pass of the side information: (z_hat as h_s sees it, likelihood of z).

        With "mixed" quantization h_s sees z rounded around the density's medians (straight-through gradient), as
        the decoder will; the rate is measured on the noisy z.
        """
        z = self.transform(self.hyper_analysis, self.hyper_input(y))
        z_noisy, z_likelihood = self.hyper_densities(z, quality, rate_mode)
        if self.training and self.quantization == "mixed":
            medians = torch.stack([self.hyper_densities[int(q)].medians for q in quality]).view(*z.shape[:2], 1, 1)
            return quantize(z, "ste", medians), z_likelihood
        return z_noisy, z_likelihood

    def rate_mode(self) -> str:
        """How the rate terms quantize: uniform noise in training (unless "ste"), rounding otherwise."""
        return "noise" if self.training and self.quantization in ("noise", "mixed") else "round"

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:
        """Training pass (noise for the rate terms, STE rounding into the synthesis with "mixed")."""
        y = self.transform(self.analysis, x) * self.gain.gain(quality)
        rate_mode = self.rate_mode()
        z_hat, z_likelihood = self.hyperprior(y, quality, rate_mode)
        scales, means = self.split(self.transform(self.hyper_synthesis, z_hat))
        _, y_likelihood = self.gaussian(y, scales, means, rate_mode)
        if self.training and self.quantization != "mixed":
            y_hat = quantize(y, "noise")
        else:
            y_hat = quantize(y, "ste" if self.training else "round", means)
        x_hat = self.transform(self.synthesis, y_hat * self.gain.inverse_gain(quality))
        return RDOutput(x_hat, {"y": y_likelihood, "z": z_likelihood})

    def update(self) -> None:
        """Freeze the tables (hyper densities and Gaussian scales) and forget the integer networks."""
        self.hyper_densities.update()
        self.gaussian.update()
        self._integer.clear()

    def integer(self, name: str) -> IntegerConvNet:
        """The fixed-point twin of sub-network `name` (h_s, context models), built from the current weights on
        first use."""
        if name not in self._integer:
            self._integer[name] = IntegerConvNet(getattr(self, name))
        return self._integer[name]

    def hyper_fixed(self, z_symbols: np.ndarray, level: float) -> Tensor:
        """h_s's output from z's symbols, in fixed point (int64), by integer arithmetic only."""
        net = self.integer("hyper_synthesis")
        medians = net.to_fixed(self.hyper_densities[level].medians).view(1, -1, 1, 1)
        return net(torch.from_numpy(z_symbols).long() * (1 << net.fraction_bits) + medians)

    def _parameters_from_z(self, z_symbols: np.ndarray, level: float) -> tuple[Tensor, Tensor | None]:
        """Table indices of y (and the fixed-point means, as floats) from z's symbols, in integers only."""
        fraction_bits = self.integer("hyper_synthesis").fraction_bits
        scales_fixed, means_fixed = self.split(self.hyper_fixed(z_symbols, level))
        index = self.gaussian.index(scales_fixed, fraction_bits)
        means = None if means_fixed is None else means_fixed.double() / (1 << fraction_bits)
        return index, means

    def analyse(self, x: Tensor, level: float) -> Tensor:
        """y of a 1x3xHxW image at quality index `level`: padded, transformed, scaled by the gain."""
        return self.transform(self.analysis, self.layout(self.pad(x))) * self.gain.gain(torch.tensor([level]))

    def encode_z(self, y: Tensor, level: float) -> tuple[bytes, np.ndarray]:
        """z's section and symbols."""
        density = self.hyper_densities[level]
        z_symbols, z_index = density.symbols(self.transform(self.hyper_analysis, self.hyper_input(y)))
        return coder.encode(z_symbols, z_index, density.tables), z_symbols

    def decode_z(self, encoded: Encoded, level: float) -> np.ndarray:
        """z's symbols from its section (the first)."""
        density = self.hyper_densities[level]
        padded_h, padded_w = self.padded_size(encoded.height, encoded.width)
        z_shape = (1, self.config["N"], padded_h // 64, padded_w // 64)
        return coder.decode(encoded.sections[0], density.table_index(z_shape), density.tables)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: int) -> Encoded:
        """Code a 1x3xHxW image in [0, 1]: z with its factorized density, then y with the Gaussian tables."""
        level = self.check_quality(quality)
        y = self.analyse(x, level)
        z_section, z_symbols = self.encode_z(y, level)
        index, means = self._parameters_from_z(z_symbols, level)
        centered = y.double() if means is None else y.double() - means
        y_symbols = torch.round(centered).long().numpy()
        return Encoded([z_section, coder.encode(y_symbols, index.numpy(), self.gaussian.tables)],
                       x.shape[-2], x.shape[-1], quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        index, means = self._parameters_from_z(self.decode_z(encoded, level), level)
        y_hat = torch.from_numpy(coder.decode(encoded.sections[1], index.numpy(), self.gaussian.tables)).double()
        if means is not None:
            y_hat = y_hat + means
        return self.synthesise(y_hat, level, encoded)


@register("balle2018-mean-scale")
class MeanScaleHyperprior(ScaleHyperprior):
    """Mean-scale hyperprior (Minnen et al. 2018 without context): h_s predicts a mean and a scale per element."""

    taxonomy = Taxonomy(
        reference="[5]/[23] Ballé et al. 2018; Minnen, Ballé, Toderici 2018 (mean-scale, no context)",
        network="CNN with GDN/IGDN; hyperprior CNN",
        coding_unit="full image",
        spatial_tools="hyperprior (side information) for means and scales",
        rate_control="one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(5, 23),
    )
    predicts_means = True

    @staticmethod
    def build_hyper_synthesis(N: int, M: int) -> nn.Sequential:
        """h_s of the mean-scale model: widens to 2M outputs (means and scales), no final ReLU."""
        return nn.Sequential(
            deconv(N, M), nn.ReLU(), deconv(M, M * 3 // 2), nn.ReLU(), conv(M * 3 // 2, M * 2, 3, 1),
        )

    def hyper_input(self, y: Tensor) -> Tensor:
        """The mean-scale h_a sees y itself."""
        return y

    def split(self, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """(scales, means): the first M channels are scales, the last M means."""
        scales, means = params.chunk(2, dim=1)
        return scales, means
