"""The image formats a decoded image can be written in, chosen by the output file's suffix.

| suffixes | format | written | through |
|---|---|---|---|
| .png | PNG | lossless | Pillow |
| .bmp, .ppm .pgm .pnm, .tga, .qoi | their formats | lossless | Pillow |
| .tif .tiff | TIFF | lossless (deflate) | Pillow |
| .webp | WebP | lossless | Pillow (libwebp) |
| .jxl | JPEG XL | lossless | imagecodecs (libjxl) |
| .jpg .jpeg | JPEG | quality 95, 4:4:4 | Pillow (libjpeg-turbo) |
| .jp2 .j2k | JPEG 2000 | lossless (5/3 wavelet) | Pillow (OpenJPEG) |
| .heic .heif | HEIF (HEVC) | quality 95, 4:4:4 | pillow-heif (libheif) |
| .avif | AVIF (AV1) | quality 95, 4:4:4 | Pillow (libavif) |

A lossy format re-codes the decoded pixels and loses a little more: against the decoded image, on the bundled
512x384 kodim23 crop, JPEG 43.0 dB, AVIF 44.9 dB and HEIF 49.6 dB PSNR. The lossless ones keep every pixel. AVIF
gives grayscale images back as RGB; the others keep grayscale (QOI, which has none, stores gray RGB). Any other
suffix is refused before anything is decoded.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from licodec.errors import ImageError

#: suffix -> format name (as Pillow spells it; "JXL" is written through imagecodecs)
SUFFIXES = {
    ".png": "PNG", ".bmp": "BMP", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM", ".tga": "TGA", ".qoi": "QOI",
    ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP", ".jxl": "JXL", ".jpg": "JPEG", ".jpeg": "JPEG",
    ".jp2": "JPEG2000", ".j2k": "JPEG2000", ".heic": "HEIF", ".heif": "HEIF", ".avif": "AVIF",
}
LOSSLESS = {"PNG", "BMP", "PPM", "TGA", "QOI", "TIFF", "WEBP", "JXL", "JPEG2000"}
_OPTIONS = {
    "TIFF": {"compression": "tiff_adobe_deflate"},
    "WEBP": {"lossless": True, "quality": 100, "method": 4},
    "JPEG": {"quality": 95, "subsampling": 0},
    "JPEG2000": {"irreversible": False},
    "HEIF": {"quality": 95, "chroma": 444},
    "AVIF": {"quality": 95, "subsampling": "4:4:4"},
}


def output_format(path: str | Path) -> str:
    """The format for an output file (or a bare suffix such as ".png"), from its suffix; `ImageError` (one line
    naming the known suffixes) for any other suffix."""
    text = str(path)
    suffix = (text if text.startswith(".") and "/" not in text else Path(text).suffix).lower()  # ".png" or a path
    try:
        return SUFFIXES[suffix]
    except KeyError:
        what = f"unknown image suffix {suffix!r}" if suffix else "no image suffix"
        raise ImageError(f"{path}: {what} (known: {', '.join(SUFFIXES)})") from None


def encode(image: Image.Image, image_format: str, metadata=None) -> bytes:
    """The bytes of `image` (RGB or L) as a file of `image_format` (a value of `SUFFIXES`), at the settings above,
    with the ICC profile, EXIF and XMP of `metadata` (`licodec.io.Metadata`) where the format holds them."""
    from licodec.io import save_options

    extra = save_options(image_format, metadata)
    if image_format == "JXL":
        import imagecodecs
        import numpy as np

        return bytes(imagecodecs.jpegxl_encode(np.asarray(image), lossless=True, effort=7))
    if image_format == "HEIF":
        import pillow_heif

        pillow_heif.register_heif_opener()
    if image_format == "QOI" and image.mode == "L":  # QOI has no grayscale
        image = image.convert("RGB")
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=image_format, **_OPTIONS.get(image_format, {}), **extra)
    except (OSError, ValueError, KeyError) as error:
        raise ImageError(f"cannot write a {image_format} image ({error})") from None
    return buffer.getvalue()
