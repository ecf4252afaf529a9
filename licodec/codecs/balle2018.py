"""Ballé, Minnen, Singh, Hwang & Johnston, "Variational image compression with a scale hyperprior", ICLR 2018 [5],
and its mean-scale variant (Minnen, Ballé & Toderici, NeurIPS 2018, without the context model).

    x --g_a--> y --Q--> y_hat --g_s--> x_hat
               |                 ^
              |y|                | N(mu, sigma^2) per element of y
               v                 |
             h_a --> z --Q--> z_hat --h_s--> sigma (and mu)

The transforms are here; the entropy model of y and z is `licodec.entropy.hyperprior.HyperpriorLatent`: z is
coded with a factorized density, y with a Gaussian conditional whose scale (and mean) h_s predicts from z_hat, h_s
running as an integer network at coding time. One model serves every quality level through gain vectors.
"""

from __future__ import annotations

from typing import ClassVar

from licodec.codecs.base import TransformCodec
from licodec.entropy.factorized import FactorizedDensities
from licodec.entropy.hyperprior import HYPERPRIOR_PARTS, HyperpriorLatent, moved_into
from licodec.nn.blocks import (
    gdn_analysis,
    gdn_synthesis,
    hyper_analysis,
    mean_scale_hyper_synthesis,
    scale_hyper_synthesis,
)
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy


@register("balle2018-hyperprior")
class ScaleHyperprior(TransformCodec):
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
    downsampling = 16
    renamed_modules = moved_into("entropy", HYPERPRIOR_PARTS)

    means: ClassVar[bool] = False  # whether h_s predicts a mean beside each scale
    make_hyper_synthesis = staticmethod(scale_hyper_synthesis)

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed") -> None:
        super().__init__(lmbdas, N=N, M=M, quantization=quantization)
        self.latent_channels = M
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        self.entropy = HyperpriorLatent(hyper_analysis(N, M), self.make_hyper_synthesis(N, M),
                                        FactorizedDensities(self.qualities, N), quantization, means=self.means)


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
    means = True
    make_hyper_synthesis = staticmethod(mean_scale_hyper_synthesis)
