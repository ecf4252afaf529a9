"""The multi-scale patch discriminator of adversarial training (Agustsson et al. 2019 [7]; pix2pixHD's
multi-scale PatchGAN). Training only: never part of the shipped weights."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class PatchDiscriminator(nn.Module):
    """Multi-scale PatchGAN (three scales): returns, per scale, the list of intermediate features and the map."""

    def __init__(self, widths: tuple[int, ...] = (64, 128, 256, 512), scales: int = 3) -> None:
        super().__init__()
        self.nets = nn.ModuleList()
        for _ in range(scales):
            layers, channels = [], 3
            for k, width in enumerate(widths):
                last = k == len(widths) - 1  # stride 1, 3x3 (the paper: 4x4) so that small crops still fit
                layers.append(nn.Sequential(nn.Conv2d(channels, width, 3 if last else 4, 1 if last else 2, 1),
                                            nn.LeakyReLU(0.2)))
                channels = width
            layers.append(nn.Conv2d(channels, 1, 3, 1, 1))
            self.nets.append(nn.ModuleList(layers))

    def forward(self, x: Tensor) -> list[list[Tensor]]:  # noqa: D102
        outputs = []
        for net in self.nets:
            features, h = [], x
            for layer in net:
                h = layer(h)
                features.append(h)
            outputs.append(features)
            x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
        return outputs
