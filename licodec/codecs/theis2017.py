"""Theis, Shi, Cunningham & Huszár, "Lossy image compression with compressive autoencoders", ICLR 2017 [3].

    x --encoder (convolutions, 3 residual blocks)--> z --round (identity gradient)--> z_hat --decoder--> x_hat

- The encoder downsamples by 8 into 96 channels; the decoder upsamples with sub-pixel convolutions (a
  convolution to 4x the channels, then depth-to-space), residual blocks between.
- Rounding is used in the forward pass also in training, with the straight-through (identity) gradient.
- The rate model is a Gaussian scale mixture per channel (`licodec.entropy.gsm`); its masses over the rounding
  intervals are the training rate and, frozen as integer tables, the coding model.
- Incremental training: only the first `start` coefficients (channels) are active at first; `grow` more are
  switched on every `every` training steps until all are, as the paper trains coefficients incrementally.
- Variable rate: one base model, with per-rate scale parameters (gain vectors, `licodec.quant.gain`) and
  mixtures per rate, which [3] fine-tunes on the base model (`licodec train --only gain,densities`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from licodec.codecs.base import RDOutput, TransformCodec
from licodec.entropy.gsm import MixtureLatent
from licodec.nn.blocks import Residual
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.registry import register
from licodec.taxonomy import Taxonomy


class Affine(nn.Module):
    """x * scale + shift: [3] codes images centred on 0 in [-1, 1]."""

    def __init__(self, scale: float, shift: float) -> None:
        super().__init__()
        self.scale, self.shift = scale, shift

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x * self.scale + self.shift


def subpixel(in_channels: int, out_channels: int) -> nn.Sequential:
    """Sub-pixel convolution (Shi et al. 2016): 3x3 convolution to 4x the channels, then depth-to-space x2."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels * 4, 3, 1, 1), nn.PixelShuffle(2))


@register("theis2017-cae")
class CompressiveAutoencoder(TransformCodec):
    """[3]: residual convolutional encoder, sub-pixel decoder, rounding, Gaussian scale mixture rate model."""

    taxonomy = Taxonomy(
        reference="[3] Theis, Shi, Cunningham, Huszár 2017",
        network="CNN autoencoder with residual blocks and sub-pixel convolutions",
        coding_unit="full image",
        spatial_tools="none (a Gaussian scale mixture per channel)",
        rate_control="per-rate scale parameters fine-tuned on one base model",
        quality_range="about 0.2 to 1.5 bpp",
        refs=(3,),
    )
    fewest_bits_per_pixel = 5.6e-3  # measured: 1/32 of a flat image's at quality 1
    multiple = 8
    downsampling = 8
    renamed_modules = {"densities": "entropy.densities"}

    def __init__(self, N: int = 128, M: int = 96, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS, components: int = 6,
                 start: int = 16, grow: int = 16, every: int = 500) -> None:
        super().__init__(lmbdas, N=N, M=M, components=components, start=start, grow=grow, every=every)
        act = nn.LeakyReLU(0.2)
        self.analysis = nn.Sequential(
            Affine(2.0, -1.0), nn.Conv2d(3, N // 2, 5, 2, 2), act, nn.Conv2d(N // 2, N, 5, 2, 2), act,
            Residual(N), Residual(N), Residual(N), nn.Conv2d(N, M, 5, 2, 2),
        )
        self.synthesis = nn.Sequential(
            subpixel(M, N), act, Residual(N), Residual(N), Residual(N),
            subpixel(N, N // 2), act, subpixel(N // 2, 3), Affine(0.5, 0.5),
        )
        self.latent_channels = M
        self.gain = GainUnit(self.lmbdas, M)
        self.entropy = MixtureLatent(self.qualities, M, components)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def active(self) -> int:
        """How many coefficients (channels) incremental training has switched on so far."""
        config = self.config
        grown = config["start"] + config["grow"] * (int(self.steps) // max(config["every"], 1))
        return min(config["M"], grown)

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training pass: rounding with identity gradient, GSM rate; inactive coefficients are zero."""
        level = self.level_tensor(quality, x.shape[0], x.device)
        y = self.transform(self.analysis, x) * self.gain.gain(level)
        if self.training:
            mask = (torch.arange(y.shape[1], device=y.device) < self.active()).to(y).view(1, -1, 1, 1)
            y = y * mask
        out = self.entropy(y, level)
        x_hat = self.transform(self.synthesis, out.y_hat * self.gain.inverse_gain(level))
        return RDOutput(x_hat, out.likelihoods)

    def after_step(self, output: RDOutput, terms: dict[str, Tensor]) -> None:
        """Count the training step (incremental training's schedule)."""
        self.steps += 1

