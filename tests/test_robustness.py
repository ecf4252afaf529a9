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
