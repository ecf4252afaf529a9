"""What every codec is: a module trained with `forward` and used with `compress` / `decompress`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.bitstream import QUALITY_STEPS
from licodec.entropy.latent import LatentCodec
from licodec.errors import CodecError
from licodec.nn.ops import run_transform
from licodec.taxonomy import Taxonomy

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def snap_quality(quality: float) -> float:
    """`quality` rounded to the nearest multiple of 1/QUALITY_STEPS (integers stay integers)."""
    return math.floor(quality * QUALITY_STEPS + 0.5) / QUALITY_STEPS


@dataclass
class RDOutput:
    """Result of a training pass: the reconstruction and the likelihood of every coded latent."""

    x_hat: Tensor
    likelihoods: dict[str, Tensor]
    aux: dict[str, Tensor] = field(default_factory=dict)

    def bits(self) -> Tensor:
        """Estimated bits per image, shape (N,)."""
        total = 0
        for likelihood in self.likelihoods.values():
            total = total + (-torch.log2(likelihood)).flatten(1).sum(1)
        return total


@dataclass
class Encoded:
    """A compressed image: the byte sections and what the decoder needs beside them."""

    sections: list[bytes]
    height: int
    width: int
    quality: float


class Codec(nn.Module):
    """Base class. Subclasses set `name`, `taxonomy`, `multiple` and implement the four methods."""

    name: ClassVar[str]
    taxonomy: ClassVar[Taxonomy]
    multiple: ClassVar[int] = 64  # input sides are padded (replicating the border) to a multiple of this
    downsampling: ClassVar[int] = 16  # how much smaller the coded latent's sides are than the padded image's
    progressive: ClassVar[bool] = False  # one section per iteration; any prefix of iterations decodes
    quality_unit: ClassVar[str | None] = None  # qualities that count something (iterations) are integers only
    fewest_bits_per_pixel: ClassVar[float] = 0.0  # a payload below this for its size (per quality unit) is forged
    # {old module name: today's}: where sub-modules lived when older weights files were written (`licodec.zoo`
    # maps their tensor names on loading; the files themselves are never rewritten).
    renamed_modules: ClassVar[dict[str, str]] = {}
    objective: ClassVar[str] = "rate-distortion"  # its training objective: a key of licodec.train.losses.OBJECTIVES
    overfitted: ClassVar[bool] = False  # learned per image at encode time: no weights file, `standalone()` builds it
    encoder_revision: ClassVar[int] = 0  # an overfitted codec's encoder version: a new one makes other files
    adversarial: bool = False  # trained beside a discriminator (`build_discriminator`)
    weights_hash: str | None = None  # of the weights file the codec was loaded from (set by `licodec.zoo`)

    @classmethod
    def current_name(cls, name: str) -> str:
        """Today's name of a parameter, buffer or module named `name` by an older version (`renamed_modules`)."""
        for old, new in cls.renamed_modules.items():
            if name == old or name.startswith(old + "."):
                return new + name[len(old):]
        return name

    def sections_for(self, iterations: int) -> int:
        """How many leading sections hold the first `iterations` iterations (progressive codecs)."""
        return iterations

    def decodable(self, sections: int) -> bool:
        """Whether a prefix of `sections` sections can be decoded (progressive codecs)."""
        return sections >= 1

    def __init__(self, lmbdas: tuple[float, ...] = (), qualities: int | None = None, **config) -> None:
        """`lmbdas`: the rate-distortion lambda of each quality level, for codecs whose levels are lambdas;
        `qualities`: the number of levels of the others (iterations, bitplanes, bottleneck sizes). `config` is
        every constructor argument, stored with the weights to rebuild the codec."""
        super().__init__()
        self.lmbdas = tuple(float(v) for v in lmbdas)
        if qualities is None and not self.lmbdas:
            raise CodecError(f"{type(self).__name__}: give the levels' lambdas or their number")
        self._qualities = len(self.lmbdas) if qualities is None else int(qualities)
        self.config = {"lmbdas": list(self.lmbdas), **config} if self.lmbdas else dict(config)
        self.transform_dtype: torch.dtype | None = None  # bfloat16: mixed-precision training of the transforms

    @classmethod
    def standalone(cls) -> Codec:
        """An overfitted codec ready to code, with nothing to load; other codecs need their weights."""
        raise CodecError(f"{cls.name} needs trained weights (licodec.load)")

    @contextmanager
    def encoding(self, effort: int | None = None, warm_start: bool = False) -> Iterator[Codec]:
        """Encoder settings for the duration of a `with` block. Only overfitted codecs have any (`effort`; with
        `warm_start`, rate control starts each search step from the last); the others refuse an effort."""
        if effort is not None:
            raise CodecError(f"{self.name} has no effort setting (only overfitted codecs learn at encode time)")
        yield self

    @contextmanager
    def precision(self, name: str) -> Iterator[None]:
        """Code with the transforms in "fp32" (default) or "bf16" for the duration of a `with` block.

        bf16 runs the analysis and synthesis transforms under bfloat16 autocast, about 1.5x faster on CPUs with
        AMX. It changes the float rounding of the transforms only: the files stay decodable by either precision,
        as table selection is integer arithmetic either way; the decoded pixels differ slightly.
        """
        if name not in PRECISIONS:
            raise CodecError(f"unknown precision {name!r}; expected one of {', '.join(PRECISIONS)}")
        holders = [self, *(m for m in self.modules() if isinstance(m, LatentCodec))]
        saved = [holder.transform_dtype for holder in holders]
        for holder in holders:
            holder.transform_dtype = PRECISIONS[name]
        try:
            yield
        finally:
            for holder, dtype in zip(holders, saved):
                holder.transform_dtype = dtype

    def transform(self, network: nn.Module, x: Tensor) -> Tensor:
        """Run one of the codec's transforms, under autocast when `transform_dtype` is set; returns float32.

        Only the transforms take the lower precision; the entropy models always compute likelihoods in float32.
        """
        return run_transform(network, x, self.transform_dtype)

    @property
    def qualities(self) -> int:
        """Number of quality levels: qualities run from 1 to this."""
        return self._qualities

    def check_quality(self, quality: float) -> float:
        """Validate a 1-based quality and return the 0-based level.

        Integer qualities are the trained levels; a number in between interpolates the gains of its two neighbours
        (the continuous rate knob of rate control). Qualities are snapped to steps of 1/QUALITY_STEPS, the
        resolution the file header stores."""
        if isinstance(quality, bool) or not isinstance(quality, (int, float)) or not 1 <= quality <= self.qualities:
            raise CodecError(f"quality must be a number from 1 to {self.qualities}, got {quality!r}")
        if self.quality_unit is not None:
            if not float(quality).is_integer():
                raise CodecError(f"quality counts {self.quality_unit} here: an integer from 1 to "
                                 f"{self.qualities}, got {quality!r}")
            return int(quality) - 1
        return snap_quality(quality) - 1

    def level_tensor(self, quality: Tensor | float | None, batch: int, device: torch.device | None = None) -> Tensor:
        """The 0-based levels, one per sample, of 1-based qualities: a number for the whole batch or a tensor of
        one per sample; None is the highest quality. Integer qualities give int64 levels (exactly the trained
        ones); others float levels, between two trained ones (see `check_quality`)."""
        quality = torch.as_tensor(self.qualities if quality is None else quality, device=device)
        if quality.dim() == 0:
            quality = quality.expand(batch)
        if quality.dtype == torch.bool or bool(((quality < 1) | (quality > self.qualities)).any()):
            raise CodecError(f"qualities must be from 1 to {self.qualities}, got {quality.tolist()}")
        if quality.is_floating_point() and bool((quality == torch.round(quality)).all()):
            quality = quality.long()
        return quality - 1

    def pad(self, x: Tensor) -> Tensor:
        """Replicate-pad the bottom and right edges to a multiple of `multiple`."""
        height, width = x.shape[-2:]
        pad_h = (-height) % self.multiple
        pad_w = (-width) % self.multiple
        if not pad_h and not pad_w:
            return x
        # Replicate padding needs at least one pixel; inputs always have one.
        return F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")

    def prepare(self) -> Codec:
        """Ready the codec for coding: eval mode and channels-last weights.

        Channels-last lets oneDNN pick its fastest convolution kernels on the CPU (about twice as fast for the
        transposed convolutions of g_s). It changes the float rounding of the transforms only, never the integer
        path that selects probability tables.
        """
        self.eval()
        return self.channels_last()

    def channels_last(self) -> Codec:
        """Channels-last weights for every 2D convolution (3D ones, as in context models, keep their layout)."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.to(memory_format=torch.channels_last)
        return self

    @staticmethod
    def layout(x: Tensor) -> Tensor:
        """A transform input in the memory layout `prepare` chose."""
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the transforms see for an image of height x width."""
        return height + (-height) % self.multiple, width + (-width) % self.multiple

    def reconstruct(self, y_hat: Tensor, level: float, encoded: Encoded) -> Tensor:
        """The decoded image from y_hat (float64), cropped to its size, in [0, 1], for codecs with a `synthesis`
        transform and a `gain` unit.

        A damaged file can decode to absurd escape values; they are clamped to +-2**16 (no real latent comes near)
        and whatever overflows in the synthesis is mapped to 0, so the output is always a valid image."""
        inverse_gain = self.gain.inverse_gain(torch.tensor([level]))
        y_hat = y_hat.clamp(-(1 << 16), 1 << 16).float() * inverse_gain
        x_hat = torch.nan_to_num(self.transform(self.synthesis, self.layout(y_hat)), nan=0.0)
        return x_hat[..., : encoded.height, : encoded.width].clamp(0, 1)

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:  # noqa: D102
        raise NotImplementedError

    def compress(self, x: Tensor, quality: float) -> Encoded:  # noqa: D102
        raise NotImplementedError

    def decompress(self, encoded: Encoded) -> Tensor:  # noqa: D102
        raise NotImplementedError

    def update(self) -> None:  # noqa: D102
        raise NotImplementedError

    # -- the training contract (licodec.train.loop) --------------------------------------------------------------

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The trainable parameters by optimizer group: "density" (the learned densities' and categoricals' own
        parameters, which learn `density_lr_scale` times faster: they start wide), "quantiles" (trained by
        `aux_loss` alone, with their own optimizer) and "main" (everything else)."""
        groups: dict[str, list[nn.Parameter]] = {"main": [], "density": [], "quantiles": []}
        for name, parameter in self.named_parameters():
            if name.endswith("quantiles"):
                groups["quantiles"].append(parameter)
            elif "densities." in name or "priors." in name:
                groups["density"].append(parameter)
            else:
                groups["main"].append(parameter)
        return groups

    def before_step(self, step: int, x: Tensor, level: Tensor) -> None:
        """Called by the training loop before training step `step` (0-based) on batch `x` at 0-based levels
        `level`. With `after_step`, the only place where a codec changes its own state outside the optimizer
        (refits to the data, schedules): `forward` never does."""

    def after_step(self, output: RDOutput, terms: dict[str, Tensor]) -> None:
        """Called by the training loop after each optimizer step, with the step's output and objective terms."""

    def build_discriminator(self) -> nn.Module:
        """A fresh discriminator for adversarial training (not part of the weights)."""
        raise CodecError(f"{self.name} does not train adversarially")

    def aux_loss(self) -> Tensor:
        """Auxiliary loss (the quantiles of factorized densities); zero when there is none."""
        losses = [m.aux_loss() for m in self.modules() if m is not self and hasattr(m, "aux_loss")]
        return sum(losses) if losses else torch.zeros(())


class TransformCodec(Codec):
    """A transform codec composed of a latent codec (`licodec.entropy.latent`):

        x --analysis--> y * gain --entropy--> y_hat --/ gain--> synthesis --> x_hat

    Subclasses build `analysis`, `synthesis`, `gain` (a `GainUnit`) and `entropy` (a `LatentCodec`), and set
    `downsampling` (how much smaller y is than the padded image) and `latent_channels`. Everything else, the
    training pass and the coding, is here; the codec itself codes no bytes."""

    latent_channels: int
    entropy: LatentCodec

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training / evaluation pass at 1-based `quality` (see `level_tensor`)."""
        level = self.level_tensor(quality, x.shape[0], x.device)
        y = self.transform(self.analysis, x) * self.gain.gain(level)
        out = self.entropy(y, level)
        x_hat = self.transform(self.synthesis, out.y_hat * self.gain.inverse_gain(level))
        return RDOutput(x_hat, out.likelihoods, out.aux)

    def update(self) -> None:
        """Freeze the latent codec's tables."""
        self.entropy.update()

    def latent(self, x: Tensor, level: float) -> Tensor:
        """y of a 1x3xHxW image at 0-based `level`: padded, transformed, scaled by the gain."""
        return self.transform(self.analysis, self.layout(self.pad(x))) * self.gain.gain(torch.tensor([level]))

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int, int]:
        """Shape of y for an image of height x width."""
        padded_h, padded_w = self.padded_size(height, width)
        return (1, self.latent_channels, padded_h // self.downsampling, padded_w // self.downsampling)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code a 1x3xHxW image in [0, 1] at 1-based `quality`: the latent codec's sections."""
        level = self.check_quality(quality)
        sections, _ = self.entropy.encode(self.latent(x, level), level)
        return Encoded(sections, x.shape[-2], x.shape[-1], quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        shape = self.latent_shape(encoded.height, encoded.width)
        return self.reconstruct(self.entropy.decode(encoded.sections, shape, level), level, encoded)
