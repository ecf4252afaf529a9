"""Classical codecs through maintained libraries, each swept over its own quality setting, writing real bytes.

| name     | codec (library)                                | setting swept                      |
|----------|------------------------------------------------|------------------------------------|
| jpeg     | JPEG, libjpeg-turbo via Pillow, 4:2:0 (default) | quality 5..95                      |
| jpeg444  | JPEG, libjpeg-turbo via Pillow, 4:4:4           | quality 5..95                      |
| jpeg2000 | JPEG 2000, OpenJPEG via Pillow, 5/3 + YCbCr (opj_compress defaults) | target rate (ratio) |
| jpeg2000-97 | the same with the 9/7 wavelet                | target rate (compression ratio)    |
| webp     | WebP, libwebp via Pillow (method 6)             | quality 5..95                      |
| avif     | AV1 intra, libavif via Pillow, 4:4:4            | quality 10..90                     |
| heif     | HEVC intra (the stand-in for BPG), libheif/x265 via pillow-heif, 4:4:4 | quality 10..70 |
| jpegxl   | JPEG XL, libjxl via imagecodecs (effort 7)      | Butteraugli distance 0.5..12       |

AVIF and HEIF use 4:4:4 like the BPG and AV1 anchors of CompressAI's published results, so PSNR on RGB compares
like with like. No external binaries: every library installs from PyPI.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import metadata

import numpy as np
from PIL import Image

Encoder = Callable[[np.ndarray, float], bytes]


def _pillow_encoder(image_format: str, **options) -> Encoder:
    def encode(image: np.ndarray, setting: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=image_format, quality=int(setting), **options)
        return buffer.getvalue()

    return encode


def _jpeg2000_encoder(irreversible: bool) -> Encoder:
    """OpenJPEG in rate mode: one quality layer at compression ratio 24 / bpp (for 24-bit RGB).

    The colour transform (mct=1) must be asked for: Pillow's default codes R, G and B separately, which costs about
    2.5 dB at 0.6 bpp on Kodak. `irreversible` picks the 9/7 wavelet; without it OpenJPEG uses the 5/3 wavelet,
    as `opj_compress -r` does by default (and as the published anchors were made).
    """

    def encode(image: np.ndarray, bpp: float) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG2000", quality_mode="rates", quality_layers=[24.0 / bpp],
                                    irreversible=irreversible, mct=1)
        return buffer.getvalue()

    return encode


def _heif(image: np.ndarray, quality: float) -> bytes:
    import pillow_heif

    heif = pillow_heif.from_bytes(mode="RGB", size=(image.shape[1], image.shape[0]), data=image.tobytes())
    buffer = io.BytesIO()
    heif.save(buffer, quality=int(quality), chroma=444)
    return buffer.getvalue()


def _jpegxl(image: np.ndarray, distance: float) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.jpegxl_encode(image, distance=distance, effort=7))


@cache
def library_versions() -> str:
    """The versions of the libraries that make the classical codecs' bytes (an evaluation reuses a classical
    codec's earlier points only when these match)."""
    found = []
    for package in ("pillow", "pillow-heif", "imagecodecs"):
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} missing")
    return ", ".join(found)


def _pillow_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _heif_decode(data: bytes) -> np.ndarray:
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    return np.asarray(heif.to_pillow().convert("RGB"))


def _jpegxl_decode(data: bytes) -> np.ndarray:
    import imagecodecs

    return np.asarray(imagecodecs.jpegxl_decode(data))[..., :3]


@dataclass(frozen=True)
class ClassicalCodec:
    """A classical codec: how to encode at one setting, how to decode, and the settings of its sweep."""

    name: str
    description: str
    settings: tuple[float, ...]
    encoder: Encoder
    decoder: Callable[[bytes], np.ndarray] = _pillow_decode
    reach: tuple[float, ...] = ()  # every setting the codec takes, by increasing rate (default: the sweep)

    @property
    def all_settings(self) -> tuple[float, ...]:
        """The settings a search for a target rate may try: the codec's whole range, not only the sweep."""
        return self.reach or self.settings

    def encode(self, image: np.ndarray, setting: float) -> bytes:
        """HxWx3 uint8 -> the bytes of a file."""
        return self.encoder(image, setting)

    def decode(self, data: bytes) -> np.ndarray:
        """The bytes of a file -> HxWx3 uint8."""
        return self.decoder(data)


_QUALITY_5_95 = tuple(range(5, 100, 5))
_QUALITY_10_90 = tuple(range(10, 100, 10))
_J2K_RATES = (0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0)
_QUALITY_1_100 = tuple(range(1, 101))
_J2K_ALL = tuple(round(0.01 * 1.05**k, 4) for k in range(118))  # 0.01 .. about 3 bpp
_JXL_ALL = tuple(round(25 * 0.97**k, 3) for k in range(134))  # distance 25 (smallest) .. about 0.4

CLASSICAL = {
    codec.name: codec
    for codec in (
        ClassicalCodec("jpeg", "JPEG 4:2:0 (libjpeg-turbo, Pillow)", _QUALITY_5_95,
                       _pillow_encoder("JPEG", subsampling="4:2:0"), reach=_QUALITY_1_100),
        ClassicalCodec("jpeg444", "JPEG 4:4:4 (libjpeg-turbo, Pillow)", _QUALITY_5_95,
                       _pillow_encoder("JPEG", subsampling="4:4:4"), reach=_QUALITY_1_100),
        ClassicalCodec("jpeg2000", "JPEG 2000, OpenJPEG defaults: 5/3 wavelet, YCbCr (Pillow)", _J2K_RATES,
                       _jpeg2000_encoder(irreversible=False), reach=_J2K_ALL),
        ClassicalCodec("jpeg2000-97", "JPEG 2000, 9/7 wavelet, YCbCr (OpenJPEG, Pillow)", _J2K_RATES,
                       _jpeg2000_encoder(irreversible=True), reach=_J2K_ALL),
        ClassicalCodec("webp", "WebP (libwebp, Pillow, method 6)", _QUALITY_5_95,
                       _pillow_encoder("WEBP", method=6), reach=_QUALITY_1_100),
        ClassicalCodec("avif", "AVIF, AV1 intra 4:4:4 (libavif, Pillow)", _QUALITY_10_90,
                       _pillow_encoder("AVIF", subsampling="4:4:4"), reach=_QUALITY_1_100),
        ClassicalCodec("heif", "HEIF, HEVC intra 4:4:4 (libheif + x265, pillow-heif)", (10, 20, 30, 40, 50, 60, 70),
                       _heif, _heif_decode, reach=_QUALITY_1_100),
        ClassicalCodec("jpegxl", "JPEG XL (libjxl, imagecodecs, effort 7)",
                       (0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0), _jpegxl, _jpegxl_decode, reach=_JXL_ALL),
    )
}
