"""Images in and out: files, PIL images, numpy arrays and tensors <-> 1x3xHxW float tensors in [0, 1].

Decided per mode (licodec codes 8-bit RGB; the header records whether to give back grayscale):
- RGB, L (grayscale), 1 (bilevel, read as grayscale), P (palette, expanded), CMYK and YCbCr (converted to RGB by
  Pillow): coded.
- RGBA, LA, PA: coded when the alpha channel is fully opaque (it is then dropped, losing nothing); an image with
  any transparency is refused, because licodec would silently flatten it.
- 16-bit and 32-bit integer or float images (I;16*, I, F): refused; licodec would have to drop precision.
"""

from __future__ import annotations

import io as _io
import os
import tempfile
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from licodec.errors import ImageError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]

_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def _from_pil(image: Image.Image) -> tuple[torch.Tensor, int]:
    mode = image.mode
    if mode in _HIGH_DEPTH:
        raise ImageError(f"{mode} images ({'16' if mode.startswith('I;16') else '32'}-bit) are not supported; "
                         "convert to 8 bits first")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            raise ImageError("image has transparency (an alpha channel below 255); licodec codes opaque images only")
        image = image.convert("L" if image.mode in ("LA", "La") else "RGB")
    if image.mode == "1":
        image = image.convert("L")
    channels = 1 if image.mode == "L" else 3
    try:
        array = np.asarray(image.convert("RGB"))
    except (ValueError, OSError) as error:
        raise ImageError(f"cannot convert {mode} image to RGB ({error})") from None
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError("image is empty (zero width or height)")
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255.0, channels


def _from_array(array: np.ndarray) -> tuple[torch.Tensor, int]:
    if array.dtype != np.uint8:
        raise ImageError(f"numpy images must be uint8 (HxW or HxWx3), got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return _from_pil(Image.fromarray(array, "L"))
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return _from_pil(Image.fromarray(array, "RGB" if array.shape[2] == 3 else "RGBA"))
    raise ImageError(f"numpy images must be HxW, HxWx1, HxWx3 or HxWx4, got shape {array.shape}")


def _from_tensor(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    if tensor.dim() == 3:
        tensor = tensor[None]
    if tensor.dim() != 4 or tensor.shape[0] != 1 or tensor.shape[1] not in (1, 3):
        raise ImageError(f"tensors must be 1x3xHxW, 3xHxW, 1x1xHxW or 1xHxW, got {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ImageError("tensors must be floating point in [0, 1]")
    if tensor.shape[-1] == 0 or tensor.shape[-2] == 0:
        raise ImageError("image is empty (zero width or height)")
    channels = int(tensor.shape[1])
    # Round to 8 bits: the codec's input domain, and what PSNR is measured on.
    tensor = torch.round(tensor.detach().float().cpu().clamp(0, 1) * 255) / 255
    return tensor.expand(1, 3, *tensor.shape[-2:]).contiguous(), channels


def read_image(source: ImageLike) -> tuple[torch.Tensor, int]:
    """Any supported image -> (1x3xHxW float tensor of 8-bit values in [0, 1], channels to give back: 1 or 3)."""
    if isinstance(source, Image.Image):
        return _from_pil(source)
    if isinstance(source, np.ndarray):
        return _from_array(source)
    if isinstance(source, torch.Tensor):
        return _from_tensor(source)
    if isinstance(source, (bytes, bytearray)):
        return read_image_bytes(bytes(source), "<bytes>")
    path = Path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory") from None
    except OSError as error:
        raise ImageError(f"{path}: cannot read ({error.strerror})") from None
    return read_image_bytes(data, str(path))


def read_image_bytes(data: bytes, name: str) -> tuple[torch.Tensor, int]:
    """Decode an image file held in memory."""
    try:
        with Image.open(_io.BytesIO(data)) as image:
            image.load()
            return _from_pil(image)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: damaged image ({error})") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"{name}: {error}") from None


def to_pil(x: torch.Tensor, channels: int = 3) -> Image.Image:
    """1x3xHxW tensor in [0, 1] -> 8-bit PIL image (grayscale when `channels` is 1)."""
    array = torch.round(x[0].clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(np.ascontiguousarray(array), "RGB")
    return image.convert("L") if channels == 1 else image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """1x3xHxW tensor in [0, 1] -> HxWx3 uint8 array, rounded as every decoder output is."""
    return torch.round(x[0].clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def encode_image(image: Image.Image, format_hint: str) -> bytes:
    """An image file's bytes in the format named by a suffix such as ".png" (PNG when unknown)."""
    extension = format_hint.lower()
    formats = Image.registered_extensions()
    image_format = formats.get(extension, "PNG")
    buffer = _io.BytesIO()
    try:
        image.save(buffer, format=image_format)
    except (OSError, ValueError, KeyError) as error:
        raise ImageError(f"cannot write a {image_format} image ({error})") from None
    return buffer.getvalue()


def write_atomic(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> None:
    """Write `data` to `path` through a temporary file and a rename: the file is whole or absent.

    An existing file is replaced only with `overwrite`.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ImageError(f"{path}: exists (use --force to overwrite)")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory")
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise ImageError(f"{directory}: no such directory")
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        if overwrite:
            os.replace(temporary, path)
        else:
            # link() fails if the name appeared meanwhile: never clobber a file we were not asked to.
            try:
                os.link(temporary, path)
            except FileExistsError:
                raise ImageError(f"{path}: exists (use --force to overwrite)") from None
            except OSError:
                os.replace(temporary, path)
    except OSError as error:
        raise ImageError(f"{path}: cannot write ({error.strerror})") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
