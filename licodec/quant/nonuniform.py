"""Iterative non-uniform quantization (the survey's [12]): per-channel quantizer levels fitted to the latent's
distribution, the network fine-tuned around them, and the two iterated.

Each channel has L levels. Every `refit_every` training steps the levels are refitted to the current latents
by a few Lloyd (1D k-means) iterations, which places levels densely where the latent is dense; between refits the
network trains with the levels fixed, values snapped to the nearest level in the forward pass and the gradient of
a soft assignment (as `SoftToHard`). At test time the symbol of a value is the index of its nearest level.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NonUniformQuantizer(nn.Module):
    """L sorted levels per channel, refitted to the data by Lloyd iterations."""

    def __init__(self, channels: int, levels: int = 16, spread: float = 8.0, sigma: float = 1.0,
                 refit_every: int = 500, lloyd_iterations: int = 10) -> None:
        super().__init__()
        self.refit_every = refit_every
        self.lloyd_iterations = lloyd_iterations
        self.register_buffer("levels", torch.linspace(-spread, spread, levels).repeat(channels, 1))
        self.register_buffer("sigma", torch.tensor(float(sigma)))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    @property
    def alphabet(self) -> int:
        """L, the number of levels per channel."""
        return self.levels.shape[1]

    def _distances(self, y: Tensor) -> Tensor:
        """Squared distance of every value to its channel's levels: (N, C, L, H, W)."""
        return (y.unsqueeze(2) - self.levels.view(1, *self.levels.shape, 1, 1)) ** 2

    def indices(self, y: Tensor) -> Tensor:
        """Nearest level of every value, int64 (N, C, H, W)."""
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
        """Lloyd iterations per channel on the values of `y` (N, C, H, W); levels stay sorted."""
        values = y.detach().transpose(0, 1).flatten(1).float()  # (C, n)
        levels = self.levels.clone()
        for _ in range(self.lloyd_iterations):
            nearest = (values.unsqueeze(1) - levels.unsqueeze(2)).abs().argmin(1)  # (C, n)
            sums = torch.zeros_like(levels).scatter_add_(1, nearest, values)
            counts = torch.zeros_like(levels).scatter_add_(1, nearest, torch.ones_like(values))
            levels = torch.where(counts > 0, sums / counts.clamp(min=1), levels)
        self.levels.copy_(torch.sort(levels, dim=1).values)

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        """(y_hat, indices): nearest levels in value; in training the soft assignment's gradient, and a refit of
        the levels every `refit_every` steps."""
        if self.training:
            if int(self.steps) % self.refit_every == 0:
                self.refit(y)
            self.steps += 1
        indices = self.indices(y)
        hard = self.dequantize(indices)
        if not self.training:
            return hard, indices
        soft = (self.assignment(y) * self.levels.view(1, *self.levels.shape, 1, 1)).sum(2)
        return soft + (hard - soft).detach(), indices
