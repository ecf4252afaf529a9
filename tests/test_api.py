"""The public API on the shipped default codec, and damaged files through the whole decoder."""

import random

import numpy as np
import pytest
import torch
from PIL import Image

import licodec
from licodec.errors import LicodecError
from tests.conftest import damaged_sections


def _photo(height=40, width=56):
    y, x = np.mgrid[0:height, 0:width]
    array = np.stack([(x * 4) % 256, (y * 5) % 256, ((x + y) * 3) % 256], axis=2).astype(np.uint8)
    return array


@pytest.fixture(scope="module")
def small_file():
    return licodec.compress(_photo(), quality=1)


def test_compress_decompress_pil_numpy_tensor():
    array = _photo()
    data = licodec.compress(array)
    assert data == licodec.compress(Image.fromarray(array))
    assert data == licodec.compress(torch.from_numpy(array).permute(2, 0, 1).float() / 255)
    image = licodec.decompress(data)
    assert image.size == (56, 40) and image.mode == "RGB"


def test_grayscale_round_trip():
    gray = _photo()[..., 0]
    image = licodec.decompress(licodec.compress(gray))
    assert image.mode == "L" and image.size == (56, 40)


def test_unknown_codec_and_quality():
    with pytest.raises(licodec.CodecError, match="unknown codec"):
        licodec.compress(_photo(), codec="nope")
    with pytest.raises(licodec.CodecError, match="quality"):
        licodec.compress(_photo(), quality=99)


def test_codecs_lists_the_schemes():
    assert {"balle2017-factorized", "balle2018-hyperprior", "balle2018-mean-scale"} <= set(licodec.codecs())


def test_every_truncation_of_a_small_file(small_file):
    for end in range(len(small_file)):
        with pytest.raises(LicodecError):
            licodec.decompress(small_file[:end])


def _flip_bytes(data, count, seed):
    rng = random.Random(seed)
    for _ in range(count):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] ^= rng.randrange(1, 256)
        yield bytes(damaged)


def _decodes_or_reports(damaged):
    try:
        image = licodec.decompress(damaged)
    except LicodecError:
        return
    assert isinstance(image, Image.Image)


def test_random_byte_flips(small_file):
    for damaged in _flip_bytes(small_file, 300, seed=0):
        _decodes_or_reports(damaged)


@pytest.mark.slow
def test_thousands_of_random_byte_flips(small_file):
    for damaged in _flip_bytes(small_file, 5000, seed=1):
        _decodes_or_reports(damaged)


def test_damaged_payload_with_a_valid_checksum_decodes_or_reports(small_file):
    """Flips in the coded sections behind recomputed checksums reach the entropy decoder itself."""
    for damaged in damaged_sections(small_file, 300, seed=2):
        _decodes_or_reports(damaged)


def test_header_claiming_a_huge_image_is_refused(small_file):
    import struct
    import zlib

    from licodec.bitstream import unpack

    header, sections = unpack(small_file)
    header_end = len(small_file) - sum(len(s) + 4 for s in sections) - 4
    name_end = 6 + len(header.codec) + 8
    damaged = bytearray(small_file[:header_end])
    damaged[name_end : name_end + 8] = struct.pack(">II", 60000, 60000)
    damaged += struct.pack(">I", zlib.crc32(damaged)) + small_file[header_end + 4 :]
    with pytest.raises(LicodecError, match="limit"):
        licodec.decompress(bytes(damaged))


def test_image_over_the_size_limit_is_refused_before_coding(monkeypatch):
    from licodec import bitstream

    monkeypatch.setattr(bitstream, "MAX_PIXELS", 100)
    with pytest.raises(licodec.ImageError, match="limit"):
        licodec.compress(_photo())


def test_bf16_transforms_write_files_that_decode_either_way():
    from licodec.eval.metrics import psnr
    from licodec.io import read_image

    array = _photo(64, 96)
    x, _ = read_image(array)
    fast = licodec.compress(array, quality=3, precision="bf16")
    for precision in ("fp32", "bf16"):
        image = licodec.decompress(fast, precision=precision)
        back, _ = read_image(image)
        reference, _ = read_image(licodec.decompress(licodec.compress(array, quality=3)))
        assert abs(psnr(x, back) - psnr(x, reference)) < 0.5
    with pytest.raises(licodec.CodecError, match="precision"):
        licodec.compress(array, precision="fp8")


def test_bad_arguments_are_licodec_errors():
    x = torch.rand(1, 3, 16, 16)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(licodec.ImageError, match="NaN"):
        licodec.compress(x)
    for target in ("x", float("nan"), None.__class__, True):
        with pytest.raises(LicodecError, match="target_bpp"):
            licodec.compress(_photo(), target_bpp=target)
    with pytest.raises(LicodecError, match="target_psnr"):
        licodec.compress(_photo(), target_psnr="high")
    with pytest.raises(LicodecError, match="codec"):
        licodec.compress(_photo(), codec=3)
    with pytest.raises(LicodecError, match="max_pixels"):
        licodec.compress(_photo(), max_pixels="many")
    with pytest.raises(LicodecError, match="bytes"):
        licodec.decompress("not bytes")
    with pytest.raises(LicodecError, match="expected an image"):
        licodec.compress(12)


def test_pixel_limit(small_file):
    with pytest.raises(licodec.ResourceError, match="--max-pixels"):
        licodec.decompress(small_file, max_pixels=100)
    with pytest.raises(licodec.ResourceError):
        licodec.compress(_photo(), max_pixels=100)


def test_metadata_round_trip_and_strip():
    from tests.test_io import _tagged_jpeg

    data, icc, xmp = _tagged_jpeg(orientation=8)
    kept = licodec.compress(data, quality=1)
    image = licodec.decompress(kept)
    assert image.size == (40, 64)  # orientation 8: turned back upright
    assert image.info["icc_profile"] == icc and image.info["xmp"] == xmp
    exif = Image.Exif()
    exif.load(image.info["exif"])
    assert exif.get(0x010F) == "TestCam" and exif.get(0x0112, 1) == 1
    stripped = licodec.compress(data, quality=1, strip=True)
    assert len(stripped) < len(kept) and not licodec.decompress(stripped).info
    from licodec.bitstream import unpack

    assert unpack(kept)[0].version == 3 and unpack(stripped)[0].version == 2
