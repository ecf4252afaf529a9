"""Soft-to-hard quantization with learned centers: Agustsson, Mentzer, Tschannen, Cavigelli, Timofte, Benini &
Van Gool, "Soft-to-hard vector quantization for end-to-end learning compressible representations", NeurIPS 2017
[13]; the scalar form is the quantizer of Mentzer et al. 2018 [17] and Agustsson et al. 2019 [7].

The latent is cut into vectors of `dim` consecutive channels; each vector is replaced by the nearest of L learned
centers (hard, used in the forward pass and at test time) while the gradient is that of the soft assignment

    z_soft = sum_l softmax(-sigma ||z - c_l||^2)_l c_l

(the straight-through form z_hat = z_soft + stop_gradient(z_hard - z_soft)). `sigma` controls the softness; [13]
anneals it upwards during training, [17] keeps it at 1.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class SoftToHard(nn.Module):
    """L learned centers of dimension `dim` (1: scalar quantization)."""

    def __init__(self, levels: int = 6, dim: int = 1, sigma: float = 1.0, spread: float = 2.0) -> None:
        super().__init__()
        self.dim = dim
        if dim == 1:
            init = torch.linspace(-spread, spread, levels).view(levels, 1)
        else:
            init = torch.randn(levels, dim, generator=torch.Generator().manual_seed(0)) * spread / 2
        self.centers = nn.Parameter(init)
        self.register_buffer("sigma", torch.tensor(float(sigma)))

    @property
    def levels(self) -> int:
        """L, the number of centers (the alphabet of the symbols)."""
        return self.centers.shape[0]

    def _vectors(self, z: Tensor) -> Tensor:
        """(N, C, H, W) -> (N, C / dim, dim, H, W)."""
        n, c, h, w = z.shape
        if c % self.dim:
            raise ValueError(f"{c} channels do not split into vectors of {self.dim}")
        return z.view(n, c // self.dim, self.dim, h, w)

    def _distances(self, z: Tensor) -> Tensor:
        """Squared distance of every vector to every center: (N, C / dim, L, H, W)."""
        vectors = self._vectors(z).unsqueeze(2)  # (N, G, 1, dim, H, W)
        centers = self.centers.view(1, 1, self.levels, self.dim, 1, 1)
        return ((vectors - centers) ** 2).sum(3)

    def indices(self, z: Tensor) -> Tensor:
        """The nearest center of every vector, int64 (N, C / dim, H, W)."""
        return self._distances(z).argmin(2)

    def dequantize(self, indices: Tensor) -> Tensor:
        """Centers of `indices` (N, G, H, W) laid out as (N, G * dim, H, W)."""
        n, g, h, w = indices.shape
        values = self.centers[indices.reshape(-1)].view(n, g, h, w, self.dim)
        return values.permute(0, 1, 4, 2, 3).reshape(n, g * self.dim, h, w)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(z_hat, indices): hard centers in value, the soft assignment's gradient in training."""
        distances = self._distances(z)
        indices = distances.argmin(2)
        hard = self.dequantize(indices)
        if not self.training:
            return hard, indices
        soft = self.soft(z, distances)
        return soft + (hard - soft).detach(), indices

    @property
    def alphabet(self) -> int:
        """L, the number of centers (alias of `levels`, the name index quantizers share)."""
        return self.levels

    def assignment(self, z: Tensor) -> Tensor:
        """Soft assignment of every vector to the centers, (N, C / dim, L, H, W)."""
        return torch.softmax(-self.sigma * self._distances(z), dim=2)

    def soft(self, z: Tensor, distances: Tensor | None = None) -> Tensor:
        """The soft assignment's value, sum_l softmax(-sigma ||z - c_l||^2)_l c_l, shaped like z."""
        distances = self._distances(z) if distances is None else distances
        weights = torch.softmax(-self.sigma * distances, dim=2)  # (N, G, L, H, W)
        return torch.einsum("nglhw,ld->ngdhw", weights, self.centers).reshape(z.shape)
