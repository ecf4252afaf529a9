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
from licodec.errors import CodecError
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
    progressive: ClassVar[bool] = False  # one section per iteration; any prefix of iterations decodes
    quality_unit: ClassVar[str | None] = None  # qualities that count something (iterations) are integers only
    fewest_bits_per_pixel: ClassVar[float] = 0.0  # a payload below this for its size (per quality unit) is forged

    def sections_for(self, iterations: int) -> int:
        """How many leading sections hold the first `iterations` iterations (progressive codecs)."""
        return iterations

    def decodable(self, sections: int) -> bool:
        """Whether a prefix of `sections` sections can be decoded (progressive codecs)."""
        return sections >= 1

    def __init__(self, lmbdas: tuple[float, ...], **config) -> None:
        super().__init__()
        self.lmbdas = tuple(float(v) for v in lmbdas)
        self.config = {"lmbdas": list(self.lmbdas), **config}
        self.transform_dtype: torch.dtype | None = None  # bfloat16: mixed-precision training of the transforms

    @contextmanager
    def precision(self, name: str) -> Iterator[None]:
        """Code with the transforms in "fp32" (default) or "bf16" for the duration of a `with` block.

        bf16 runs the analysis and synthesis transforms under bfloat16 autocast, about 1.5x faster on CPUs with
        AMX. It changes the float rounding of the transforms only: the files stay decodable by either precision,
        as table selection is integer arithmetic either way; the decoded pixels differ slightly.
        """
        if name not in PRECISIONS:
            raise CodecError(f"unknown precision {name!r}; expected one of {', '.join(PRECISIONS)}")
        saved = self.transform_dtype
        self.transform_dtype = PRECISIONS[name]
        try:
            yield
        finally:
            self.transform_dtype = saved

    def transform(self, network: nn.Module, x: Tensor) -> Tensor:
        """Run one of the codec's transforms, under autocast when `transform_dtype` is set; returns float32.

        Only the transforms take the lower precision; the entropy models always compute likelihoods in float32.
        """
        if self.transform_dtype is None:
            return network(x)
        with torch.autocast(x.device.type, dtype=self.transform_dtype):
            return network(x).float()

    @property
    def qualities(self) -> int:
        """Number of quality levels, 1 .. qualities (one trained lambda each)."""
        return len(self.lmbdas)

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

    def synthesise(self, y_hat: Tensor, level: float, encoded: Encoded) -> Tensor:
        """The decoded image from y_hat (float64), cropped to its size, in [0, 1], for codecs with a `synthesis`
        transform and a `gain` unit.

        A damaged file can decode to absurd escape values; they are clamped to +-2**16 (no real latent comes near)
        and whatever overflows in the synthesis is mapped to 0, so the output is always a valid image."""
        inverse_gain = self.gain.inverse_gain(torch.tensor([level]))
        y_hat = y_hat.clamp(-(1 << 16), 1 << 16).float() * inverse_gain
        x_hat = torch.nan_to_num(self.transform(self.synthesis, self.layout(y_hat)), nan=0.0)
        return x_hat[..., : encoded.height, : encoded.width].clamp(0, 1)

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:  # noqa: D102
        raise NotImplementedError

    def compress(self, x: Tensor, quality: int) -> Encoded:  # noqa: D102
        raise NotImplementedError

    def decompress(self, encoded: Encoded) -> Tensor:  # noqa: D102
        raise NotImplementedError

    def update(self) -> None:  # noqa: D102
        raise NotImplementedError

    def aux_loss(self) -> Tensor:
        """Auxiliary loss (the quantiles of factorized densities); zero when there is none."""
        losses = [m.aux_loss() for m in self.modules() if m is not self and hasattr(m, "aux_loss")]
        return sum(losses) if losses else torch.zeros(())
