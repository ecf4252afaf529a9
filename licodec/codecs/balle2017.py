"""Ballé, Laparra & Simoncelli, "End-to-end optimized image compression", ICLR 2017 [4].

    x --g_a--> y --Q--> y_hat --g_s--> x_hat          rate: -log2 p(y_hat), p factorized per channel

g_a and g_s are four-layer GDN/IGDN transforms (the form used as the factorized baseline of Ballé et al. 2018,
with N/M channels). The prior is the learned non-parametric density of `licodec.entropy.factorized`, one per
channel (`FactorizedLatent`). One model serves every quality level through per-channel gain vectors
(`licodec.quant.gain`), each level with its own density.

The survey's other quantizers plug in here: ADMM pruning of y [11] (`quantizer="admm"`), and the non-uniform
[12] and soft-to-hard vector [13] quantizers, whose indices a learned categorical codes
(`licodec.entropy.indexed.IndexedLatent`).
"""

from __future__ import annotations

from torch import Tensor

from licodec.codecs.base import RDOutput, TransformCodec
from licodec.entropy.factorized import FactorizedLatent
from licodec.entropy.indexed import IndexedLatent
from licodec.errors import CodecError
from licodec.nn.blocks import gdn_analysis, gdn_synthesis
from licodec.quant.admm import AdmmPruning
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy

QUANTIZERS = ("uniform", "admm", "nonuniform", "vq")


@register("balle2017-factorized")
class FactorizedPrior(TransformCodec):
    """GDN transforms with a factorized prior (module docstring)."""

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
    downsampling = 16
    renamed_modules = {"densities": "entropy.densities", "indexed": "entropy"}

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed", quantizer: str = "uniform", quantizer_options: dict | None = None,
                 ) -> None:
        if quantizer not in QUANTIZERS:
            raise CodecError(f"unknown quantizer {quantizer!r}; expected one of {', '.join(QUANTIZERS)}")
        options = dict(quantizer_options or {})
        config = {"quantizer": quantizer, "quantizer_options": options} if quantizer != "uniform" else {}
        super().__init__(lmbdas, N=N, M=M, quantization=quantization, **config)
        self.latent_channels = M
        self.analysis = gdn_analysis(N, M)
        self.synthesis = gdn_synthesis(N, M)
        self.gain = GainUnit(self.lmbdas, M)
        if quantizer in ("uniform", "admm"):
            self.entropy = FactorizedLatent(self.qualities, M, quantization)
        else:
            self.entropy = IndexedLatent(quantizer, self.qualities, M, options)
        self.pruning = AdmmPruning(**options) if quantizer == "admm" else None

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training pass (`TransformCodec.forward`); with ADMM pruning, its augmented term in training (as
        aux["penalty"]) and the pruned latent in eval mode."""
        if self.pruning is None:
            return super().forward(x, quality)
        level = self.level_tensor(quality, x.shape[0], x.device)
        y = self.transform(self.analysis, x) * self.gain.gain(level)
        aux = {"penalty": self.pruning.penalty(y)} if self.training else {}
        out = self.entropy(y if self.training else self.pruning.prune(y), level)
        x_hat = self.transform(self.synthesis, out.y_hat * self.gain.inverse_gain(level))
        return RDOutput(x_hat, out.likelihoods, aux)

    def before_step(self, step: int, x: Tensor, level: Tensor) -> None:
        """The index quantizers' refits and first fit, on the batch's latent."""
        if isinstance(self.entropy, IndexedLatent):
            self.entropy.before_step(lambda: self.transform(self.analysis, x) * self.gain.gain(level))

    def after_step(self, output: RDOutput, terms: dict[str, Tensor]) -> None:
        """ADMM pruning's threshold follows the step's projection."""
        if self.pruning is not None:
            self.pruning.after_step()

    def latent(self, x: Tensor, level: float) -> Tensor:
        """y of a 1x3xHxW image, pruned when the codec prunes."""
        y = super().latent(x, level)
        return y if self.pruning is None else self.pruning.prune(y)


