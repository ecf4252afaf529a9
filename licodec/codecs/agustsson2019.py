"""Agustsson, Tschannen, Mentzer, Timofte & Van Gool, "Generative adversarial networks for extreme learned image
compression", ICCV 2019 [7]: global generative compression (GC), and selective generation (SC) as an option.

    x --E--> w (C channels at 1/16) --Q (L learned centers)--> w_hat --G--> x_hat      D judges x against x_hat

- E: a 7x7 convolution and four stride-2 convolutions (instance norm, ReLU; `norm="channel"`: HiFiC's channel
  norm, which keeps the image's colour), then a 3x3 convolution to the bottleneck of C channels. Q: soft-to-hard
  quantization to L = 5 learned scalar centers ([13]).
- G: a convolution up to the widest width, residual blocks, four transposed convolutions back to full size.
- D (training only, not shipped): a multi-scale patch discriminator (three scales), least-squares GAN loss,
  with feature matching and an MSE term for G (`generator_loss`, `discriminator_loss`).
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
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy import coder
from licodec.entropy.categorical import CategoricalPriors
from licodec.entropy.tables import quantize_pmfs
from licodec.errors import BitstreamError
from licodec.quant.softhard import SoftToHard
from licodec.registry import register
from licodec.taxonomy import Taxonomy

LIKELIHOOD_BOUND = 1e-9


class ChannelNorm(nn.Module):
    """Normalization over the channels at each position, with a learned scale and offset per channel (HiFiC,
    Mentzer et al. 2020). Instance norm, the paper's, normalizes each channel over the whole image: it removes
    the image's mean colour and brightness, which G then cannot restore (our first GC model gave a red kodim02
    back grey), and its statistics change with the image size between training crops and full images."""

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


class PatchDiscriminator(nn.Module):
    """Multi-scale PatchGAN (three scales): returns, per scale, the list of intermediate features and the map."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), scales: int = 3) -> None:
        super().__init__()
        self.nets = nn.ModuleList()
        for _ in range(scales):
            layers, channels = [], 3
            for k, width in enumerate(widths):
                last = k == len(widths) - 1  # stride 1, 3x3 (the paper: 4x4) so that small crops still fit
                layers.append(nn.Sequential(nn.Conv2d(channels, width, 3 if last else 4, 1 if last else 2, 1),
                                            nn.LeakyReLU(0.2)))
                channels = width
            layers.append(nn.Conv2d(channels, 1, 3, 1, 1))
            self.nets.append(nn.ModuleList(layers))

    def forward(self, x: Tensor) -> list[list[Tensor]]:  # noqa: D102
        outputs = []
        for net in self.nets:
            features, h = [], x
            for layer in net:
                h = layer(h)
                features.append(h)
            outputs.append(features)
            x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        return outputs


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
    adversarial = True  # the training loop trains a discriminator beside it
    quality_unit = "bottlenecks"

    def __init__(self, widths: tuple[int, ...] = (60, 120, 240, 480, 960), bottlenecks: tuple[int, ...] = (2, 4, 8, 16),
                 centers: int = 5, residual_blocks: int = 9, mse_weight: float = 10.0,
                 feature_weight: float = 10.0, discriminator_widths: tuple[int, ...] = (64, 128, 256, 512),
                 norm: str = "instance") -> None:
        bottlenecks = tuple(int(b) for b in bottlenecks)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
        super().__init__(tuple(float(b) for b in bottlenecks), widths=list(widths), bottlenecks=list(bottlenecks),
                         centers=centers, residual_blocks=residual_blocks, mse_weight=mse_weight,
                         feature_weight=feature_weight, discriminator_widths=list(discriminator_widths), norm=norm)
        self.config.pop("lmbdas")
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

    def forward(self, x: Tensor, quality: Tensor, preserve: Tensor | None = None) -> RDOutput:
        """Training pass: a random bottleneck per sample (its `quality`); SC when `preserve` is given."""
        w = self.transform(self.analysis, x * 2 - 1)
        w_hat, symbols = self.quantizer(w)
        channels = torch.arange(w.shape[1], device=x.device).view(1, -1, 1, 1)
        active = (channels < self.bottleneck(quality).view(-1, 1, 1, 1)).to(w_hat)
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

    # --- training objective (used by the GAN training loop) ---------------------------------------------------

    def generator_loss(self, output: RDOutput, x: Tensor, discriminator: nn.Module,
                       metric: str = "mse") -> dict[str, Tensor]:
        """Least-squares GAN + feature matching + MSE (the GC objective of [7], whatever `metric` says); plus the
        symbol model's rate."""
        fake = discriminator(output.x_hat)
        with torch.no_grad():
            real = discriminator(x)
        adversarial = sum(((scale[-1] - 1) ** 2).mean() for scale in fake) / len(fake)
        matching = sum(F.l1_loss(f, r) for a, b in zip(fake, real) for f, r in zip(a[:-1], b[:-1])) / len(fake)
        mse = F.mse_loss(output.x_hat, x)
        bpp = output.bits() / (x.shape[-2] * x.shape[-1])
        loss = adversarial + self.config["feature_weight"] * matching + self.config["mse_weight"] * mse * 10
        psnr = -10 * torch.log10(((output.x_hat.detach().clamp(0, 1) - x) ** 2).mean().clamp(min=1e-10))
        return {"loss": loss + bpp.mean(), "g": adversarial.detach(), "bpp": bpp.mean().detach(), "psnr": psnr}

    @staticmethod
    def discriminator_loss(x: Tensor, x_hat: Tensor, discriminator: nn.Module) -> Tensor:
        """Least-squares GAN loss of D: real towards 1, generated towards 0."""
        real, fake = discriminator(x), discriminator(x_hat.detach())
        return sum(((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean() for r, f in zip(real, fake)) / len(real)

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
        return Encoded([mask_section, self._encode_symbols(coded)], x.shape[-2], x.shape[-1], quality)

    def _encode_symbols(self, symbols: np.ndarray) -> bytes:
        """Flag byte 1 + learned per-channel tables, or flag 0 + equal probabilities, whichever is smaller."""
        channels = np.broadcast_to(np.arange(symbols.shape[0]).reshape(-1, 1), symbols.shape)
        learned = coder.encode(symbols, channels, self.symbol_priors.tables)
        uniform = coder.encode(symbols, np.zeros_like(symbols), self._uniform_tables)
        return b"\x01" + learned if len(learned) < len(uniform) else b"\x00" + uniform

    @cached_property
    def _uniform_tables(self):
        """Equal probabilities over the centers: fixed-length coding, built once."""
        levels = self.quantizer.levels
        return quantize_pmfs([np.full(levels, 1.0 / levels)], [0.0], [0])

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output; without SC every latent position was coded."""
        level = int(self.check_quality(encoded.quality))
        C, total = self.config["bottlenecks"][level], max(self.config["bottlenecks"])
        padded_h, padded_w = self.padded_size(encoded.height, encoded.width)
        h, w = padded_h // 16, padded_w // 16
        mask_section, data = encoded.sections
        if mask_section:
            if len(mask_section) != math.ceil(h * w / 8):
                raise BitstreamError("preserve mask has the wrong size")
            keep = torch.from_numpy(np.unpackbits(np.frombuffer(mask_section, np.uint8))[: h * w].reshape(h, w) > 0)
        else:
            keep = torch.ones((h, w), dtype=torch.bool)
        if not data or data[0] not in (0, 1):
            raise BitstreamError("unknown symbol coding flag")
        count = int(keep.sum())
        if data[0] == 1:
            index = np.broadcast_to(np.arange(C).reshape(-1, 1), (C, count))
            coded = coder.decode(data[1:], index, self.symbol_priors.tables)
        else:
            coded = coder.decode(data[1:], np.zeros((C, count), dtype=np.int64), self._uniform_tables)
        if coded.size and (coded.min() < 0 or coded.max() >= self.quantizer.levels):
            raise BitstreamError("symbol out of the quantizer's alphabet")
        symbols = torch.zeros((1, total, h, w), dtype=torch.long)
        symbols[0, :C][:, keep] = torch.from_numpy(coded)
        w_hat = self.quantizer.dequantize(symbols)
        w_hat[:, C:] = 0
        x_hat = self.generate(w_hat, keep.view(1, 1, h, w).to(w_hat))
        return torch.nan_to_num(x_hat, nan=0.0)[..., : encoded.height, : encoded.width].clamp(0, 1)
