"""ADMM pruning of latent codes (CAE-ADMM, Zhao et al. 2019, the survey's [11]).

The constraint "at most a fraction (1 - sparsity) of the latent is non-zero" is enforced with ADMM: an auxiliary
copy Z of the latent, projected on the constraint set (keep the largest magnitudes, zero the rest), a scaled dual
U, and the augmented term rho/2 ||y - Z + U||^2 in the loss:

    Z <- project(y + U)        U <- U + y - Z        loss += rho / 2 * ||y - Z + U||^2

Latents change with every batch, so the ADMM variables live for one batch: each training step runs `inner` ADMM
updates of Z and U on the batch's (detached) latent before adding the augmented term, which pulls the pruned
entries to zero and leaves the kept ones free. At test time the latent is pruned with the magnitude threshold
that reaches the target sparsity on the training data (tracked as a running average): pruned entries cost the
entropy model's zero symbol, which is the cheap one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def project(values: Tensor, keep: float) -> Tensor:
    """Keep the `keep` fraction of largest magnitudes of each sample, zero the rest."""
    flat = values.flatten(1)
    count = max(1, int(round(keep * flat.shape[1])))
    threshold = flat.abs().topk(count, dim=1).values[:, -1:]
    return (flat * (flat.abs() >= threshold)).view_as(values)


@torch.no_grad()
def _smallest_kept(z: Tensor) -> Tensor:
    kept = z.flatten(1).abs()
    return torch.where(kept > 0, kept, torch.inf).amin(1).mean()


class AdmmPruning(nn.Module):
    """The ADMM sparsity term for training and the magnitude threshold for test time."""

    def __init__(self, sparsity: float = 0.5, rho: float = 1e-3, inner: int = 3, momentum: float = 0.99) -> None:
        super().__init__()
        if not 0 <= sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        self.sparsity = sparsity
        self.rho = rho
        self.inner = inner
        self.momentum = momentum
        self.register_buffer("threshold", torch.zeros(()))
        self.smallest_kept: Tensor | None = None  # of the last penalty, for `after_step`

    def penalty(self, y: Tensor) -> Tensor:
        """rho/2 ||y - Z + U||^2 per sample, after `inner` ADMM updates of Z and U on the detached y."""
        target = y.detach()
        u = torch.zeros_like(target)
        for _ in range(self.inner):
            z = project(target + u, 1 - self.sparsity)
            u = u + target - z
        self.smallest_kept = _smallest_kept(z)
        return self.rho / 2 * ((y - z + u) ** 2).flatten(1).sum(1)

    @torch.no_grad()
    def after_step(self) -> None:
        """After a training step: the test-time threshold follows (running average) the smallest magnitude that
        the last `penalty`'s projection kept."""
        if self.smallest_kept is not None:
            self.threshold.mul_(self.momentum).add_((1 - self.momentum) * self.smallest_kept)
            self.smallest_kept = None

    def prune(self, y: Tensor) -> Tensor:
        """Zero the entries below the learned threshold (test time)."""
        return y * (y.abs() >= self.threshold)
