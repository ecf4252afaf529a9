"""Memory-frugal forward and backward passes of per-pixel MLPs over very many rows, for overfitting loops.

An MLP applied to every pixel of a large image holds hidden activations far bigger than the CPU's caches (40
channels at 768x512 are 63 MB), and autograd writes and reads them several times per iteration. These functions
run the MLP in chunks of CHUNK columns (or rows) that stay in cache, keep only the inputs, and recompute each
chunk's hidden layer in the backward pass (checkpointing). Same values and gradients as the plain autograd
expression up to float rounding (tests/nn/test_fused.py).
"""

from __future__ import annotations

import torch
from torch import Tensor

CHUNK = 8192  # columns per chunk: 40 hidden channels x 8192 x 4 bytes = 1.3 MB


class _PixelMLP(torch.autograd.Function):
    """out = W2 relu(W1 f + b1) + b2 for f of shape (in, n) (pixels as columns)."""

    @staticmethod
    def forward(ctx, f: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:  # noqa: D102
        f = f.contiguous()
        out = torch.empty(w2.shape[0], f.shape[1], dtype=f.dtype)
        for start in range(0, f.shape[1], CHUNK):
            hidden = torch.addmm(b1[:, None], w1, f[:, start : start + CHUNK]).relu_()
            torch.addmm(b2[:, None], w2, hidden, out=out[:, start : start + CHUNK])
        ctx.save_for_backward(f, w1, b1, w2)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, ...]:  # noqa: D102
        f, w1, b1, w2 = ctx.saved_tensors
        grad = grad.contiguous()
        grad_f = torch.empty_like(f)
        grad_w1, grad_b1, grad_w2 = torch.zeros_like(w1), torch.zeros_like(b1), torch.zeros_like(w2)
        for start in range(0, f.shape[1], CHUNK):
            part, g = f[:, start : start + CHUNK], grad[:, start : start + CHUNK]
            hidden = torch.addmm(b1[:, None], w1, part).relu_()
            grad_w2.addmm_(g, hidden.t())
            g_hidden = torch.ops.aten.threshold_backward(torch.mm(w2.t(), g), hidden, 0)
            grad_w1.addmm_(g_hidden, part.t())
            grad_b1.add_(g_hidden.sum(1))
            torch.mm(w1.t(), g_hidden, out=grad_f[:, start : start + CHUNK])
        return grad_f, grad_w1, grad_b1, grad_w2, grad.sum(1)


def pixel_mlp(f: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """W2 relu(W1 f + b1) + b2 of f (in, n): one hidden layer applied to every column, chunked (see module)."""
    return _PixelMLP.apply(f, w1, b1, w2, b2)
