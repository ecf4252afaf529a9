"""Quantizers. `quantize` is the scalar quantizer every transform codec trains with.

- "noise": additive uniform noise U(-1/2, 1/2), the differentiable proxy of Ballé et al. 2017 [4].
- "ste": rounding with the straight-through (identity) gradient, Theis et al. 2017 [3].
- "round": hard rounding, for evaluation and coding.

Rounding is around `offset` (a channel median or a predicted mean) when one is given.
"""

from __future__ import annotations

import torch
from torch import Tensor

MODES = ("noise", "ste", "round")


def quantize(x: Tensor, mode: str, offset: Tensor | None = None) -> Tensor:
    """Quantize `x` by `mode` (see the module docstring)."""
    if mode == "noise":
        return x + torch.empty_like(x).uniform_(-0.5, 0.5)
    if offset is None:
        offset = torch.zeros((), dtype=x.dtype, device=x.device)
    if mode == "ste":
        return x + (torch.round(x - offset) + offset - x).detach()
    if mode == "round":
        return torch.round(x - offset) + offset
    raise ValueError(f"unknown quantization mode {mode!r}; expected one of {MODES}")
