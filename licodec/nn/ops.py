"""Small operations shared by the layers, the entropy models and the codecs."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def run_transform(network: nn.Module, x: Tensor, dtype: torch.dtype | None) -> Tensor:
    """`network(x)`, under autocast to `dtype` when one is given (mixed precision of the transforms); float32
    out. The entropy models' likelihoods and the integer networks never run under it."""
    if dtype is None:
        return network(x)
    with torch.autocast(x.device.type, dtype=dtype):
        return network(x).float()


class _LowerBoundFunction(torch.autograd.Function):
    """max(x, bound) whose gradient still flows where it pushes x up toward the feasible region.

    Ballé et al. 2018 (appendix 6.1): a plain max() would stop the gradient of a parameter stuck below its bound,
    so it could never come back.
    """

    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:  # noqa: D102
        ctx.save_for_backward(x, bound)
        return torch.maximum(x, bound)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        x, bound = ctx.saved_tensors
        passes = (x >= bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: Tensor, bound: float | Tensor) -> Tensor:
    """Elementwise max(x, bound) with the gradient rule of `_LowerBoundFunction`."""
    bound = torch.as_tensor(bound, dtype=x.dtype, device=x.device)
    return _LowerBoundFunction.apply(x, bound)


class LowerBound(nn.Module):
    """Module form of `lower_bound` with a fixed bound."""

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor(float(bound)))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return lower_bound(x, self.bound)


class NonNegativeParameter(nn.Module):
    """A parameter kept >= minimum through the reparametrization value = max(p, sqrt(min + eps))^2 - eps.

    Ballé 2017 (section 3.1, "parameterize beta and gamma"): optimizing the square root with a small pedestal keeps
    the effective step size useful near zero, where GDN's beta and gamma live.
    """

    def __init__(self, initial: Tensor, minimum: float = 0.0, pedestal: float = 2.0**-36) -> None:
        super().__init__()
        self.pedestal = pedestal
        self.bound = (minimum + pedestal) ** 0.5
        self.raw = nn.Parameter(torch.sqrt(torch.clamp(initial + pedestal, min=pedestal)))

    def forward(self) -> Tensor:  # noqa: D102
        return lower_bound(self.raw, self.bound) ** 2 - self.pedestal
