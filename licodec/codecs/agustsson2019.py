"""Agustsson, Tschannen, Mentzer, Timofte & Van Gool, "Generative adversarial networks for extreme learned image
compression", ICCV 2019 [7]: global generative compression (GC), and selective generation (SC) as an option.

    x --E--> w (C channels at 1/16) --Q (L learned centers)--> w_hat --G--> x_hat      D judges x against x_hat

- E: a 7x7 convolution and four stride-2 convolutions (instance norm, ReLU; `norm="channel"`: HiFiC's channel
  norm, which keeps the image's colour), then a 3x3 convolution to the bottleneck of C channels. Q: soft-to-hard
  quantization to L = 5 learned scalar centers ([13]).
- G: a convolution up to the widest width, residual blocks, four transposed convolutions back to full size.
- D (training only, not shipped): a multi-scale patch discriminator (three scales), least-squares GAN loss,
  with feature matching and an MSE term for G (`licodec.train.losses.generative`).
- One model holds several bottlenecks: quality q codes the first `bottlenecks[q - 1]` channels (the others are
  zero for G), trained with a random bottleneck per sample, so one weights file serves C = 2, 4, 8, 16.
- The symbols are entropy coded with a learned categorical per channel when that is smaller than storing them
  with equal probabilities (log2 L bits each, i.e. fixed length); a flag byte says which, per file. The GAN
  drives the symbols towards the uniform use of all centers at tiny C, where fixed length often wins.
- SC: `compress(x, q, preserve=mask)` codes only the latent positions the mask (1 = preserve) touches, and sends
  the mask at latent resolution; G, which sees the mask as an extra channel, synthesizes the rest.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy.categorical import CategoricalPriors
from licodec.entropy.latent import LIKELIHOOD_BOUND
from licodec.errors import BitstreamError
from licodec.nn.discriminator import PatchDiscriminator
from licodec.quant.softhard import SoftToHard
from licodec.registry import register
from licodec.taxonomy import Taxonomy


class ChannelNorm(nn.Module):
    """Normalization over the channels at each position, with a learned scale and offset per channel (HiFiC,
    Mentzer et al. 2020). Instance norm, the paper's, normalizes each channel over the whole image: it removes
    the image's mean colour and brightness, which G then cannot restore, and its statistics change with the image
    size between training crops and full images (docs/agustsson2019-gc.md)."""

    def __init__(self, channels: int, eps: float = 1e-3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        dtype = x.dtype
        x = x.float()
        mean = x.mean(1, keepdim=True)
        variance = x.var(1, keepdim=True, unbiased=False)
        return ((x - mean) * torch.rsqrt(variance + self.eps) * self.weight + self.bias).to(dtype)


NORMS = {"instance": lambda channels: nn.InstanceNorm2d(channels, affine=True), "channel": ChannelNorm}


def _block(in_channels: int, out_channels: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2),
                         NORMS[norm](out_channels), nn.ReLU())


class _Residual(nn.Module):
    def __init__(self, channels: int, norm: str) -> None:
        super().__init__()
        self.body = nn.Sequential(_block(channels, channels, 3, 1, norm), nn.Conv2d(channels, channels, 3, 1, 1),
                                  NORMS[norm](channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@register("agustsson2019-gc")
class GenerativeCompression(Codec):
    """GC at extreme rates: narrow quantized bottleneck, GAN-trained generator; SC as an option."""

    taxonomy = Taxonomy(
        reference="[7] Agustsson, Tschannen, Mentzer, Timofte, Van Gool 2019",
        network="CNN encoder, residual generator, multi-scale patch discriminator (GAN)",
        coding_unit="full image",
        spatial_tools="none; selective generation from a preserve mask (SC)",
        rate_control="bottleneck size (channels of the latent); one model here for C = 2, 4, 8, 16",
        quality_range="about 0.01 to 0.15 bpp",
        refs=(7, 13),
    )
    fewest_bits_per_pixel = 5e-4  # measured: 1/32 of a flat image's at quality 1
    multiple = 16
    downsampling = 16
    adversarial = True  # the training loop trains a discriminator beside it
    objective = "generative"
    quality_unit = "bottlenecks"

    def __init__(self, widths: tuple[int, ...] = (60, 120, 240, 480, 960), bottlenecks: tuple[int, ...] = (2, 4, 8, 16),
                 centers: int = 5, residual_blocks: int = 9, mse_weight: float = 10.0,
                 feature_weight: float = 10.0, discriminator_widths: tuple[int, ...] = (64, 128, 256, 512),
                 norm: str = "instance") -> None:
        bottlenecks = tuple(int(b) for b in bottlenecks)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
        super().__init__(qualities=len(bottlenecks), widths=list(widths), bottlenecks=list(bottlenecks),
                         centers=centers, residual_blocks=residual_blocks, mse_weight=mse_weight,
                         feature_weight=feature_weight, discriminator_widths=list(discriminator_widths), norm=norm)
        C = max(bottlenecks)
        self.analysis = nn.Sequential(
            _block(3, widths[0], 7, 1, norm), *[_block(a, b, 3, 2, norm) for a, b in zip(widths[:-1], widths[1:])],
            nn.Conv2d(widths[-1], C, 3, 1, 1),
        )
        up = list(reversed(widths))
        self.synthesis = nn.Sequential(
            _block(C + 1, up[0], 3, 1, norm), *[_Residual(up[0], norm) for _ in range(residual_blocks)],
            *[nn.Sequential(nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1),
                            NORMS[norm](b), nn.ReLU()) for a, b in zip(up[:-1], up[1:])],
            nn.Conv2d(up[-1], 3, 7, 1, 3), nn.Tanh(),
        )
        self.quantizer = SoftToHard(centers)
        self.symbol_priors = CategoricalPriors(C, centers)  # one categorical per channel ("level" = channel)

    def bottleneck(self, quality: Tensor) -> Tensor:
        """Channels coded at each 0-based quality, as a tensor."""
        return torch.tensor(self.config["bottlenecks"], device=quality.device)[quality]

    def generate(self, w_hat: Tensor, keep: Tensor) -> Tensor:
        """G from the quantized latent and the map of coded positions (1, or 0 where G must synthesize)."""
        x = self.transform(self.synthesis, torch.cat([w_hat * keep, keep], dim=1))
        return x / 2 + 0.5

    def forward(self, x: Tensor, quality: Tensor | float | None = None, preserve: Tensor | None = None) -> RDOutput:
        """Training pass: a random bottleneck per sample (its `quality`); SC when `preserve` is given."""
        level = self.level_tensor(quality, x.shape[0], x.device)
        w = self.transform(self.analysis, x * 2 - 1)
        w_hat, symbols = self.quantizer(w)
        channels = torch.arange(w.shape[1], device=x.device).view(1, -1, 1, 1)
        active = (channels < self.bottleneck(level).view(-1, 1, 1, 1)).to(w_hat)
        keep = torch.ones_like(w_hat[:, :1]) if preserve is None else self.latent_mask(preserve)
        x_hat = self.generate(w_hat * active, keep)
        # The symbol model learns the statistics of each channel (its input is detached: it does not shape E).
        probabilities = torch.softmax(self.symbol_priors.logits, dim=1)  # (C, L)
        chosen = probabilities[channels.expand_as(symbols), symbols.detach()]
        likelihood = torch.exp(torch.log(chosen.clamp(min=LIKELIHOOD_BOUND)) * active * keep)
        return RDOutput(x_hat, {"w": likelihood})

    @staticmethod
    def latent_mask(preserve: Tensor) -> Tensor:
        """A (N, 1, H, W) preserve mask at latent resolution: a latent position is coded if its 16x16 block
        touches the mask."""
        return F.max_pool2d(preserve.float(), 16, 16, ceil_mode=True)

    def update(self) -> None:
        """Freeze the per-channel symbol tables."""
        self.symbol_priors.update()

    def build_discriminator(self) -> nn.Module:
        """A fresh discriminator for training (it is not part of the shipped weights)."""
        return PatchDiscriminator(tuple(self.config["discriminator_widths"]))

    # --- coding ---------------------------------------------------------------------------------------------

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float, preserve: Tensor | None = None) -> Encoded:
        """Sections: the coded-position mask (empty without SC) and the symbols with a flag byte."""
        level = int(self.check_quality(quality))
        C = self.config["bottlenecks"][level]
        padded = self.pad(x)
        symbols = self.quantizer.indices(self.transform(self.analysis, self.layout(padded * 2 - 1)))[0, :C]
        if preserve is None:
            mask_section, keep = b"", torch.ones(symbols.shape[-2:], dtype=torch.bool)
        else:
            preserve = F.pad(preserve.float().view(1, 1, *x.shape[-2:]),
                             (0, padded.shape[-1] - x.shape[-1], 0, padded.shape[-2] - x.shape[-2]))
            keep = self.latent_mask(preserve)[0, 0] > 0
            mask_section = np.packbits(keep.numpy().astype(np.uint8).ravel()).tobytes()
        coded = symbols[:, keep].numpy()  # (C, positions kept), channel by channel
        return Encoded([mask_section, self.symbol_priors.encode_rows(coded)], x.shape[-2], x.shape[-1], quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output; without SC every latent position was coded."""
        level = int(self.check_quality(encoded.quality))
        C, total = self.config["bottlenecks"][level], max(self.config["bottlenecks"])
        padded_h, padded_w = self.padded_size(encoded.height, encoded.width)
        h, w = padded_h // self.downsampling, padded_w // self.downsampling
        mask_section, data = encoded.sections
        if mask_section:
            if len(mask_section) != math.ceil(h * w / 8):
                raise BitstreamError("preserve mask has the wrong size")
            keep = torch.from_numpy(np.unpackbits(np.frombuffer(mask_section, np.uint8))[: h * w].reshape(h, w) > 0)
        else:
            keep = torch.ones((h, w), dtype=torch.bool)
        coded = self.symbol_priors.decode_rows(data, C, int(keep.sum()))
        symbols = torch.zeros((1, total, h, w), dtype=torch.long)
        symbols[0, :C][:, keep] = torch.from_numpy(coded)
        w_hat = self.quantizer.dequantize(symbols)
        w_hat[:, C:] = 0
        x_hat = self.generate(w_hat, keep.view(1, 1, h, w).to(w_hat))
        return torch.nan_to_num(x_hat, nan=0.0)[..., : encoded.height, : encoded.width].clamp(0, 1)
