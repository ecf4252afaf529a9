import random

import pytest

from licodec import bitstream
from licodec.errors import BitstreamError


def _sample():
    header = bitstream.Header("balle2018-hyperprior", "0123456789abcdef", 512, 768, 3, 4)
    return header, [b"\x01\x02\x03\x04", b"hello world!"]


def test_pack_unpack_round_trip():
    header, sections = _sample()
    data = bitstream.pack(header, sections)
    parsed, parsed_sections = bitstream.unpack(data)
    assert parsed.codec == header.codec
    assert parsed.weights_hash == header.weights_hash
    assert (parsed.height, parsed.width, parsed.channels, parsed.quality) == (512, 768, 3, 4)
    assert parsed_sections == sections
    assert parsed.section_lengths == (4, 12)


def test_every_truncation_is_reported():
    data = bitstream.pack(*_sample())
    for end in range(len(data)):
        with pytest.raises(BitstreamError):
            bitstream.unpack(data[:end])


def test_not_a_lic_file():
    with pytest.raises(BitstreamError, match="not a .lic file"):
        bitstream.unpack(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)


def test_unknown_version():
    data = bytearray(bitstream.pack(*_sample()))
    data[4] = 99
    with pytest.raises(BitstreamError, match="version 99"):
        bitstream.unpack(bytes(data))


def test_trailing_bytes():
    with pytest.raises(BitstreamError, match="unexpected bytes"):
        bitstream.unpack(bitstream.pack(*_sample()) + b"x")


def test_random_byte_flips_are_caught():
    data = bitstream.pack(*_sample())
    rng = random.Random(0)
    for _ in range(2000):
        damaged = bytearray(data)
        position = rng.randrange(len(damaged))
        damaged[position] ^= rng.randrange(1, 256)
        with pytest.raises(BitstreamError):
            bitstream.unpack(bytes(damaged))


def test_fractional_quality_round_trip_and_grid():
    header = bitstream.Header("balle2018-hyperprior", "0123456789abcdef", 5, 7, 3, 2.5)
    parsed, _ = bitstream.unpack(bitstream.pack(header, [b"abcd"]))
    assert parsed.quality == 2.5
    with pytest.raises(ValueError):
        bitstream.pack(bitstream.Header("x", "0123456789abcdef", 5, 7, 3, 2.3), [])


def test_version_1_files_still_read():
    import struct
    import zlib

    body = (bitstream.MAGIC + struct.pack(">BB", 1, 1) + b"x" + bytes(8) + struct.pack(">IIBBB", 2, 3, 3, 4, 1)
            + struct.pack(">I", 4) + b"abcd")
    parsed, sections = bitstream.unpack(body + struct.pack(">I", zlib.crc32(body)))
    assert (parsed.version, parsed.quality, parsed.height, parsed.width, sections) == (1, 4, 2, 3, [b"abcd"])


def _chunked():
    header = bitstream.Header("balle2018-hyperprior", "0123456789abcdef", 5, 7, 3, 2,
                              chunks={"iCCP": b"profile bytes", "eXIF": b"Exif\x00\x00MM"})
    return header, [b"abcd", b"efgh"]


def test_chunks_round_trip_as_version_3():
    data = bitstream.pack(*_chunked())
    parsed, sections = bitstream.unpack(data)
    assert parsed.version == 3 and sections == [b"abcd", b"efgh"]
    assert dict(parsed.chunks) == {"iCCP": b"profile bytes", "eXIF": b"Exif\x00\x00MM"}


def test_no_chunks_stays_version_2():
    header, sections = _sample()
    data = bitstream.pack(header, sections)
    assert data[4] == 2 and bitstream.unpack(data)[0].chunks == {}


def test_chunked_truncations_and_flips_are_caught():
    data = bitstream.pack(*_chunked())
    for end in range(len(data)):
        with pytest.raises(BitstreamError):
            bitstream.unpack(data[:end])
    rng = random.Random(1)
    for _ in range(500):
        damaged = bytearray(data)
        damaged[rng.randrange(len(damaged))] ^= rng.randrange(1, 256)
        with pytest.raises(BitstreamError):
            bitstream.unpack(bytes(damaged))


def test_unknown_critical_chunk_is_refused_and_ancillary_ignored():
    header = bitstream.Header("x", "0123456789abcdef", 5, 7, 3, 2, chunks={"QQQQ": b"", "zzzz": b"1"})
    with pytest.raises(BitstreamError, match="QQQQ.*newer licodec"):
        bitstream.unpack(bitstream.pack(header, [b"a"]))
    header = bitstream.Header("x", "0123456789abcdef", 5, 7, 3, 2, chunks={"zzzz": b"1"})
    assert bitstream.unpack(bitstream.pack(header, [b"a"]))[0].chunks == {"zzzz": b"1"}


def test_bad_chunk_tags_are_refused_when_packing():
    for tag in ("abc", "ab cd", "a\u00e9cd", "1abc"):
        with pytest.raises(ValueError):
            bitstream.pack(bitstream.Header("x", "0123456789abcdef", 5, 7, 3, 2, chunks={tag: b""}), [])
