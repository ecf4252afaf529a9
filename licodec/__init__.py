"""licodec: learned image codecs of the JPEG survey N83058, with real files and bit-exact decoding.

    >>> import licodec
    >>> data = licodec.compress("photo.png", codec="balle2018-hyperprior", quality=4)
    >>> image = licodec.decompress(data)          # a PIL image

Importing the package is cheap; PyTorch and the models load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from licodec.errors import BitstreamError, CodecError, ImageError, LicodecError, ResourceError, WeightsError

if TYPE_CHECKING:
    from PIL import Image

    from licodec.codecs.base import Codec

__version__ = "0.1.0"
__all__ = [
    "BitstreamError", "CodecError", "ImageError", "LicodecError", "ResourceError", "WeightsError",
    "codecs", "compress", "decompress", "load",
]


def compress(image: Any, codec: str = "balle2018-hyperprior", quality: float = 4, precision: str = "fp32",
             target_bpp: float | None = None, target_psnr: float | None = None, **options: Any) -> bytes:
    """Compress an image (path, PIL image, uint8 numpy array or 1x3xHxW float tensor in [0, 1]) to .lic bytes.

    `quality` is a trained level or a number between two. `target_bpp` (the file's size, at most) or
    `target_psnr` (at least) search the quality for this image instead. `precision="bf16"` runs the transforms
    in bfloat16 (faster only on CPUs with AMX or AVX512-BF16, see `licodec.precision`; "auto" picks it there and
    fp32 elsewhere; the files decode in either precision). `options`: `max_pixels` (default 2**26), `strip` (drop
    ICC, EXIF, XMP), `reduce_to_8_bit` (accept 16-bit images), `first_frame` (of an animation), `weights` (a
    weights file, or a hash in the store, in the place of `codec`), `tile` (images larger than this on a side,
    default 1024, are coded in overlapping tiles), `jobs` (tiles coded in parallel).
    """
    from licodec import api

    return api.compress(image, codec, quality, precision, target_bpp, target_psnr, **options)


def decompress(data: bytes, precision: str = "fp32", iterations: int | None = None,
               max_pixels: int = 1 << 26, weights: str | None = None, jobs: int = 1) -> Image.Image:
    """Decompress .lic bytes to a PIL image; for progressive codecs, optionally from the first `iterations`.
    The stored ICC profile, EXIF and XMP are in the image's `info`. The weights are found by the hash the file
    records (the zoo, the user's store, LICODEC_WEIGHTS_PATH, the archive), or given as `weights` (a file or
    hash). A tiled file decodes `jobs` tiles at a time."""
    from licodec import api

    return api.decompress(data, precision, iterations, max_pixels, weights, jobs)


def load(name: str = "balle2018-hyperprior", quality: int | None = None) -> Codec:
    """A codec ready to code: a codec name (its shipped weights), a weights file's path, or a weights hash in the
    store; `quality` is validated when given."""
    from licodec import api

    return api.load(name, quality)


def codecs() -> list[str]:
    """Names of every codec licodec implements."""
    from licodec.registry import names

    return names()
