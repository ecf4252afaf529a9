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

Format version 3 is version 2 with a list of chunks between the section lengths and the header checksum:

    chunks         1  c
    then, for each chunk:
    tag            4  ASCII, e.g. b"iCCP"
    length         4  m, at most MAX_CHUNK_BYTES
    data           m

A file is written as version 3 only when it has chunks, so files without them stay byte-identical to version 2.
As in PNG, a tag whose first letter is lowercase is ancillary (metadata a decoder may ignore: "iCCP" the ICC
profile, "eXIF" the EXIF block, "xMP_" the XMP packet); an uppercase first letter marks a critical chunk that
changes how the sections decode, and a reader that does not implement it (`CRITICAL_CHUNKS`) refuses the file
rather than decode it wrongly.

Version 1 (still read): the same header with a 1-byte integer quality and no header checksum, the payload, then
one CRC32 of everything.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from licodec.errors import BitstreamError

MAGIC = b"\x89LIC"
FORMAT_VERSION = 2  # written when a file has no chunks
CHUNKED_VERSION = 3  # written when it has
READABLE_VERSIONS = (1, 2, 3)
MAX_CHUNK_BYTES = 1 << 24
# The ancillary chunks of an image's metadata, by the `PIL.Image.info` key that holds the same bytes.
METADATA_CHUNKS = {"icc_profile": "iCCP", "exif": "eXIF", "xmp": "xMP_"}
CRITICAL_CHUNKS: frozenset[str] = frozenset({"TILE"})  # critical chunk tags this licodec decodes (licodec.tiling)
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
    chunks: Mapping[str, bytes] = field(default_factory=dict)  # tag -> data (format version 3)


def pack(header: Header, sections: list[bytes]) -> bytes:
    """Serialize a header and its sections into the bytes of a .lic file (version 3 with chunks, else 2)."""
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
    version = CHUNKED_VERSION if header.chunks else FORMAT_VERSION
    head += struct.pack(">BB", version, len(name)) + name + weights
    head += struct.pack(">IIBHB", header.height, header.width, header.channels, quality, len(sections))
    head += b"".join(struct.pack(">I", len(s)) for s in sections)
    if header.chunks:
        head += _pack_chunks(header.chunks)
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
    chunks = _read_chunks(reader) if version >= CHUNKED_VERSION else {}
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
    unknown = sorted(tag for tag in chunks if tag[0].isupper() and tag not in CRITICAL_CHUNKS)
    if unknown:
        raise BitstreamError(f"the file uses {', '.join(unknown)}, which this licodec cannot decode; "
                             "a newer licodec can")
    header = Header(name, weights.hex(), height, width, channels, quality, lengths, version, chunks)
    return header, sections


def _valid_tag(tag: bytes) -> bool:
    return len(tag) == 4 and all(c == 0x5F or 0x30 <= c <= 0x39 or 0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A
                                 for c in tag) and chr(tag[0]).isalpha()


def _pack_chunks(chunks: Mapping[str, bytes]) -> bytes:
    if len(chunks) > 255:
        raise ValueError("at most 255 chunks")
    out = bytearray(struct.pack(">B", len(chunks)))
    for tag, data in chunks.items():
        encoded = tag.encode("ascii") if tag.isascii() else b""
        if not _valid_tag(encoded) or len(data) > MAX_CHUNK_BYTES:
            raise ValueError(f"chunk {tag!r}: the tag must be 4 letters, digits or _, the data at most "
                             f"{MAX_CHUNK_BYTES} bytes")
        out += encoded + struct.pack(">I", len(data)) + bytes(data)
    return bytes(out)


def _read_chunks(reader: _Reader) -> dict[str, bytes]:
    (count,) = reader.unpack(">B")
    chunks = {}
    for _ in range(count):
        tag = reader.take(4)
        (length,) = reader.unpack(">I")
        if not _valid_tag(tag) or length > MAX_CHUNK_BYTES:
            raise BitstreamError("invalid chunk in the header: the file is corrupted")
        name = tag.decode("ascii")
        if name in chunks:
            raise BitstreamError(f"chunk {name} appears twice: the file is corrupted")
        chunks[name] = reader.take(length)
    return chunks


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
