"""The .lic container: a small binary header, the codec's byte sections, each with its own CRC32.

Layout of format version 2 (integers big-endian):

    magic          4  b"\\x89LIC"
    version        1  FORMAT_VERSION
    name length    1  n
    codec name     n  ASCII, e.g. "balle2018-hyperprior"
    weights hash   8  first 8 bytes of the SHA-256 of the weights file that made it
    height         4
    width          4
    channels       1  1 (grayscale) or 3 (RGB): what the decoder writes
    quality        2  the codec's quality in 1/2048 steps (so at most 31.99)
    sections       1  k
    lengths        4k byte length of each section
    header crc32   4  of all the header bytes before it
    then, for each section:
    payload        its length
    crc32          4  of the payload

Every section carries its own checksum so that a progressive file (the recurrent codecs, one section per
iteration) cut after any section's checksum is still a valid prefix: `unpack(data, prefix=True)` returns the
complete sections only, and the header says how many there were. Anything else short, long or damaged raises
`BitstreamError` naming the first problem (magic, version, lengths, checksums, in that order).

Version 1 (still read): the same header with a 1-byte integer quality and no header checksum, the payload, then
one CRC32 of everything.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from licodec.errors import BitstreamError

MAGIC = b"\x89LIC"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
QUALITY_STEPS = 2048  # fine enough that rate control lands within 0.1 dB (PSNR can move 0.1 dB per 1/256)
HASH_BYTES = 8
MAX_PIXELS = 1 << 28  # 16384 x 16384: a larger size in a header is damage, not an image


@dataclass(frozen=True)
class Header:
    """What a .lic file says about itself."""

    codec: str
    weights_hash: str  # hex, 2 * HASH_BYTES characters
    height: int
    width: int
    channels: int
    quality: float  # 1-based; fractional between trained levels, in steps of 1/QUALITY_STEPS
    section_lengths: tuple[int, ...] = ()
    version: int = FORMAT_VERSION


def pack(header: Header, sections: list[bytes]) -> bytes:
    """Serialize a header and its sections into the bytes of a .lic file (format version 2)."""
    name = header.codec.encode("ascii")
    weights = bytes.fromhex(header.weights_hash)
    if len(name) > 255 or len(weights) != HASH_BYTES or len(sections) > 255:
        raise ValueError("codec name, weights hash or section count out of range")
    if not (0 < header.height and 0 < header.width and header.height * header.width <= MAX_PIXELS
            and header.channels in (1, 3)):
        raise ValueError("image size or channel count out of range")
    quality = round(header.quality * QUALITY_STEPS)
    if not (0 < quality < 1 << 16) or quality != header.quality * QUALITY_STEPS:
        raise ValueError(f"quality {header.quality} is not a multiple of 1/{QUALITY_STEPS} "
                         f"below {(1 << 16) // QUALITY_STEPS}")
    head = bytearray(MAGIC)
    head += struct.pack(">BB", FORMAT_VERSION, len(name)) + name + weights
    head += struct.pack(">IIBHB", header.height, header.width, header.channels, quality, len(sections))
    head += b"".join(struct.pack(">I", len(s)) for s in sections)
    head += struct.pack(">I", zlib.crc32(head))
    return bytes(head) + b"".join(s + struct.pack(">I", zlib.crc32(s)) for s in sections)


class _Reader:
    """Bounds-checked reads that report where a file ends too early."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def take(self, size: int) -> bytes:
        end = self.position + size
        if end > len(self.data):
            raise BitstreamError(f"truncated at byte {len(self.data)} (expected at least {end} bytes)")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def unpack(data: bytes, prefix: bool = False) -> tuple[Header, list[bytes]]:
    """Parse and verify the bytes of a .lic file.

    With `prefix`, a version-2 file that ends right after one of its sections' checksums is accepted and only
    its complete sections are returned (fewer than `header.section_lengths` lists)."""
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        if MAGIC.startswith(data):
            raise BitstreamError(f"truncated at byte {len(data)} (inside the magic number)")
        raise BitstreamError("not a .lic file (bad magic number)")
    reader = _Reader(data)
    reader.take(len(MAGIC))
    version, name_length = reader.unpack(">BB")
    if version not in READABLE_VERSIONS:
        raise BitstreamError(f"format version {version}; this licodec reads versions "
                             f"{', '.join(map(str, READABLE_VERSIONS))}")
    name_bytes = reader.take(name_length)
    weights = reader.take(HASH_BYTES)
    if version == 1:
        height, width, channels, quality, count = reader.unpack(">IIBBB")
    else:
        height, width, channels, quality, count = reader.unpack(">IIBHB")
        quality /= QUALITY_STEPS
    lengths = tuple(reader.unpack(f">{count}I")) if count else ()
    if version == 1:
        sections = _version_1_payload(data, reader, lengths)
    else:
        header_end = reader.position
        (stored_crc,) = reader.unpack(">I")
        if zlib.crc32(data[:header_end]) != stored_crc:
            raise BitstreamError("header checksum mismatch: the file is corrupted")
        sections = _sections(data, reader, lengths, prefix)
    try:
        name = name_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("codec name is not ASCII") from None
    if channels not in (1, 3) or height == 0 or width == 0:
        raise BitstreamError(f"invalid image description ({width}x{height}, {channels} channels)")
    if height * width > MAX_PIXELS:
        raise BitstreamError(f"image size {width}x{height} exceeds licodec's limit of {MAX_PIXELS} pixels")
    header = Header(name, weights.hex(), height, width, channels, quality, lengths, version)
    return header, sections


def _sections(data: bytes, reader: _Reader, lengths: tuple[int, ...], prefix: bool) -> list[bytes]:
    sections = []
    for k, length in enumerate(lengths):
        if prefix and reader.position == len(data):
            break  # a progressive file cut after section k - 1
        payload = reader.take(length)
        (stored_crc,) = reader.unpack(">I")
        if zlib.crc32(payload) != stored_crc:
            raise BitstreamError(f"checksum mismatch in section {k}: the file is corrupted")
        sections.append(payload)
    if reader.position < len(data):
        raise BitstreamError(f"{len(data) - reader.position} unexpected bytes after the end of the file")
    return sections


def _version_1_payload(data: bytes, reader: _Reader, lengths: tuple[int, ...]) -> list[bytes]:
    payload_end = reader.position + sum(lengths)
    if payload_end + 4 > len(data):
        raise BitstreamError(f"truncated at byte {len(data)} (the header announces {payload_end + 4} bytes)")
    if payload_end + 4 < len(data):
        raise BitstreamError(f"{len(data) - payload_end - 4} unexpected bytes after the end of the file")
    (stored_crc,) = struct.unpack(">I", data[payload_end:])
    if zlib.crc32(data[:payload_end]) != stored_crc:
        raise BitstreamError("checksum mismatch: the file is corrupted")
    return [reader.take(length) for length in lengths]
