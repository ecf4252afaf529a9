"""The latent codec: the one interface between a codec's transforms and the bytes of its latent.

A codec's analysis transform produces a latent y; a `LatentCodec` does everything else with it, from the
training pass to the bytes and back:

    forward(y, level)              -> LatentOutput(y_hat, likelihoods)   training / evaluation pass
    encode(y, level)               -> (sections, y_hat)                 real symbols, real bytes
    decode(sections, shape, level) -> y_hat                             the same y_hat, from the bytes alone
    update()                                                            freeze the integer tables

`level` is 0-based. In `forward` it is a tensor of one level per sample (int64 for trained levels, float for a
level between two); in `encode` / `decode` it is a number. `encode` returns y_hat exactly as `decode` will give
it back (float64), so an encoder can use the decoder's latent without decoding. `shape` is y's shape, which the
decoder knows from the image size. A latent codec writes `sections` byte sections, the first of them first.

Latent codecs (and the entropy models they are made of) are the only callers of `licodec.entropy.coder`; a codec
composed of them codes nothing itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import Tensor, nn

from licodec.nn.integer import IntegerConvNet
from licodec.nn.ops import run_transform

#: The smallest likelihood any entropy model reports in training (a rate of at most ~30 bits per element).
LIKELIHOOD_BOUND = 1e-9


@dataclass
class LatentOutput:
    """A training pass of a latent codec: what the synthesis sees and the likelihood of every coded element."""

    y_hat: Tensor
    likelihoods: dict[str, Tensor]
    aux: dict[str, Tensor] = field(default_factory=dict)


class LatentCodec(nn.Module):
    """Base class of latent codecs (see the module docstring for the contract)."""

    sections: ClassVar[int] = 1

    def __init__(self) -> None:
        super().__init__()
        self.transform_dtype: torch.dtype | None = None  # set by `Codec.precision` for the side transforms
        self._integer: dict[str, IntegerConvNet] = {}

    def transform(self, network: nn.Module, x: Tensor) -> Tensor:
        """Run a float side network (h_a, h_s, ...) in the codec's current precision; returns float32."""
        return run_transform(network, x, self.transform_dtype)

    def integer(self, name: str) -> IntegerConvNet:
        """The fixed-point twin of sub-network `name`, built from the current weights on first use and forgotten
        by `update()`. Coding selects tables only through such networks, so it is exact on any machine."""
        if name not in self._integer:
            self._integer[name] = IntegerConvNet(getattr(self, name))
        return self._integer[name]

    def forget_integer(self) -> None:
        """Drop the fixed-point twins (after the float weights changed)."""
        self._integer.clear()

    def forward(self, y: Tensor, level: Tensor) -> LatentOutput:  # noqa: D102
        raise NotImplementedError

    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:  # noqa: D102
        raise NotImplementedError

    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:  # noqa: D102
        raise NotImplementedError

    def update(self) -> None:  # noqa: D102
        raise NotImplementedError


def nearest_level(level: float) -> int:
    """The trained level nearest a 0-based level (halves go up): the level whose tables code it."""
    return int(math.floor(level + 0.5))


def nearest_levels(level: Tensor) -> Tensor:
    """`nearest_level` of a tensor of levels, as int64 (integer levels unchanged)."""
    return level if not level.is_floating_point() else torch.floor(level + 0.5).long()
