"""Lee, Cho & Beack, "Context-adaptive entropy model for end-to-end optimized image compression", ICLR 2019 [19].

Each element y_i of the latent is N(mu_i, sigma_i^2) convolved with a unit box, with mu_i and sigma_i estimated
from two kinds of context:

- bit-consuming context c'_i: the hyper-latent z, sent as side information and decoded by h_s, whose output at
  i's position describes i;
- bit-free context c''_i: the already decoded neighbours of i in a causal 5x5 window (a masked convolution).

The two are concatenated and mapped to (sigma, mu) by 1x1 convolutions. The hyper-latent itself has a zero-mean
Gaussian prior per channel with a trained standard deviation (`GaussianPriors`). The structure is [23]'s, so the
entropy model is the same `licodec.entropy.hyperprior.JointLatent`, with [19]'s prior of z and its equal split of
M channels for each context.
"""

from __future__ import annotations

from torch import nn

from licodec.codecs.base import TransformCodec
from licodec.entropy.context import MaskedConv2d
from licodec.entropy.gaussian import GaussianPriors
from licodec.entropy.hyperprior import JOINT_PARTS, JointLatent, moved_into
from licodec.nn.blocks import conv, deconv, gdn_analysis, gdn_synthesis, hyper_analysis
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy


def context_hyper_synthesis(N: int, M: int) -> nn.Sequential:
    """h_s: c', M channels at the latent's resolution."""
    return nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(), conv(N, M, 3, 1))


def entropy_parameters(M: int) -> nn.Sequential:
    """(c', c'') -> (sigma, mu): three 1x1 convolutions, 2M wide."""
    return nn.Sequential(
        nn.Conv2d(M * 2, M * 2, 1), nn.ReLU(),
        nn.Conv2d(M * 2, M * 2, 1), nn.ReLU(),
        nn.Conv2d(M * 2, M * 2, 1),
    )


@register("lee2019-context-adaptive")
class ContextAdaptive(TransformCodec):
    """Bit-consuming (hyperprior) and bit-free (causal neighbours) contexts for a Gaussian mean and scale."""

    taxonomy = Taxonomy(
        reference="[19] Lee, Cho, Beack 2019",
        network="CNN with GDN/IGDN; hyperprior CNN; masked-convolution context model",
        coding_unit="full image",
        spatial_tools="bit-consuming context (hyperprior) and bit-free context (decoded neighbours) for mean and "
                      "scale",
        rate_control="one model per rate in the paper; here one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(19,),
    )
    multiple = 64
    downsampling = 16
    renamed_modules = moved_into("entropy", JOINT_PARTS)
    fewest_bits_per_pixel = 9e-4  # measured: 1/32 of a flat image's at quality 1
    context_kind = "causal"

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed") -> None:
        super().__init__(lmbdas, N=N, M=M, quantization=quantization)
        self.latent_channels = M
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        self.entropy = JointLatent(hyper_analysis(N, M), context_hyper_synthesis(N, M),
                                   GaussianPriors(self.qualities, N), MaskedConv2d(M, M, 5, "causal"),
                                   entropy_parameters(M), quantization)
