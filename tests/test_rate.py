"""Rate control on the shipped default codec: continuous qualities and searches for a target bpp or PSNR."""

from pathlib import Path

import pytest
import torch

import licodec
import licodec.api
from licodec.bitstream import unpack
from licodec.errors import CodecError
from licodec.eval.metrics import psnr
from licodec.io import read_image
from licodec.rate import reach

SAMPLE = Path(licodec.__file__).parent / "samples" / "kodim23-crop.png"


@pytest.fixture(scope="module")
def image():
    x, _ = read_image(SAMPLE)
    return x


@pytest.fixture(scope="module")
def codec():
    return licodec.load()


def _bpp(data, x):
    return 8 * len(data) / (x.shape[-2] * x.shape[-1])


def test_fractional_qualities_fall_between_the_trained_levels(image, codec):
    rates = [_bpp(licodec.api.compress_tensor(image, 3, codec, q), image) for q in (2, 2.25, 2.5, 2.75, 3)]
    assert rates == sorted(rates) and rates[0] < rates[2] < rates[4]
    data = licodec.api.compress_tensor(image, 3, codec, 2.3)
    assert unpack(data)[0].quality == round(2.3 * 2048) / 2048
    assert licodec.decompress(data).size == (512, 384)


def test_integer_quality_as_a_float_gives_the_same_file(image, codec):
    assert licodec.api.compress_tensor(image, 3, codec, 3) == licodec.api.compress_tensor(image, 3, codec, 3.0)


@pytest.mark.parametrize("target", [0.2, 0.37, 0.7])
def test_target_bpp_is_reached_from_below(image, codec, target):
    reached = reach(codec, image, target, "bpp", file_size=lambda e: len(licodec.api.pack(codec, e, 3)))
    data = licodec.api.pack(codec, reached.encoded, 3)
    assert _bpp(data, image) == reached.value
    assert target * 0.97 <= reached.value <= target
    assert reached.evaluations <= 12


@pytest.mark.parametrize("target", [31.0, 34.2])
def test_target_psnr_is_reached_from_above(image, codec, target):
    reached = reach(codec, image, target, "psnr")
    decoded = codec.decompress(reached.encoded)
    assert reached.value == psnr(image, decoded)
    assert target <= reached.value <= target + 0.1
    assert reached.evaluations <= 12


def test_unreachable_targets_are_clear_errors(image, codec):
    with pytest.raises(CodecError, match="below this codec's lowest rate"):
        reach(codec, image, 0.001, "bpp")
    with pytest.raises(CodecError, match="above what this codec reaches"):
        reach(codec, image, 80.0, "psnr")
    with pytest.raises(CodecError):
        reach(codec, image, -1, "bpp")
    assert reach(codec, image, 50.0, "bpp").quality == codec.qualities  # a generous budget: the best quality


def test_public_api_with_a_target(image):
    array = (image[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    data = licodec.compress(array, target_bpp=0.5)
    assert 0.5 * 0.97 <= _bpp(data, image) <= 0.5
    with pytest.raises(CodecError):
        licodec.compress(array, target_bpp=0.5, target_psnr=30)
