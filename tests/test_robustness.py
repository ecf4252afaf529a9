"""Hostile and unlucky inputs across every shipped codec: forged sizes (decompression bombs), files relabelled
as another codec, and pixels that must not depend on the number of threads."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from licodec import bitstream
from licodec.api import compress_tensor, decompress_tensor, load
from licodec.errors import BitstreamError, LicodecError, ResourceError
from licodec.io import read_image
from licodec.zoo import index
from tests.conftest import kodak_image

SHIPPED = sorted(index())
SAMPLE = "licodec/samples/kodim23-crop.png"


def _small_file(name: str, quality: int = 1, size: int = 64) -> bytes:
    x, _ = read_image(SAMPLE)
    return compress_tensor(x[..., :size, :size], 3, load(name), quality)


def _with_header(data: bytes, **changes) -> bytes:
    """`data` with header fields replaced and every checksum recomputed, as a forger would."""
    header, sections = bitstream.unpack(data)
    return bitstream.pack(dataclasses.replace(header, **changes), sections)


@pytest.mark.parametrize("name", SHIPPED)
def test_forged_size_is_refused_before_decoding(name):
    codec = load(name)
    for quality in (1, codec.qualities):
        forged = _with_header(_small_file(name, quality), height=4096, width=4096)
        start = time.perf_counter()
        with pytest.raises(BitstreamError, match="damaged or forged"):
            decompress_tensor(forged)
        assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("name", SHIPPED)
def test_floor_admits_flat_images(name):
    # The cheapest images there are: every codec's floor must stay below what a flat image really costs.
    codec = load(name)
    x = torch.full((1, 3, 256, 320), 0.5)
    data = compress_tensor(x, 3, codec, 1)
    assert decompress_tensor(data)[0].shape == x.shape


def test_pixel_limit_is_checked_on_both_sides():
    data = _small_file("balle2018-hyperprior")
    with pytest.raises(ResourceError, match="--max-pixels"):
        decompress_tensor(data, max_pixels=64 * 63)
    assert decompress_tensor(data, max_pixels=64 * 64)[0].shape[-2:] == (64, 64)
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ResourceError):
        compress_tensor(x, 3, load("balle2018-hyperprior"), 1, max_pixels=4000)
    with pytest.raises(LicodecError):
        decompress_tensor(data, max_pixels=0)


@pytest.mark.parametrize(("name", "quality"), [("rippel2017", 2), ("toderici2017", 4)])
def test_shipped_weights_decode_the_same_pixels_at_one_and_two_threads(name, quality):
    # rippel2017 gave one pixel a level apart on this crop before its upsampling stopped depending on threads.
    x, _ = read_image(kodak_image(1))
    data = compress_tensor(x[..., :256, :384], 3, load(name), quality)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = decompress_tensor(data)[0]
        torch.set_num_threads(2)
        two = decompress_tensor(data)[0]
    finally:
        torch.set_num_threads(saved)
    assert torch.equal(torch.round(one * 255), torch.round(two * 255))


def _relabelled(data: bytes, name: str) -> bytes:
    """`data` (another codec's file) claiming to be `name`'s, with the installed weights' hash, a quality `name`
    has, and valid checksums: the damage reaches `name`'s decoder."""
    codec = load(name)
    header, _ = bitstream.unpack(data)
    quality = min(max(1, round(header.quality)), codec.qualities)
    return _with_header(data, codec=name, weights_hash=codec.weights_hash, quality=quality)


def _decodes_or_reports(data: bytes) -> None:
    try:
        x_hat, header = decompress_tensor(data)
    except LicodecError:
        return
    assert x_hat.shape[-2:] == (header.height, header.width)
    assert bool(torch.isfinite(x_hat).all()) and 0 <= float(x_hat.min()) and float(x_hat.max()) <= 1


@pytest.fixture(scope="module")
def files():
    """A small file of every shipped codec, at its lowest and highest quality."""
    return {name: [_small_file(name, q, size=48) for q in (1, load(name).qualities)] for name in SHIPPED}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_codec_file_relabelled_as_the_default_and_back(files, name):
    for data in files[name]:
        _decodes_or_reports(_relabelled(data, "balle2018-hyperprior"))
    for data in files["balle2018-hyperprior"]:
        _decodes_or_reports(_relabelled(data, name))


@pytest.mark.slow
@pytest.mark.parametrize("target", SHIPPED)
def test_every_codec_file_relabelled_as_every_other_codec(files, target):
    for source in SHIPPED:
        for data in files[source]:
            _decodes_or_reports(_relabelled(data, target))


@pytest.mark.parametrize("count", [0, 1, 3, 4])
def test_a_wrong_number_of_sections_decodes_or_reports(files, count):
    # agustsson2019-gc raised ValueError on 0, 1 or 4 sections; no sections at all is always an error.
    for name in ("agustsson2019-gc", "balle2018-hyperprior", "rippel2017", "mentzer2018-3dcnn"):
        header, sections = bitstream.unpack(files[name][0])
        changed = bitstream.pack(header, (sections * 4)[:count])
        if count == 0:
            with pytest.raises(LicodecError):
                decompress_tensor(changed)
        else:
            _decodes_or_reports(changed)


def test_running_out_of_memory_is_a_resource_error(files, monkeypatch):
    codec = load("balle2018-hyperprior")

    def allocate(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 68719476736 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(codec, "decompress", allocate)
    with pytest.raises(ResourceError, match="out of memory"):
        decompress_tensor(files["balle2018-hyperprior"][0])
    monkeypatch.setattr(codec, "compress", allocate)
    with pytest.raises(ResourceError, match="out of memory"):
        compress_tensor(torch.rand(1, 3, 32, 32), 3, codec, 1)
