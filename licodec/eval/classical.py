"""Classical codecs through Pillow, swept over their quality setting, writing real bytes."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class ClassicalCodec:
    """A Pillow codec: `format` and the save options of each quality setting."""

    name: str
    format: str
    qualities: tuple[int, ...]
    options: tuple[tuple[str, object], ...] = ()

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """HxWx3 uint8 -> the bytes of a file."""
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=self.format, quality=quality, **dict(self.options))
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        """The bytes of a file -> HxWx3 uint8."""
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))


CLASSICAL = {
    # libjpeg-turbo through Pillow; Pillow's default chroma subsampling is 4:2:0.
    "jpeg": ClassicalCodec("jpeg", "JPEG", tuple(range(5, 100, 5)), (("subsampling", "4:2:0"),)),
    "jpeg444": ClassicalCodec("jpeg444", "JPEG", tuple(range(5, 100, 5)), (("subsampling", "4:4:4"),)),
    "webp": ClassicalCodec("webp", "WEBP", tuple(range(5, 100, 5)), (("method", 6),)),
}
