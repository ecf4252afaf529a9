"""Lee, Cho & Beack, "Context-adaptive entropy model for end-to-end optimized image compression", ICLR 2019 [19].

Each element y_i of the latent is N(mu_i, sigma_i^2) convolved with a unit box, with mu_i and sigma_i estimated
from two kinds of context:

- bit-consuming context c'_i: the hyper-latent z, sent as side information and decoded by h_s, whose output at
  i's position describes i;
- bit-free context c''_i: the already decoded neighbours of i in a causal 5x5 window (a masked convolution).

The two are concatenated and mapped to (sigma, mu) by 1x1 convolutions. The hyper-latent itself has a zero-mean
Gaussian prior per channel with a trained standard deviation (`GaussianPriors`). Decoding is exact and
machine-independent like [23]'s (`licodec.codecs.minnen2018`, whose integer wavefront decoder this codec shares):
the structures of the two contemporaneous papers coincide except for the prior of z, and here for the channel
counts of the context features, which follow [19]'s equal split of M channels for each context.
"""

from __future__ import annotations

from torch import nn

from licodec.codecs.balle2017 import DEFAULT_LMBDAS
from licodec.codecs.minnen2018 import JointAutoregressive
from licodec.entropy.context import MaskedConv2d
from licodec.entropy.gaussian import GaussianPriors
from licodec.nn.blocks import conv, deconv
from licodec.registry import register
from licodec.taxonomy import Taxonomy


@register("lee2019-context-adaptive")
class ContextAdaptive(JointAutoregressive):
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
    fewest_bits_per_pixel = 9e-4  # measured: 1/32 of a flat image's at quality 1
    context_kind = "causal"

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed") -> None:
        super().__init__(N, M, lmbdas, quantization)
        self.hyper_densities = GaussianPriors(self.qualities, N)
        self.context = MaskedConv2d(M, M, 5, self.context_kind)
        self.entropy_parameters = nn.Sequential(
            nn.Conv2d(M * 2, M * 2, 1), nn.ReLU(),
            nn.Conv2d(M * 2, M * 2, 1), nn.ReLU(),
            nn.Conv2d(M * 2, M * 2, 1),
        )

    @staticmethod
    def build_hyper_synthesis(N: int, M: int) -> nn.Sequential:
        """h_s: c', M channels at the latent's resolution."""
        return nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(), conv(N, M, 3, 1))
