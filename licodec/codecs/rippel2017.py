"""Rippel & Bourdev, "Real-time adaptive image compression", ICML 2017 [6].

    x --pyramid (scales 1, 1/2, 1/4)--> per-scale features --interscale alignment (strided convolutions to 1/8,
      summed)--> coefficients in [0, 1] --quantize to B bits--> bitplanes --adaptive arithmetic coding-->

- Pyramidal analysis: the image at three scales, a small convolutional extractor per scale, and interscale
  alignment that brings every scale to the coefficients' resolution (1/8) by strided convolutions and sums them;
  `blocks` residual blocks then work at 1/8 before the coefficients (and after them in the synthesis).
  The synthesis mirrors it (transposed convolutions per scale, upsampled and summed).
- Quantization to B bits, then bitplane decomposition: each coefficient's B bits, most significant first. The
  coefficients are magnitudes in [0, 1] (clamped, so exact zeros wherever the pre-activation is negative; or a
  sigmoid, `bound="sigmoid"`), so a zero coefficient is all zero bits and ACR, which pulls magnitudes down, empties
  the most significant planes (docs/rippel2017.md says why not offset-binary codes).
- Adaptive arithmetic coding of the bitplanes with a learned context model, one of two (`coder`):
  `"bitplane"` (the paper's real-time design, `licodec.entropy.bitplane`): planes coded most significant first,
  each in twelve vectorized batches, every bit's probability from a small integer logistic model of its own more
  significant bits, its neighbours' bits in the earlier planes and the bits of the current plane already coded,
  fitted after training (`benchmarks/fit_rippel2017_coder.py`); or `"cnn"` (the first version, which every
  weights file that names no coder has): the bits form a volume ordered (channel, bitplane) x row x column and a
  masked 3D CNN (`VolumeContext`, integer at coding time) gives each bit's probability from the bits before it,
  walked in wavefronts (about 20 times slower).
- Adaptive codelength regularization (ACR): alpha times the mean log-magnitude of the quantized coefficients and
  of their differences to their left and upper neighbours, the paper's penalty that makes the bitplanes
  compressible; alpha adapts during training so that the estimated rate moves toward `target_bpp`, within a
  factor of 10 of its initial value (`target_bpp=None`: alpha stays fixed; bitplane truncation, not ACR, then sets
  the rate, and a target for the whole model means little when the rate varies sixfold with the planes kept).
- Optional adversarial loss (`adversarial=True`): the multi-scale patch discriminator of `agustsson2019-gc`.
- Rate control here: quality q keeps the q most significant bitplanes (1 .. B); training draws q per sample.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy.bitplane import OFFSET_BITS, BitplaneContext
from licodec.entropy.context import VolumeContext
from licodec.entropy.latent import LIKELIHOOD_BOUND
from licodec.nn.blocks import Residual
from licodec.nn.discriminator import PatchDiscriminator
from licodec.nn.resample import upsample_bilinear
from licodec.registry import register
from licodec.taxonomy import Taxonomy

SCALES = 3
CODERS = ("cnn", "bitplane")


# Every ReLU of the transforms follows a convolution whose output nothing else reads, so it runs in place: the same
# values, 5 % less time (the activations are 32 channels at full resolution, so the transforms are memory-bound).
def _down(channels: int, steps: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(steps):
        layers += [nn.Conv2d(channels, channels, 3, 2, 1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _up(channels: int, steps: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(steps):
        layers += [nn.ConvTranspose2d(channels, channels, 3, 2, 1, output_padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class PyramidAnalysis(nn.Module):
    """Features per scale, aligned to 1/8 resolution and summed, then C coefficients in [0, 1]: the pre-activation
    clamped to [0, 1], which gives exact zeros wherever it is negative (`bound="clamp"`), or a sigmoid."""

    def __init__(self, features: int, channels: int, blocks: int = 0, bound: str = "clamp") -> None:
        super().__init__()
        if bound not in ("sigmoid", "clamp"):
            raise ValueError(f"bound must be 'sigmoid' or 'clamp', not {bound!r}")
        self.bound = bound
        self.extract = nn.ModuleList(nn.Sequential(nn.Conv2d(3, features, 3, 1, 1), nn.ReLU(inplace=True),
                                                   nn.Conv2d(features, features, 3, 1, 1), nn.ReLU(inplace=True))
                                     for _ in range(SCALES))
        self.align = nn.ModuleList(_down(features, 3 - s) for s in range(SCALES))
        self.body = nn.Sequential(*(Residual(features) for _ in range(blocks)))
        self.out = nn.Conv2d(features, channels, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        total = 0
        for s in range(SCALES):
            scaled = x if s == 0 else F.avg_pool2d(x, 2**s)
            total = total + self.align[s](self.extract[s](scaled))
        pre = self.out(self.body(total))
        return torch.sigmoid(pre) if self.bound == "sigmoid" else pre.clamp(0, 1)


class PyramidSynthesis(nn.Module):
    """The mirror: per-scale transposed convolutions from 1/8, reconstructions upsampled and summed."""

    def __init__(self, features: int, channels: int, blocks: int = 0) -> None:
        super().__init__()
        self.inp = nn.Sequential(nn.Conv2d(channels, features, 3, 1, 1), nn.ReLU(inplace=True),
                                 *(Residual(features) for _ in range(blocks)))
        self.align = nn.ModuleList(_up(features, 3 - s) for s in range(SCALES))
        self.render = nn.ModuleList(nn.Conv2d(features, 3, 3, 1, 1) for _ in range(SCALES))

    def forward(self, y: Tensor) -> Tensor:  # noqa: D102
        h = self.inp(y)
        total = 0
        for s in range(SCALES):
            image = self.render[s](self.align[s](h))
            total = total + (image if s == 0 else upsample_bilinear(image, 2**s))
        return total + 0.5


@register("rippel2017")
class RealTimeAdaptive(Codec):
    """[6]: pyramidal analysis, bitplane coding with a learned context model, ACR; optional GAN loss."""

    taxonomy = Taxonomy(
        reference="[6] Rippel, Bourdev 2017",
        network="multiscale CNN with interscale alignment; context model over bitplanes; optional GAN",
        coding_unit="full image",
        spatial_tools="bitplane context model (neighbours and more significant bitplanes); ACR",
        rate_control="adaptive codelength regularization toward a target; here also bitplane truncation",
        quality_range="about 0.1 to 1 bpp",
        refs=(6,),
    )
    fewest_bits_per_pixel = 2e-4  # measured: 1/32 of a flat image's at quality 1
    multiple = 8
    downsampling = 8
    quality_unit = "bitplanes"
    objective = "adaptive-codelength"

    def __init__(self, features: int = 64, channels: int = 32, bitplanes: int = 6, context_filters: int = 16,
                 lmbda: float = 0.01, alpha: float = 0.01, target_bpp: float | None = 0.5,
                 adversarial: bool = False, blocks: int = 2, bound: str = "clamp", mse_weight: float = 0.0,
                 coder: str = "cnn", colour_weight: float = 0.0) -> None:
        """`coder`: "cnn" (the 3D context network, trained with the transforms; what every weights file that
        names no coder uses) or "bitplane" (the integer logistic model, fitted afterwards; no rate gradient).
        `mse_weight`, `colour_weight`: training terms beside the metric (`licodec.train.losses.adaptive_codelength`)."""
        if coder not in CODERS:
            raise ValueError(f"coder must be one of {', '.join(CODERS)}, not {coder!r}")
        # a config without these options stays as the files written before they existed had it
        extra = {"coder": coder} if coder != "cnn" else {}
        if colour_weight:
            extra["colour_weight"] = colour_weight
        super().__init__(qualities=bitplanes, features=features, channels=channels, bitplanes=bitplanes,
                         context_filters=context_filters, lmbda=lmbda, alpha=alpha, target_bpp=target_bpp,
                         adversarial=adversarial, blocks=blocks, bound=bound, mse_weight=mse_weight, **extra)
        self.analysis = PyramidAnalysis(features, channels, blocks, bound)
        self.synthesis = PyramidSynthesis(features, channels, blocks)
        if coder == "cnn":
            self.context = VolumeContext(2, context_filters)
        else:
            self.bitplane_context = BitplaneContext(channels, bitplanes)
        self.adversarial = adversarial
        self.register_buffer("alpha", torch.tensor(float(alpha)))

    # --- quantization and bitplanes -----------------------------------------------------------------------

    @property
    def top(self) -> int:
        """The largest quantized value, 2**B - 1."""
        return (1 << self.config["bitplanes"]) - 1

    def quantize(self, y: Tensor, planes: Tensor) -> tuple[Tensor, Tensor]:
        """(y_hat in [0, 1] with identity gradient, integer codes) keeping the `planes` most significant
        bitplanes of each sample (the dropped ones read as the middle of their interval)."""
        B = self.config["bitplanes"]
        scaled = y * self.top
        codes = torch.round(scaled).long().clamp(0, self.top)
        drop = (B - planes).view(-1, 1, 1, 1)
        kept = torch.div(codes, 2**drop, rounding_mode="floor") * 2**drop
        return y + (self.dequantize(kept, planes, y.dtype) - y).detach(), kept

    def dequantize(self, kept: Tensor, planes: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """Values in [0, 1] of codes that keep `planes` bitplanes (per sample): a dropped plane reads as the middle
        of its interval."""
        drop = (self.config["bitplanes"] - planes).view(-1, 1, 1, 1)
        middle = torch.where(drop > 0, 2 ** (drop - 1), 0)
        return (kept + middle).clamp(0, self.top).to(dtype) / self.top

    def bitplanes(self, codes: Tensor) -> Tensor:
        """(N, C, H, W) codes -> (N, C * B, H, W) bits, each coefficient's bits consecutive, MSB first."""
        B = self.config["bitplanes"]
        shifts = torch.arange(B - 1, -1, -1, device=codes.device).view(1, 1, B, 1, 1)
        bits = torch.bitwise_and(torch.bitwise_right_shift(codes.unsqueeze(2), shifts), 1)
        return bits.flatten(1, 2)

    def codes_from(self, bits: Tensor) -> Tensor:
        """Inverse of `bitplanes` (missing planes are zeros)."""
        B = self.config["bitplanes"]
        n, _, h, w = bits.shape
        weights = (2 ** torch.arange(B - 1, -1, -1)).view(1, 1, B, 1, 1)
        return (bits.view(n, -1, B, h, w) * weights).sum(2)

    def acr(self, codes: Tensor) -> Tensor:
        """Adaptive codelength regularization per sample: mean log2(1 + c) of the codes (magnitudes, c >= 0) and
        mean log2(1 + |difference|) to their left and upper neighbours (on the straight-through values)."""
        terms = torch.log2(1 + codes).flatten(1).mean(1)
        terms = terms + torch.log2(1 + (codes[..., 1:] - codes[..., :-1]).abs()).flatten(1).mean(1)
        return terms + torch.log2(1 + (codes[..., 1:, :] - codes[..., :-1, :]).abs()).flatten(1).mean(1)

    # --- training -------------------------------------------------------------------------------------------

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training pass with `quality + 1` bitplanes per sample."""
        level = self.level_tensor(quality, x.shape[0], x.device)
        planes = level + 1
        y = self.transform(self.analysis, x)
        y_hat, codes = self.quantize(y, planes)
        x_hat = self.transform(self.synthesis, y_hat)
        scaled = y_hat * self.top  # straight-through codes, for ACR's gradient
        if self.coder == "bitplane":
            # The coder's own probabilities (no gradient: the coder is fitted afterwards) and its side information,
            # the per-image offsets (bits at probability 1/2).
            estimates = [self.bitplane_context.probabilities(c, int(p)) for c, p in zip(codes.cpu(), planes.cpu())]
            likelihood = torch.stack([e[0] for e in estimates]).to(y.device, torch.float32)
            side_bits = torch.tensor([e[1] for e in estimates], device=y.device)
            most = self.config["bitplanes"] * self.config["channels"] * OFFSET_BITS
            side = torch.where(torch.arange(most, device=y.device) < side_bits[:, None], 0.5, 1.0)
            return RDOutput(x_hat, {"bits": likelihood.clamp(min=LIKELIHOOD_BOUND), "offsets": side},
                            {"acr": self.acr(scaled)})
        bits = self.bitplanes(codes)
        B = self.config["bitplanes"]
        coded = (torch.arange(B, device=x.device).view(1, 1, B, 1, 1) < planes.view(-1, 1, 1, 1, 1))
        coded = coded.expand(-1, y.shape[1], -1, *y.shape[-2:]).flatten(1, 2)
        # The context sees a plane that is not coded as 0, as the coder does (coded bits are -1 or +1).
        logits = self.context.logits(torch.where(coded, bits.float() * 2 - 1, 0.0))
        probabilities = torch.softmax(logits.float(), dim=1)
        chosen = torch.gather(probabilities, 1, bits.unsqueeze(1)).squeeze(1).clamp(min=LIKELIHOOD_BOUND)
        likelihood = torch.where(coded, chosen, torch.ones_like(chosen))
        return RDOutput(x_hat, {"bits": likelihood}, {"acr": self.acr(scaled)})

    def after_step(self, output: RDOutput, terms: dict[str, Tensor]) -> None:
        """ACR's weight follows the rate: alpha grows by 1 % while the step's estimated rate is above
        `target_bpp`, shrinks by 1 % below it, and stays within a factor of 10 of its start (a target the model
        cannot reach at its current quality would otherwise grow alpha until ACR is all the loss)."""
        if self.config["target_bpp"] is None:
            return
        with torch.no_grad():
            self.alpha.mul_(1.01 if float(terms["bpp"]) > self.config["target_bpp"] else 0.99)
            self.alpha.clamp_(self.config["alpha"] / 10, self.config["alpha"] * 10)

    def build_discriminator(self) -> nn.Module:
        """The multi-scale patch discriminator (training only)."""
        return PatchDiscriminator()

    @property
    def coder(self) -> str:
        """Which bitplane coder the codec uses: "cnn" or "bitplane"."""
        return self.config.get("coder", "cnn")

    def update(self) -> None:
        """Forget the integer context network (or the bitplane coder's numpy tables)."""
        (self.context if self.coder == "cnn" else self.bitplane_context).reset()

    # --- coding ---------------------------------------------------------------------------------------------

    def _coded(self, planes: int, shape: tuple[int, int]) -> Tensor:
        B = self.config["bitplanes"]
        coded = (torch.arange(B) < planes).view(1, B, 1, 1).expand(self.config["channels"], -1, *shape)
        return coded.reshape(-1, *shape)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code the `quality` most significant bitplanes with the context model."""
        planes = int(self.check_quality(quality)) + 1
        y = self.transform(self.analysis, self.layout(self.pad(x)))
        _, codes = self.quantize(y, torch.tensor([planes]))
        if self.coder == "bitplane":
            return Encoded([self.bitplane_context.encode(codes[0], planes)], x.shape[-2], x.shape[-1], planes)
        bits = self.bitplanes(codes)[0]
        section = self.context.encode(torch.tensor([-1.0, 1.0]), bits, self._coded(planes, bits.shape[-2:]))
        return Encoded([section], x.shape[-2], x.shape[-1], planes)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        planes = int(self.check_quality(encoded.quality)) + 1
        padded_h, padded_w = self.padded_size(encoded.height, encoded.width)
        shape = (padded_h // self.downsampling, padded_w // self.downsampling)
        if self.coder == "bitplane":
            codes = self.bitplane_context.decode(encoded.sections[0], planes, (self.config["channels"], *shape))[None]
        else:
            bits = self.context.decode(encoded.sections[0], torch.tensor([-1.0, 1.0]), self._coded(planes, shape))
            codes = self.codes_from(bits.clamp(min=0).unsqueeze(0))
        y_hat = self.dequantize(codes, torch.tensor([planes]))
        x_hat = self.transform(self.synthesis, self.layout(y_hat))
        return torch.nan_to_num(x_hat, nan=0.0)[..., : encoded.height, : encoded.width].clamp(0, 1)
