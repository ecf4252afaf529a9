"""Minnen, Toderici, Singh, Hwang & Covell, "Image-dependent local entropy models for learned image compression",
ICIP 2018 [18].

    x --g_a--> y --Q--> y_hat --g_s--> x_hat      y coded per block with one of K learned densities, chosen by the
                                                  encoder and signalled as side information

Ballé 2017's transforms; the entropy model is `licodec.entropy.local.LocalLatent`: a dictionary of `models`
learned densities per channel, one chosen per `block` x `block` tile of the latent.
"""

from __future__ import annotations

from licodec.codecs.base import TransformCodec
from licodec.entropy.local import LocalLatent
from licodec.nn.blocks import gdn_analysis, gdn_synthesis
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy


@register("minnen2018-local")
class LocalEntropyModels(TransformCodec):
    """Ballé 2017's transforms with image-dependent local entropy models (module docstring)."""

    taxonomy = Taxonomy(
        reference="[18] Minnen, Toderici, Singh, Hwang, Covell 2018",
        network="CNN with GDN/IGDN",
        coding_unit="full image; entropy model chosen per latent block (64x64 pixels by default)",
        spatial_tools="a dictionary of learned entropy models, one signalled per block",
        rate_control="one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(18, 4),
    )
    fewest_bits_per_pixel = 4.7e-3  # measured: 1/32 of a flat image's at quality 1
    multiple = 16
    downsampling = 16
    renamed_modules = {"local": "entropy.local"}

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed", models: int = 8, block: int = 4) -> None:
        super().__init__(lmbdas, N=N, M=M, quantization=quantization, models=models, block=block)
        self.latent_channels = M
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        self.entropy = LocalLatent(self.qualities, M, models, block, quantization)
