"""Minnen, Ballé & Toderici, "Joint autoregressive and hierarchical priors for learned image compression",
NeurIPS 2018 [23], and its parallel checkerboard variant (He et al., CVPR 2021).

    x --g_a--> y --Q--> y_hat --g_s--> x_hat
               |          |
               v          +--context (masked 5x5 conv)--> phi --+
              h_a                                              +--entropy parameters (1x1 convs)--> mu, sigma
               v                                               |
               z --Q--> z_hat --h_s--> psi ---------------------+

Each element of y is N(mu, sigma^2) with mu and sigma from the hyperprior's features psi and the context features
phi of the already decoded neighbours. The transforms are here; the entropy model is
`licodec.entropy.hyperprior.JointLatent`, which codes exactly and machine-independently (integer networks, the
decoding order of `licodec.entropy.context.schedule`).
"""

from __future__ import annotations

from torch import nn

from licodec.codecs.base import TransformCodec
from licodec.entropy.context import MaskedConv2d
from licodec.entropy.factorized import FactorizedDensities
from licodec.entropy.hyperprior import JOINT_PARTS, JointLatent, moved_into
from licodec.nn.blocks import conv, deconv, gdn_analysis, gdn_synthesis, hyper_analysis, mean_scale_hyper_synthesis
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy


def entropy_parameters(M: int, slim: bool = False) -> nn.Sequential:
    """The entropy-parameter network of [23]: three 1x1 convolutions from (psi, phi) to (sigma, mu), narrowing
    4M -> 10M/3 -> 8M/3 -> 2M (all 2M wide when `slim`).

    The paper uses leaky ReLUs; plain ReLUs keep the network integer-evaluable (`licodec.nn.integer`)."""
    first, second = (M * 2, M * 2) if slim else (M * 10 // 3, M * 8 // 3)
    return nn.Sequential(
        nn.Conv2d(M * 4, first, 1), nn.ReLU(),
        nn.Conv2d(first, second, 1), nn.ReLU(),
        nn.Conv2d(second, M * 2, 1),
    )


def slim_hyper_synthesis(N: int, M: int) -> nn.Sequential:
    """h_s of the slim model: N channels until its last layer, which outputs 2M."""
    return nn.Sequential(deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(), conv(N, M * 2, 3, 1))


@register("minnen2018-joint")
class JointAutoregressive(TransformCodec):
    """Mean-scale hyperprior plus a serial masked 5x5 context model (CompressAI's "mbt2018")."""

    taxonomy = Taxonomy(
        reference="[23] Minnen, Ballé, Toderici 2018",
        network="CNN with GDN/IGDN; hyperprior CNN; masked-convolution context model",
        coding_unit="full image",
        spatial_tools="hyperprior (side information) and autoregressive context of decoded neighbours",
        rate_control="one model per rate in the paper; here one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(23,),
    )
    multiple = 64
    downsampling = 16
    fewest_bits_per_pixel = 8.8e-4  # measured: 1/32 of a flat image's at quality 1
    context_kind = "causal"
    renamed_modules = moved_into("entropy", JOINT_PARTS)

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed", slim: bool = False) -> None:
        """`slim` narrows the side networks to fit the zoo's size budget (DESIGN.md): h_s keeps N channels until
        its last layer (the paper widens to M and 3M/2) and the entropy-parameter network stays 2M wide. It
        halves the weights outside the transforms (20 MB -> 13.6 MB in fp16 for N=128, M=192)."""
        super().__init__(lmbdas, N=N, M=M, quantization=quantization, **({"slim": True} if slim else {}))
        self.latent_channels = M
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        self.entropy = JointLatent(
            hyper_analysis(N, M), (slim_hyper_synthesis if slim else mean_scale_hyper_synthesis)(N, M),
            FactorizedDensities(self.qualities, N), MaskedConv2d(M, M * 2, 5, self.context_kind),
            entropy_parameters(M, slim), quantization,
        )


@register("minnen2018-checkerboard")
class CheckerboardJoint(JointAutoregressive):
    """[23] with the checkerboard context of He et al. 2021: two parallel passes instead of a serial scan."""

    taxonomy = Taxonomy(
        reference="[23] Minnen, Ballé, Toderici 2018, with the checkerboard context of He et al. 2021",
        network="CNN with GDN/IGDN; hyperprior CNN; checkerboard-masked context model",
        coding_unit="full image",
        spatial_tools="hyperprior (side information) and a two-pass checkerboard context of decoded anchors",
        rate_control="one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(23,),
    )
    fewest_bits_per_pixel = 1.1e-3  # measured: 1/32 of a flat image's at quality 1
    context_kind = "checkerboard"
