"""Rate control: reach a target bpp or PSNR on one image by searching the codec's continuous quality knob.

The survey's "bitrate control strategy" for one-model-many-rates codecs [10]: the quality is a number between the
trained levels (`licodec.quant.gain.interpolate`), the file's real size and the decoded PSNR grow with it, and the
search brackets the target on the header's quality grid (1/2048 steps) by interpolation (in log bpp, or in dB) with
bisection as the fallback. Every evaluation is a real encode (and, for PSNR, a real decode).

- target bpp: the highest quality whose file is at most the target (a rate budget is never exceeded);
- target PSNR: the lowest quality whose decoded image reaches the target.

The search stops when the best quality so far is within `tolerance` of the target (relative for bpp, in dB for
PSNR) or when the bracket is one step wide.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from licodec.bitstream import QUALITY_STEPS
from licodec.codecs.base import Codec, Encoded
from licodec.errors import CodecError
from licodec.eval.metrics import psnr

TARGETS = ("bpp", "psnr")
DEFAULT_TOLERANCE = {"bpp": 0.01, "psnr": 0.02}


@dataclass(frozen=True)
class Reached:
    """The outcome of a search: the chosen quality, its coded image and what it cost to find."""

    quality: float
    encoded: Encoded
    value: float  # bpp or PSNR (dB) at `quality`
    evaluations: int  # encodes (and decodes, for PSNR) spent
    seconds: float


def reach(codec: Codec, x: torch.Tensor, target: float, metric: str = "bpp", precision: str = "fp32",
          tolerance: float | None = None, file_size: Callable[[Encoded], int] | None = None) -> Reached:
    """Search the quality of `codec` so that image `x` (1x3xHxW in [0, 1]) meets `target` (see the module).

    `file_size` gives the bytes of the whole file for an encoding (the API passes the .lic container's), so that
    a target bpp counts the header too; by default only the coded sections are counted."""
    file_size = file_size or (lambda encoded: sum(len(s) for s in encoded.sections))
    if metric not in TARGETS:
        raise CodecError(f"unknown rate-control target {metric!r}; expected one of {', '.join(TARGETS)}")
    if not math.isfinite(target) or target <= 0:
        raise CodecError(f"the target {metric} must be a positive number, got {target!r}")
    tolerance = DEFAULT_TOLERANCE[metric] if tolerance is None else tolerance
    height, width = x.shape[-2:]
    start = time.perf_counter()
    seen: dict[int, tuple[float, Encoded]] = {}

    # Progressive codecs have whole numbers of iterations only.
    steps_per_quality = 1 if codec.progressive else QUALITY_STEPS

    def measure(step: int) -> float:
        if step not in seen:
            quality = 1 + step / steps_per_quality
            quality = int(quality) if codec.progressive else quality
            with codec.precision(precision):
                encoded = codec.compress(x, quality)
                if metric == "bpp":
                    value = 8 * file_size(encoded) / (height * width)
                else:
                    value = psnr(x, codec.decompress(encoded))
            seen[step] = (value, encoded)
        return seen[step][0]

    def done(step: int, why: str | None = None) -> Reached:
        if why:
            raise CodecError(why)
        value, encoded = seen[step]
        return Reached(1 + step / steps_per_quality, encoded, value, len(seen), time.perf_counter() - start)

    # Work on the quality grid; g is the quantity interpolated (log bpp, PSNR in dB), increasing with the step.
    g = math.log if metric == "bpp" else float
    low, high = 0, (codec.qualities - 1) * steps_per_quality
    f_low, f_high = measure(low), measure(high)
    if metric == "bpp":
        if f_low > target:
            return done(low, f"target {target} bpp is below this codec's lowest rate on this image "
                             f"({f_low:.4f} bpp at quality 1)")
        if f_high <= target:
            return done(high)  # the best the codec can do stays within the budget
        close = lambda value: target - value <= tolerance * target  # noqa: E731
    else:
        if f_high < target:
            return done(high, f"target {target} dB is above what this codec reaches on this image "
                              f"({f_high:.2f} dB at quality {codec.qualities})")
        if f_low >= target:
            return done(low)
        close = lambda value: value - target <= tolerance  # noqa: E731
    best = low if metric == "bpp" else high
    last_side = None
    while high - low > 1 and not close(seen[best][0]):
        f_low, f_high = seen[low][0], seen[high][0]
        span = g(f_high) - g(f_low)
        fraction = (g(target) - g(f_low)) / span if span > 0 else 0.5
        step = low + round(fraction * (high - low))
        if last_side is not None and last_side[1] >= 2:
            step = (low + high) // 2  # the same end moved twice running: bisect (Illinois-style safeguard)
        step = min(max(step, low + 1), high - 1)
        value = measure(step)
        below = value <= target if metric == "bpp" else value < target  # the step is the new lower end
        side = "low" if below else "high"
        last_side = (side, last_side[1] + 1 if last_side and last_side[0] == side else 1)
        if below:
            low = step
        else:
            high = step
        best = low if metric == "bpp" else high
    return done(best)
