"""A Pillow plugin for .lic files: `import licodec.pillow` and Pillow reads and writes them.

    >>> import licodec.pillow
    >>> from PIL import Image
    >>> image = Image.open("photo.lic")            # the header only; decoding happens on load()
    >>> image.save("again.lic", codec="balle2018-hyperprior", quality=6)

Reading: `Image.open` parses and checks the header (codec, size, channels); the image decodes on first access
(`load()`, `convert()`, `save()`, ...), as for Pillow's own formats. `image.info` holds the header's `codec`,
`quality` and `weights_hash`, and the stored `icc_profile`, `exif` and `xmp` bytes (where Pillow's savers find
them). The mode is "RGB", or "L" for a file coded from a grayscale image.

Writing: `image.save(path_or_file, format="LIC", ...)` (the format is implied by a ".lic" suffix) takes the
options of `licodec.compress`: `codec`, `quality`, `precision`, `target_bpp`, `target_psnr`, `weights`, `effort`,
`strip`, `tile`, `jobs`, `max_pixels`; the image's ICC profile, EXIF and XMP are kept unless `strip`. Images that
licodec refuses (transparency, 16-bit) raise `licodec.ImageError` rather than being converted silently.

Importing this module is cheap; PyTorch and the codec load on the first decode or encode.
"""

from __future__ import annotations

from typing import IO

from PIL import Image, ImageFile

from licodec.bitstream import MAGIC, METADATA_CHUNKS, unpack
from licodec.errors import BitstreamError

FORMAT = "LIC"
EXTENSION = ".lic"
MIME = "image/x-licodec"
SAVE_OPTIONS = ("codec", "quality", "precision", "target_bpp", "target_psnr", "weights", "effort", "strip", "tile",
                "jobs", "max_pixels")


def _accept(prefix: bytes) -> bool:
    return prefix[: len(MAGIC)] == MAGIC


class LicImageFile(ImageFile.ImageFile):
    """A .lic file opened by Pillow: its size and mode from the header, its pixels decoded by licodec."""

    format = FORMAT
    format_description = "licodec learned image codec"

    def _open(self) -> None:
        data = self.fp.read()
        try:
            header, _ = unpack(data, prefix=True)
        except BitstreamError as error:
            # SyntaxError is how a Pillow plugin says "not (a valid file of) my format".
            raise SyntaxError(f"not a valid .lic file: {error}") from None
        self._size = (header.width, header.height)
        self._mode = "L" if header.channels == 1 else "RGB"
        self.info.update(codec=header.codec, quality=header.quality, weights_hash=header.weights_hash)
        self.info.update({key: header.chunks[tag] for key, tag in METADATA_CHUNKS.items() if tag in header.chunks})
        self.tile = [_tile(self.size, self.mode)]


def _tile(size: tuple[int, int], mode: str):
    extents = (0, 0, *size)
    if hasattr(ImageFile, "_Tile"):  # Pillow >= 11 names the fields
        return ImageFile._Tile(FORMAT, extents, 0, (mode,))
    return (FORMAT, extents, 0, (mode,))


class _LicDecoder(ImageFile.PyDecoder):
    """Reads the whole file from the start and hands Pillow the decoded pixels in one piece."""

    _pulls_fd = True

    def decode(self, buffer: bytes | Image.SupportsArrayInterface) -> tuple[int, int]:
        from licodec.api import decompress

        assert self.fd is not None
        self.fd.seek(0)
        image = decompress(self.fd.read())
        self.set_as_raw(image.tobytes(), self.args[0] if self.args else image.mode)
        return -1, 0


def _save(image: Image.Image, fp: IO[bytes], filename: str | bytes) -> None:
    from licodec.api import compress

    options = {key: image.encoderinfo[key] for key in SAVE_OPTIONS if key in image.encoderinfo}
    fp.write(compress(image, **options))


def register() -> None:
    """Register the LIC format with Pillow (done on import; calling it again is harmless)."""
    Image.register_open(FORMAT, LicImageFile, _accept)
    Image.register_decoder(FORMAT, _LicDecoder)
    Image.register_save(FORMAT, _save)
    Image.register_extension(FORMAT, EXTENSION)
    Image.register_mime(FORMAT, MIME)


register()
