"""Per-channel gain vectors: one model for many rates (the survey's [10], Dumas et al. 2018; in the form of
Cui et al. 2021, "Asymmetric gained deep image compression").

Quality level q scales the latent by gain[q] before quantization (a finer or coarser effective step) and by
inverse_gain[q] before synthesis. Both are learned jointly with the transforms, each training sample drawing its
own level and its own lambda.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class GainUnit(nn.Module):
    """Learned positive gain and inverse-gain vectors, one pair per quality level."""

    def __init__(self, lmbdas: tuple[float, ...], channels: int) -> None:
        super().__init__()
        reference = math.sqrt(lmbdas[0] * lmbdas[-1])
        # High-rate theory: the optimal step size scales like lambda**-1/2, so the gain like lambda**1/2.
        init = torch.tensor([0.5 * math.log(lmbda / reference) for lmbda in lmbdas])
        self.log_gain = nn.Parameter(init.view(-1, 1).repeat(1, channels))
        self.log_inverse_gain = nn.Parameter(-init.view(-1, 1).repeat(1, channels))

    def gain(self, quality: Tensor) -> Tensor:
        """Gains for a batch of 0-based quality indices, shape (N, C, 1, 1)."""
        return torch.exp(self.log_gain[quality])[:, :, None, None]

    def inverse_gain(self, quality: Tensor) -> Tensor:
        """Inverse gains for a batch of 0-based quality indices, shape (N, C, 1, 1)."""
        return torch.exp(self.log_inverse_gain[quality])[:, :, None, None]
