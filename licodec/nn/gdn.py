"""Generalized divisive normalization (Ballé, Laparra & Simoncelli, ICLR 2016 [14]; ICLR 2017 [4]).

    GDN:   y_i = x_i / sqrt(beta_i + sum_j gamma_ij * x_j^2)
    IGDN:  y_i = x_i * sqrt(beta_i + sum_j gamma_ij * x_j^2)   (the approximate inverse used in synthesis)

beta and gamma are kept non-negative by `NonNegativeParameter`. The normalization pool is a 1x1 convolution over
the squared input, so GDN costs about as much as one pointwise layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.nn.ops import NonNegativeParameter


class GDN(nn.Module):
    """GDN over channels (or IGDN with `inverse=True`), for NCHW tensors."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta = NonNegativeParameter(torch.ones(channels), minimum=beta_min)
        self.gamma = NonNegativeParameter(gamma_init * torch.eye(channels))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        channels = x.shape[1]
        if not torch.is_grad_enabled() and x.is_contiguous(memory_format=torch.channels_last):
            return self._forward_inference(x)
        gamma = self.gamma().view(channels, channels, 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, self.beta()))
        return x * norm if self.inverse else x / norm

    def _forward_inference(self, x: Tensor) -> Tensor:
        """The same formula on a channels-last tensor seen as a (pixels x channels) matrix, computed in place."""
        batch, channels, height, width = x.shape
        pixels = x.permute(0, 2, 3, 1).reshape(-1, channels)  # a view: channels-last is pixel-major
        norm = torch.addmm(self.beta(), pixels.square(), self.gamma().t())
        norm = norm.sqrt_() if self.inverse else norm.rsqrt_()
        return norm.mul_(pixels).view(batch, height, width, channels).permute(0, 3, 1, 2)
