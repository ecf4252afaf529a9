"""Any folder of images, and the random crops training draws from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(root: str | Path) -> list[Path]:
    """Every image file under `root`, recursively, in a stable order."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class CropSampler:
    """Random `size` x `size` RGB crops with random flips, from images held in memory as uint8.

    Images smaller than the crop are skipped. Each image is decoded once; sampling is a slice and a copy.
    """

    def __init__(self, paths: list[Path], size: int, seed: int = 0, progress: bool = True) -> None:
        self.size = size
        self.images: list[np.ndarray] = []
        for path in tqdm(paths, desc="loading images", disable=not progress, leave=False):
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
            if min(array.shape[:2]) >= size:
                self.images.append(array)
        if not self.images:
            raise ValueError(f"no image of at least {size}x{size} pixels among {len(paths)} files")
        self.generator = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, count: int) -> torch.Tensor:
        """A float batch (count, 3, size, size) in [0, 1]."""
        crops = np.empty((count, self.size, self.size, 3), dtype=np.uint8)
        for i in range(count):
            image = self.images[self.generator.integers(len(self.images))]
            top = self.generator.integers(image.shape[0] - self.size + 1)
            left = self.generator.integers(image.shape[1] - self.size + 1)
            crop = image[top : top + self.size, left : left + self.size]
            if self.generator.random() < 0.5:
                crop = crop[:, ::-1]
            crops[i] = crop
        return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0

    def state(self) -> dict:
        """The generator state, so that a resumed run draws the crops an uninterrupted one would."""
        return self.generator.bit_generator.state

    def restore(self, state: dict) -> None:  # noqa: D102
        self.generator.bit_generator.state = state
