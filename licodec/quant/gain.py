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

#: MSE lambdas of the six levels of a variable-rate model (distortion in 8-bit units squared / 255**2, as
#: CompressAI's q1..q6).
DEFAULT_LMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)


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
        """Gains for a batch of 0-based quality levels, shape (N, C, 1, 1) (see `interpolate`)."""
        return interpolate(self.log_gain, quality)

    def inverse_gain(self, quality: Tensor) -> Tensor:
        """Inverse gains for a batch of 0-based quality levels, shape (N, C, 1, 1)."""
        return interpolate(self.log_inverse_gain, quality)


def interpolate(log_table: Tensor, quality: Tensor) -> Tensor:
    """exp of the table's rows at `quality`: integer levels pick a row, levels in between mix the two neighbouring
    rows linearly in the log domain (Cui et al. 2021's exponential interpolation, g = g_l^(1-t) g_(l+1)^t), which
    makes the rate a continuous function of the quality. Integer levels give exactly the trained gains."""
    if not quality.is_floating_point():
        return torch.exp(log_table[quality])[:, :, None, None]
    low = torch.floor(quality).long().clamp(0, log_table.shape[0] - 1)
    high = (low + 1).clamp(max=log_table.shape[0] - 1)
    t = (quality - low).to(log_table.dtype)[:, None]
    return torch.exp(log_table[low] * (1 - t) + log_table[high] * t)[:, :, None, None]
