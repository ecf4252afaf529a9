"""Iterative non-uniform quantization (the survey's [12]): per-channel quantizer levels fitted to the latent's
distribution, the network fine-tuned around them, and the two iterated.

Each channel has L levels. Every `refit_every` training steps the levels are refitted to the current latents
by a few iterations of entropy-constrained Lloyd (Chou, Lookabaugh & Gray 1989): a value goes to the level that
minimises (y - c)^2 + rate_weight * (-log2 p_c), each level moves to the mean of its values and p_c becomes its
share. Plain Lloyd (rate_weight 0) would pack the levels densely where the latent is dense and spend the bits that
costs; the default weight, ln(2) / 6, is the slope -dD/dR of a unit-step uniform quantizer at high rate, so the
levels trade rate for distortion at the rate the uniform baseline does, and place themselves where the
distribution makes that pay. Between refits the network trains with the levels fixed, values snapped to their
level in the forward pass and the gradient of a soft assignment (as `SoftToHard`) on the same cost. The encoder
assigns with the same cost; the decoder only needs the levels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

HIGH_RATE_SLOPE = math.log(2) / 6  # -dD/dR of a unit-step uniform quantizer at high rate (D = 1/12, dD/dR = -2 ln2 D)


class NonUniformQuantizer(nn.Module):
    """L sorted levels per channel, refitted to the data by Lloyd iterations."""

    def __init__(self, channels: int, levels: int = 16, spread: float = 8.0, sigma: float = 1.0,
                 refit_every: int = 500, lloyd_iterations: int = 10, rate_weight: float = HIGH_RATE_SLOPE) -> None:
        super().__init__()
        self.refit_every = refit_every
        self.lloyd_iterations = lloyd_iterations
        self.rate_weight = rate_weight
        self.register_buffer("levels", torch.linspace(-spread, spread, levels).repeat(channels, 1))
        # -log2 of each level's share at the last refit (equal shares until then)
        self.register_buffer("bits", torch.full((channels, levels), math.log2(levels)))
        self.register_buffer("sigma", torch.tensor(float(sigma)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def alphabet(self) -> int:
        """L, the number of levels per channel."""
        return self.levels.shape[1]

    def _distances(self, y: Tensor) -> Tensor:
        """The assignment cost of every value to its channel's levels, squared distance plus rate_weight times
        the level's bits: (N, C, L, H, W)."""
        cost = (y.unsqueeze(2) - self.levels.view(1, *self.levels.shape, 1, 1)) ** 2
        return cost + self.rate_weight * self.bits.view(1, *self.bits.shape, 1, 1)

    def indices(self, y: Tensor) -> Tensor:
        """The level of every value (least cost), int64 (N, C, H, W)."""
        return self._distances(y).argmin(2)

    def dequantize(self, indices: Tensor) -> Tensor:
        """The levels of `indices` (N, C, H, W)."""
        channels = torch.arange(self.levels.shape[0], device=indices.device).view(1, -1, 1, 1)
        return self.levels[channels.expand_as(indices), indices]

    def assignment(self, y: Tensor) -> Tensor:
        """Soft assignment of every value to its channel's levels, (N, C, L, H, W)."""
        return torch.softmax(-self.sigma * self._distances(y), dim=2)

    @torch.no_grad()
    def refit(self, y: Tensor) -> None:
        """Entropy-constrained Lloyd iterations per channel on the values of `y` (N, C, H, W); levels stay
        sorted. A level left without values keeps its place at a high cost (one value's share, halved)."""
        values = y.detach().transpose(0, 1).flatten(1).float()  # (C, n)
        levels, bits = self.levels.clone(), self.bits.clone()
        for _ in range(self.lloyd_iterations):
            cost = (values.unsqueeze(1) - levels.unsqueeze(2)) ** 2 + self.rate_weight * bits.unsqueeze(2)
            chosen = cost.argmin(1)  # (C, n)
            sums = torch.zeros_like(levels).scatter_add_(1, chosen, values)
            counts = torch.zeros_like(levels).scatter_add_(1, chosen, torch.ones_like(values))
            levels = torch.where(counts > 0, sums / counts.clamp(min=1), levels)
            bits = -torch.log2(counts.clamp(min=0.5) / values.shape[1])
        order = torch.argsort(levels, dim=1)
        self.levels.copy_(torch.gather(levels, 1, order))
        self.bits.copy_(torch.gather(bits, 1, order))

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """(y_hat, indices): nearest levels in value; in training the soft assignment's gradient."""
        indices = self.indices(y)
        hard = self.dequantize(indices)
        if not self.training:
            return hard, indices
        soft = (self.assignment(y) * self.levels.view(1, *self.levels.shape, 1, 1)).sum(2)
        return soft + (hard - soft).detach(), indices
