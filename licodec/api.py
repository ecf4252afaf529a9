"""The Python API behind `licodec.compress` / `licodec.decompress` (re-exported by the package)."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import torch
from PIL import Image

from licodec import bitstream, tiling
from licodec.codecs.base import Codec, Encoded
from licodec.errors import BitstreamError, CodecError, ImageError, ResourceError, WeightsError, is_out_of_memory
from licodec.io import ImageLike, Metadata, read_image_with_metadata, to_pil
from licodec.precision import resolve as resolve_precision

if TYPE_CHECKING:
    from licodec.rate import Reached

DEFAULT_CODEC = "balle2018-hyperprior"
DEFAULT_QUALITY = 4
DEFAULT_MAX_PIXELS = 1 << 26  # 8192 x 8192; `max_pixels` (the CLI's --max-pixels) raises it


def load(name: str = DEFAULT_CODEC, quality: int | None = None) -> Codec:
    """A codec from its name (the shipped weights), a weights file's path or a weights hash in the store
    (`licodec.store.load`). `quality`, when given, is checked against it."""
    from licodec import store

    codec = store.load(name)
    if quality is not None:
        codec.check_quality(quality)
    return codec


def compress_tensor(x: torch.Tensor, channels: int, codec: Codec, quality: float, precision: str = "fp32",
                    preserve: torch.Tensor | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                    metadata: Metadata | None = None, tile: int | None = None, jobs: int = 1,
                    effort: int | None = None) -> bytes:
    """Code a 1x3xHxW tensor in [0, 1] with a loaded codec into the bytes of a .lic file.

    `quality` is a trained level (an integer) or a number between two (see `Codec.check_quality`). `preserve`
    (H x W, 1 = keep) asks a generative codec for selective generation: the rest may be synthesized. An image of
    more than `max_pixels` pixels raises `ResourceError`. `metadata` (ICC, EXIF, XMP) goes into the header. An
    image larger than `tile` (default `tiling.DEFAULT_TILE`) on a side is coded in tiles, `jobs` at a time."""
    quality = codec.check_quality(quality) + 1
    _check_size(x, max_pixels)
    precision = resolve_precision(precision)
    options = {}
    if preserve is not None:
        import inspect

        if "preserve" not in inspect.signature(codec.compress).parameters:
            raise CodecError(f"{codec.name} has no selective generation (a preserve mask)")
        if tuple(preserve.shape[-2:]) != tuple(x.shape[-2:]):
            raise ImageError(f"the preserve mask is {preserve.shape[-1]}x{preserve.shape[-2]}, the image "
                             f"{x.shape[-1]}x{x.shape[-2]}")
        options["preserve"] = preserve.reshape(x.shape[-2:]) > 0
    try:
        with codec.precision(precision), codec.encoding(effort):  # effort: overfitted codecs (1..5)
            encoded = tiling.for_image(codec, *x.shape[-2:], tile=tile, jobs=jobs).compress(x, quality, **options)
    except MemoryError:
        raise _out_of_memory(x.shape[-1], x.shape[-2]) from None
    except RuntimeError as error:
        if is_out_of_memory(error):
            raise _out_of_memory(x.shape[-1], x.shape[-2]) from None
        raise
    return pack(codec, encoded, channels, metadata)


def compress_to_target(x: torch.Tensor, channels: int, codec: Codec, metric: str, target: float,
                       precision: str = "fp32", max_pixels: int = DEFAULT_MAX_PIXELS,
                       metadata: Metadata | None = None, tile: int | None = None,
                       jobs: int = 1, effort: int | None = None) -> tuple[bytes, Reached]:
    """Like `compress_tensor`, with the quality searched so that the file reaches a target bpp or PSNR
    (`licodec.rate.reach`); returns the bytes and what the search found and cost. The metadata is not counted
    against a target bpp."""
    from licodec.rate import reach

    _check_size(x, max_pixels)
    target = _number(target, f"target_{metric}")
    precision = resolve_precision(precision)
    coder = tiling.for_image(codec, *x.shape[-2:], tile=tile, jobs=jobs)
    with codec.encoding(effort, warm_start=True):  # an overfitted codec starts each search step from the last
        reached = reach(coder, x, target, metric, precision, file_size=lambda e: len(pack(codec, e, channels)))
    return pack(codec, reached.encoded, channels, metadata), reached


def _check_size(x: torch.Tensor, max_pixels: int) -> None:
    height, width = x.shape[-2:]
    if height * width > bitstream.MAX_PIXELS:
        raise ImageError(f"image of {width}x{height} pixels exceeds licodec's limit of {bitstream.MAX_PIXELS}")
    _check_pixels(height, width, max_pixels)


def _check_pixels(height: int, width: int, max_pixels: int) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise CodecError(f"max_pixels must be a positive integer, got {max_pixels!r}")
    if height * width > max_pixels:
        raise ResourceError(f"{width}x{height} is {height * width} pixels, more than the limit of {max_pixels} "
                            "(raise it with --max-pixels, or max_pixels= in Python)")


def _number(value: object, name: str) -> float:
    """`value` as a finite float, or `CodecError` naming the argument."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, (bool, str, bytes)) or not math.isfinite(number):
        raise CodecError(f"{name} must be a finite number, got {value!r}")
    return number


def _check_payload(codec: Codec, header: bitstream.Header, sections: list[bytes]) -> None:
    """Refuse a payload too small for the size its header claims (a forged size: a decompression bomb).

    A codec whose quality counts something (iterations, bitplanes, bottlenecks) pays its floor once per unit: per
    section decoded for progressive codecs, per quality level for the others."""
    bits = 8 * sum(len(section) for section in sections)
    units = 1 if codec.quality_unit is None else len(sections) if codec.progressive else int(header.quality)
    needed = codec.fewest_bits_per_pixel * header.height * header.width * units
    if bits < needed:
        raise BitstreamError(f"{sum(len(s) for s in sections)} bytes of payload cannot hold a {header.width}x"
                             f"{header.height} {header.codec} image (it needs at least {math.ceil(needed / 8)}): "
                             "the size in the header is damaged or forged")


def pack(codec: Codec, encoded: Encoded, channels: int, metadata: Metadata | None = None) -> bytes:
    """The bytes of a .lic file: `codec`'s header (name, weights hash, size, `channels` to give back: 1 or 3,
    quality, `metadata` in chunks, the TILE chunk of a tiled encoding from `licodec.tiling`) and `encoded`'s
    sections. The codec must have saved weights (a hash) for the decoder to find."""
    if codec.weights_hash is None:
        raise WeightsError(f"this {codec.name} codec was never saved to a weights file (licodec.zoo.save), so no "
                           "decoder could find its weights")
    chunks = dict(metadata.chunks()) if metadata is not None else {}
    if isinstance(encoded, tiling.TiledEncoded):
        chunks.update(encoded.chunks)
    header = bitstream.Header(codec.name, codec.weights_hash, encoded.height, encoded.width, channels,
                              encoded.quality, chunks=chunks)
    return bitstream.pack(header, encoded.sections)


def decompress_tensor(data: bytes, precision: str = "fp32", iterations: int | None = None,
                      max_pixels: int = DEFAULT_MAX_PIXELS, weights: str | Codec | None = None,
                      jobs: int = 1) -> tuple[torch.Tensor, bitstream.Header]:
    """Decode the bytes of a .lic file to a 1x3xHxW tensor in [0, 1] and its header, with the weights the header
    names, found by hash in the store (or `weights`: a file, a hash or a loaded codec, which must be those).

    Progressive codecs (one section per iteration) decode the first `iterations` sections, or every complete
    section of a file cut after one of them; other codecs need the whole file. Before anything is allocated, a
    header claiming more than `max_pixels` pixels raises `ResourceError`, and a payload smaller than the codec's
    `fewest_bits_per_pixel` allows for the claimed size raises `BitstreamError`. A tiled file decodes tile by
    tile, `jobs` at a time."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"expected the bytes of a .lic file, got {type(data).__name__}")
    header, sections = bitstream.unpack(data, prefix=True)
    _check_pixels(header.height, header.width, max_pixels)
    precision = resolve_precision(precision)
    from licodec import store
    from licodec.registry import codec_class

    try:
        codec_class(header.codec)
    except CodecError:
        raise BitstreamError(f"made by codec {header.codec!r}, which this licodec does not know") from None
    if weights is not None:
        codec = weights if isinstance(weights, Codec) else load(weights)
        if (codec.name, codec.weights_hash) != (header.codec, header.weights_hash):
            raise WeightsError(f"made by {header.codec} weights {header.weights_hash}, not by the given "
                               f"{codec.name} weights {codec.weights_hash}")
    else:
        try:
            codec = load(header.codec)  # the shipped weights: the common case
        except WeightsError:
            codec = None
        if codec is None or codec.weights_hash != header.weights_hash:
            codec = store.for_header(header.codec, header.weights_hash)  # by the hash, wherever the store finds it
    if not 1 <= header.quality <= codec.qualities:
        raise BitstreamError(f"quality {header.quality} is out of range for {header.codec}")
    complete = len(sections) == len(header.section_lengths)
    if not codec.progressive:
        if not complete:
            raise BitstreamError(f"truncated at byte {len(data)} after section {len(sections)} of "
                                 f"{len(header.section_lengths)}")
        if iterations is not None:
            raise CodecError(f"{header.codec} is not progressive: it has no iterations to choose")
    elif iterations is not None:
        if not isinstance(iterations, int) or iterations < 1:
            raise CodecError(f"iterations must be a positive integer, got {iterations!r}")
        sections = sections[: codec.sections_for(iterations)]
    if codec.progressive and not codec.decodable(len(sections)):
        raise BitstreamError(f"truncated at byte {len(data)}: no complete iteration to decode")
    _check_payload(codec, header, sections)
    encoded = Encoded(sections, header.height, header.width, header.quality)
    coder = codec
    if tiling.TAG in header.chunks:
        coder = tiling.TiledCodec.from_chunk(codec, header.chunks[tiling.TAG], header.height, header.width,
                                             len(sections), jobs)
    try:
        with codec.precision(precision):
            x_hat = coder.decompress(encoded)
    except MemoryError:
        raise _out_of_memory(header.width, header.height) from None
    except RuntimeError as error:
        if is_out_of_memory(error):
            raise _out_of_memory(header.width, header.height) from None
        raise BitstreamError(f"bitstream does not match {header.codec} ({_first_line(error)})") from None
    except (IndexError, ValueError, KeyError, OverflowError, TypeError, ZeroDivisionError) as error:
        # A header relabelled with another codec's name and weights reaches decoders with sections they never
        # wrote; whatever they trip on, the file does not match them.
        raise BitstreamError(f"bitstream does not match {header.codec} ({_first_line(error)})") from None
    return x_hat, header


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _out_of_memory(width: int, height: int) -> ResourceError:
    return ResourceError(f"out of memory coding a {width}x{height} image")


def compress(image: ImageLike, codec: str = DEFAULT_CODEC, quality: float = DEFAULT_QUALITY,
             precision: str = "fp32", target_bpp: float | None = None, target_psnr: float | None = None,
             max_pixels: int = DEFAULT_MAX_PIXELS, strip: bool = False, reduce_to_8_bit: bool = False,
             first_frame: bool = False, weights: str | None = None, jobs: int = 1,
             tile: int | None = None, effort: int | None = None) -> bytes:
    """Compress an image (path, PIL image, uint8 numpy array or float tensor) into .lic bytes.

    With `target_bpp` or `target_psnr` the quality is searched for that image instead (`licodec.rate`). The ICC
    profile, EXIF and XMP of an image file are kept unless `strip`; 16-bit images (`reduce_to_8_bit`) and
    animated ones (`first_frame`) are refused unless their flag accepts the loss (see `licodec.io`). `weights`
    (a weights file or hash) takes the place of `codec`: the codec is the one the file is for. Images larger
    than `tile` pixels on a side are coded in overlapping tiles, `jobs` in parallel (`licodec.tiling`). `effort`
    (1 fast .. 5 best) applies to overfitted codecs (`ladune2023-coolchic`)."""
    if weights is not None:
        codec = os.fspath(weights) if isinstance(weights, os.PathLike) else weights
    if not isinstance(codec, str):
        raise CodecError(f"codec must be a codec name, got {codec!r}")
    if target_bpp is not None and target_psnr is not None:
        raise CodecError("give a target bpp or a target PSNR, not both")
    metric, target = ("bpp", target_bpp) if target_bpp is not None else ("psnr", target_psnr)
    if target is not None:
        target = _number(target, f"target_{metric}")
    x, channels, metadata = read_image_with_metadata(image, reduce_to_8_bit, first_frame)
    metadata = None if strip else metadata
    if target is None:
        return compress_tensor(x, channels, load(codec, quality), quality, precision, max_pixels=max_pixels,
                               metadata=metadata, tile=tile, jobs=jobs, effort=effort)
    return compress_to_target(x, channels, load(codec), metric, target, precision, max_pixels, metadata, tile,
                              jobs, effort=effort)[0]


def decompress(data: bytes, precision: str = "fp32", iterations: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS, weights: str | None = None, jobs: int = 1) -> Image.Image:
    """Decompress .lic bytes into a PIL image (grayscale if the original was), with the stored ICC profile, EXIF
    and XMP in its `info` ("icc_profile", "exif", "xmp"), where Pillow's `save` finds them; a tiled file `jobs`
    tiles at a time."""
    x_hat, header = decompress_tensor(data, precision, iterations, max_pixels, weights, jobs)
    image = to_pil(x_hat, header.channels)
    metadata = Metadata.from_chunks(header.chunks)
    for key, value in (("icc_profile", metadata.icc), ("exif", metadata.exif), ("xmp", metadata.xmp)):
        if value:
            image.info[key] = value
    return image
