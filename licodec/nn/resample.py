"""Resampling whose result does not depend on the number of threads.

`torch.nn.functional.interpolate` (bilinear, on the CPU) splits its work between threads so that some outputs
are computed by the vectorized kernel and some by the scalar one, which round differently (about 1e-7): a decoder
that upsamples then gives pixels one level apart at 1 and 2 threads. Here every output is the same few
elementwise operations (gather, multiply, add), each exactly rounded, so any thread count gives the same bits.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _axis(x: Tensor, dim: int, factor: int) -> Tensor:
    """Linear upsampling by `factor` along `dim`, sampled as align_corners=False (pixel centres)."""
    size = x.shape[dim]
    source = ((torch.arange(size * factor, dtype=torch.float64) + 0.5) / factor - 0.5).clamp(min=0)
    lower = source.floor().long()
    upper = (lower + 1).clamp(max=size - 1)
    weight = (source - lower.double()).to(x.dtype)
    shape = [1] * x.dim()
    shape[dim] = -1
    weight = weight.view(shape)
    return x.index_select(dim, lower) * (1 - weight) + x.index_select(dim, upper) * weight


def upsample_bilinear(x: Tensor, factor: int) -> Tensor:
    """An NxCxHxW tensor upsampled `factor` times (an integer) in both directions: what
    `F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)` computes, to float rounding,
    and identical at any thread count."""
    if factor == 1:
        return x
    return _axis(_axis(x, 3, factor), 2, factor)
