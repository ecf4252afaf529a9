"""The Python API behind `licodec.compress` / `licodec.decompress` (re-exported by the package)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from PIL import Image

from licodec import bitstream
from licodec.codecs.base import Codec, Encoded
from licodec.errors import BitstreamError, CodecError, ImageError, WeightsError
from licodec.io import ImageLike, read_image, to_pil
from licodec.precision import resolve as resolve_precision

if TYPE_CHECKING:
    from licodec.rate import Reached

DEFAULT_CODEC = "balle2018-hyperprior"
DEFAULT_QUALITY = 4


def load(name: str = DEFAULT_CODEC, quality: int | None = None) -> Codec:
    """A codec from its name (the shipped weights), a weights file's path or a weights hash in the store
    (`licodec.store.load`). `quality`, when given, is checked against it."""
    from licodec import store

    codec = store.load(name)
    if quality is not None:
        codec.check_quality(quality)
    return codec


def compress_tensor(x: torch.Tensor, channels: int, codec: Codec, quality: float, precision: str = "fp32",
                    preserve: torch.Tensor | None = None) -> bytes:
    """Code a 1x3xHxW tensor in [0, 1] with a loaded codec into the bytes of a .lic file.

    `quality` is a trained level (an integer) or a number between two (see `Codec.check_quality`). `preserve`
    (H x W, 1 = keep) asks a generative codec for selective generation: the rest may be synthesized."""
    quality = codec.check_quality(quality) + 1
    _check_size(x)
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
    with codec.precision(precision):
        encoded = codec.compress(x, quality, **options)
    return pack(codec, encoded, channels)


def compress_to_target(x: torch.Tensor, channels: int, codec: Codec, metric: str, target: float,
                       precision: str = "fp32") -> tuple[bytes, Reached]:
    """Like `compress_tensor`, with the quality searched so that the file reaches a target bpp or PSNR
    (`licodec.rate.reach`); returns the bytes and what the search found and cost."""
    from licodec.rate import reach

    _check_size(x)
    precision = resolve_precision(precision)
    reached = reach(codec, x, target, metric, precision, file_size=lambda e: len(pack(codec, e, channels)))
    return pack(codec, reached.encoded, channels), reached


def _check_size(x: torch.Tensor) -> None:
    height, width = x.shape[-2:]
    if height * width > bitstream.MAX_PIXELS:
        raise ImageError(f"image of {width}x{height} pixels exceeds licodec's limit of {bitstream.MAX_PIXELS}")


def pack(codec: Codec, encoded: Encoded, channels: int) -> bytes:
    """The bytes of a .lic file: `codec`'s header (name, weights hash, size, `channels` to give back: 1 or 3,
    quality) and `encoded`'s sections. The codec must have saved weights (a hash) for the decoder to find."""
    if codec.weights_hash is None:
        raise WeightsError(f"this {codec.name} codec was never saved to a weights file (licodec.zoo.save), so no "
                           "decoder could find its weights")
    header = bitstream.Header(codec.name, codec.weights_hash, encoded.height, encoded.width, channels,
                              encoded.quality)
    return bitstream.pack(header, encoded.sections)


def decompress_tensor(data: bytes, precision: str = "fp32", iterations: int | None = None,
                      weights: str | Codec | None = None) -> tuple[torch.Tensor, bitstream.Header]:
    """Decode the bytes of a .lic file to a 1x3xHxW tensor in [0, 1] and its header, with the weights the header
    names, found by hash in the store (or `weights`: a file, a hash or a loaded codec, which must be those).

    Progressive codecs (one section per iteration) decode the first `iterations` sections, or every complete
    section of a file cut after one of them; other codecs need the whole file."""
    header, sections = bitstream.unpack(data, prefix=True)
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
    encoded = Encoded(sections, header.height, header.width, header.quality)
    try:
        with codec.precision(precision):
            x_hat = codec.decompress(encoded)
    except (IndexError, RuntimeError) as error:
        raise BitstreamError(f"bitstream does not match {header.codec} ({error})") from None
    return x_hat, header


def compress(image: ImageLike, codec: str = DEFAULT_CODEC, quality: float = DEFAULT_QUALITY,
             precision: str = "fp32", target_bpp: float | None = None, target_psnr: float | None = None,
             weights: str | None = None) -> bytes:
    """Compress an image (path, PIL image, uint8 numpy array or float tensor) into .lic bytes.

    With `target_bpp` or `target_psnr` the quality is searched for that image instead (`licodec.rate`).
    `weights` (a weights file or hash) takes the place of `codec`: the codec is the one the file is for."""
    x, channels = read_image(image)
    codec = codec if weights is None else weights
    if target_bpp is not None and target_psnr is not None:
        raise CodecError("give a target bpp or a target PSNR, not both")
    if target_bpp is None and target_psnr is None:
        return compress_tensor(x, channels, load(codec, quality), quality, precision)
    metric, target = ("bpp", target_bpp) if target_bpp is not None else ("psnr", target_psnr)
    return compress_to_target(x, channels, load(codec), metric, float(target), precision)[0]


def decompress(data: bytes, precision: str = "fp32", iterations: int | None = None,
               weights: str | None = None) -> Image.Image:
    """Decompress .lic bytes into a PIL image (grayscale if the original was)."""
    x_hat, header = decompress_tensor(data, precision, iterations, weights)
    return to_pil(x_hat, header.channels)
