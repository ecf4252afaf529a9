"""Images in and out: files, PIL images, numpy arrays and tensors <-> 1x3xHxW float tensors in [0, 1].

Decided per mode (licodec codes 8-bit RGB; the header records whether to give back grayscale):
- RGB, L (grayscale), 1 (bilevel, read as grayscale), P (palette, expanded), CMYK and YCbCr (converted to RGB by
  Pillow): coded.
- RGBA, LA, PA (and 16-bit gray+alpha, which Pillow reads as RGBA): coded when the alpha channel is fully opaque
  (it is then dropped, losing nothing); an image with any transparency is refused, because licodec would silently
  flatten it. Gray+alpha comes back gray.
- 16-bit images, gray or colour: refused, as licodec would drop precision, unless `reduce_to_8_bit` (the CLI's
  --reduce-to-8-bit) accepts that, with a warning. 32-bit integer and float images (I, F): refused.
- Animated images (GIF, APNG, WebP): refused, unless `first_frame` accepts coding the first frame, with a warning.
- EXIF orientation is applied when reading, so the pixels coded are the image as it is viewed.

`read_image_with_metadata` also returns what is kept beside the pixels (`Metadata`: the ICC profile, the EXIF
block with its orientation reset, the XMP packet), which a .lic file stores in ancillary header chunks.
Warnings are `licodec.errors.LicodecWarning`s.
"""

from __future__ import annotations

import io as _io
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from licodec.bitstream import METADATA_CHUNKS
from licodec.errors import ImageError, LicodecWarning

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]

_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ICC, EXIF, XMP = (METADATA_CHUNKS[key] for key in ("icc_profile", "exif", "xmp"))  # the .lic chunks that hold them
_EXIF_PREFIX = b"Exif\x00\x00"


@dataclass(frozen=True)
class Metadata:
    """What an image file holds beside its pixels that licodec keeps: ICC profile, EXIF (orientation reset, as
    the pixels are stored upright), XMP packet; raw bytes, None when absent."""

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None

    def chunks(self) -> dict[str, bytes]:
        """The .lic header chunks holding this metadata (none for an image without any)."""
        return {tag: data for tag, data in ((ICC, self.icc), (EXIF, self.exif), (XMP, self.xmp)) if data}

    @classmethod
    def from_chunks(cls, chunks) -> Metadata:
        """The metadata stored in a .lic header's chunks (others are ignored)."""
        return cls(chunks.get(ICC) or None, chunks.get(EXIF) or None, chunks.get(XMP) or None)


def _pil_metadata(image: Image.Image) -> Metadata:
    info = image.info
    icc = info.get("icc_profile") or None
    exif = info.get("exif") or None
    if isinstance(exif, Image.Exif):
        exif = exif.tobytes()
    if exif is not None and not exif.startswith(_EXIF_PREFIX):
        exif = _EXIF_PREFIX + bytes(exif)  # PNG's eXIf holds the bare TIFF block; JPEG's APP1 has the prefix
    xmp = info.get("xmp") or info.get("XML:com.adobe.xmp") or None
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    return Metadata(bytes(icc) if icc else None, bytes(exif) if exif else None, bytes(xmp) if xmp else None)


def _rawmode(image: Image.Image) -> str:
    """How the file stores its pixels ("RGB;16B" for 16-bit colour PNG), as far as Pillow says before loading."""
    for tile in getattr(image, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        if isinstance(args, str):
            return args
        if isinstance(args, tuple) and args and isinstance(args[0], str):
            return args[0]
    return ""


def _warn(message: str) -> None:
    warnings.warn(message, LicodecWarning, stacklevel=3)


def _to_8_bit(image: Image.Image) -> Image.Image:
    """A 16-bit gray image (I;16*, or I within 16 bits) rounded to 8 bits."""
    array = np.asarray(image).astype(np.int64)
    if array.size and (array.min() < 0 or array.max() > 65535):
        raise ImageError(f"{image.mode} image with values beyond 16 bits; convert to 8 bits first")
    return Image.fromarray(((array * 255 + 32767) // 65535).astype(np.uint8), "L")


def _from_pil(image: Image.Image, reduce_to_8_bit: bool = False, name: str = "image",
              rawmode: str = "") -> tuple[torch.Tensor, int]:
    mode = image.mode
    sixteen = ";16" in rawmode or mode.startswith("I;16")
    if mode in _HIGH_DEPTH or sixteen:
        if not reduce_to_8_bit or mode == "F" or not (sixteen or mode == "I"):
            depth = "16" if sixteen else "32"
            hint = "; pass --reduce-to-8-bit (reduce_to_8_bit=True) to code it at 8 bits" if sixteen else ""
            raise ImageError(f"{name}: {depth}-bit {mode if not sixteen else 'image'} is not supported "
                             f"(licodec codes 8 bits per channel){hint or '; convert to 8 bits first'}")
        _warn(f"{name}: 16-bit image coded at 8 bits per channel (--reduce-to-8-bit)")
        if mode in _HIGH_DEPTH:
            image = _to_8_bit(image)
    if rawmode.startswith("LA") and image.mode == "RGBA":
        image = image.convert("LA")  # 16-bit gray+alpha, which Pillow reads as RGBA
    mode = image.mode
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


def _check_frames(image: Image.Image, name: str, first_frame: bool) -> None:
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and getattr(image, "is_animated", True):
        if not first_frame:
            raise ImageError(f"{name}: animated ({frames} frames); licodec codes still images (pass "
                             "--first-frame, first_frame=True, to code the first frame)")
        _warn(f"{name}: animated ({frames} frames); coding the {'first' if image.tell() == 0 else 'current'} "
              "frame only (--first-frame)")


def _open(data: bytes, name: str, reduce_to_8_bit: bool, first_frame: bool) -> tuple[torch.Tensor, int, Metadata]:
    try:
        with Image.open(_io.BytesIO(data)) as image:
            _check_frames(image, name, first_frame)
            rawmode = _rawmode(image)
            image.load()
            metadata = _pil_metadata(image)
            if image.getexif().get(0x0112, 1) != 1:
                upright = ImageOps.exif_transpose(image)
                metadata = Metadata(metadata.icc, _pil_metadata(upright).exif, metadata.xmp)
                image = upright
            x, channels = _from_pil(image, reduce_to_8_bit, name, rawmode)
            return x, channels, metadata
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as error:
        raise ImageError(f"{name}: {error}") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{name}: damaged image ({error})") from None


def _from_array(array: np.ndarray) -> tuple[torch.Tensor, int]:
    if array.dtype != np.uint8:
        raise ImageError(f"numpy images must be uint8 (HxW or HxWx3), got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return _from_pil(Image.fromarray(array, "L"))
    if array.ndim == 3 and array.shape[2] in (2, 3, 4):
        return _from_pil(Image.fromarray(np.ascontiguousarray(array), {2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[2]]))
    raise ImageError(f"numpy images must be HxW or HxWxC with C 1 to 4 (gray, gray+alpha, RGB, RGBA), got shape "
                     f"{array.shape}")


def _from_tensor(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    if tensor.dim() == 3:
        tensor = tensor[None]
    if tensor.dim() != 4 or tensor.shape[0] != 1 or tensor.shape[1] not in (1, 3):
        raise ImageError(f"tensors must be 1x3xHxW, 3xHxW, 1x1xHxW or 1xHxW, got {tuple(tensor.shape)}")
    if not tensor.is_floating_point():
        raise ImageError("tensors must be floating point in [0, 1]")
    if not bool(torch.isfinite(tensor).all()):
        raise ImageError("the tensor holds NaN or infinite values")
    if tensor.shape[-1] == 0 or tensor.shape[-2] == 0:
        raise ImageError("image is empty (zero width or height)")
    channels = int(tensor.shape[1])
    # Round to 8 bits: the codec's input domain, and what PSNR is measured on.
    tensor = torch.round(tensor.detach().float().cpu().clamp(0, 1) * 255) / 255
    return tensor.expand(1, 3, *tensor.shape[-2:]).contiguous(), channels


def read_image(source: ImageLike, reduce_to_8_bit: bool = False,
               first_frame: bool = False) -> tuple[torch.Tensor, int]:
    """Any supported image -> (1x3xHxW float tensor of 8-bit values in [0, 1], channels to give back: 1 or 3)."""
    return read_image_with_metadata(source, reduce_to_8_bit, first_frame)[:2]


def read_image_with_metadata(source: ImageLike, reduce_to_8_bit: bool = False,
                             first_frame: bool = False) -> tuple[torch.Tensor, int, Metadata]:
    """Like `read_image`, with the image's `Metadata` (empty for arrays and tensors)."""
    if isinstance(source, Image.Image):
        _check_frames(source, "image", first_frame)
        metadata = _pil_metadata(source)
        if source.getexif().get(0x0112, 1) != 1:
            source = ImageOps.exif_transpose(source)
            metadata = Metadata(metadata.icc, _pil_metadata(source).exif, metadata.xmp)
        return (*_from_pil(source, reduce_to_8_bit, "image", _rawmode(source)), metadata)
    if isinstance(source, np.ndarray):
        return (*_from_array(source), Metadata())
    if isinstance(source, torch.Tensor):
        return (*_from_tensor(source), Metadata())
    if isinstance(source, (bytes, bytearray)):
        return _open(bytes(source), "<bytes>", reduce_to_8_bit, first_frame)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageError(f"expected an image (path, PIL image, numpy array or tensor), got {type(source).__name__}")
    path = Path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a directory") from None
    except OSError as error:
        raise ImageError(f"{path}: cannot read ({error.strerror})") from None
    return _open(data, str(path), reduce_to_8_bit, first_frame)


def read_image_bytes(data: bytes, name: str, reduce_to_8_bit: bool = False,
                     first_frame: bool = False) -> tuple[torch.Tensor, int]:
    """Decode an image file held in memory."""
    return _open(data, name, reduce_to_8_bit, first_frame)[:2]


def read_image_bytes_with_metadata(data: bytes, name: str, reduce_to_8_bit: bool = False,
                                   first_frame: bool = False) -> tuple[torch.Tensor, int, Metadata]:
    """Decode an image file held in memory, with its `Metadata`."""
    return _open(data, name, reduce_to_8_bit, first_frame)


def to_pil(x: torch.Tensor, channels: int = 3) -> Image.Image:
    """1x3xHxW tensor in [0, 1] -> 8-bit PIL image (grayscale when `channels` is 1)."""
    array = torch.round(x[0].clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
    image = Image.fromarray(np.ascontiguousarray(array), "RGB")
    return image.convert("L") if channels == 1 else image


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """1x3xHxW tensor in [0, 1] -> HxWx3 uint8 array, rounded as every decoder output is."""
    return torch.round(x[0].clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()


_KEEPS = {"PNG": ("icc", "exif", "xmp"), "JPEG": ("icc", "exif", "xmp"), "WEBP": ("icc", "exif", "xmp"),
          "TIFF": ("icc", "exif"), "AVIF": ("icc", "exif", "xmp"), "HEIF": ("icc", "exif", "xmp")}


def save_options(image_format: str, metadata: Metadata | None) -> dict:
    """Pillow `save` options that write `metadata` into an image of `image_format` (a Pillow format name); what
    the format cannot hold is named in a `LicodecWarning`."""
    options: dict = {}
    if metadata is None:
        return options
    keeps = _KEEPS.get(image_format, ())
    lost = [label for label, field in (("ICC profile", "icc"), ("EXIF", "exif"), ("XMP", "xmp"))
            if getattr(metadata, field) and field not in keeps]
    if lost:
        _warn(f"{image_format} cannot hold the {' and '.join(lost)} of the original; not written "
              "(PNG, JPEG or WebP keep them)")
    if metadata.icc and "icc" in keeps:
        options["icc_profile"] = metadata.icc
    if metadata.exif and "exif" in keeps:
        options["exif"] = metadata.exif
    if metadata.xmp and "xmp" in keeps:
        if image_format == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_itxt("XML:com.adobe.xmp", metadata.xmp.decode("utf-8", "replace"))
            options["pnginfo"] = info
        else:
            options["xmp"] = metadata.xmp
    return options


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
    mode = _new_file_mode(path, overwrite)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        os.fchmod(descriptor, mode)  # mkstemp makes it 0600; a plain open() would give the umask's mode
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
        raise ImageError(f"{path}: cannot write ({error.strerror or error})") from None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


def _new_file_mode(path: Path, overwrite: bool) -> int:
    """The replaced file's permissions with `overwrite`, else those the umask gives a new file."""
    if overwrite:
        try:
            return stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask
