"""Round trips of the Ballé codecs through real bytes, with small random models (fast) and shipped ones."""

import numpy as np
import pytest
import torch

from licodec.api import compress_tensor
from licodec.codecs.base import Encoded
from licodec.quant import quantize
from tests.conftest import small_codec


def _image(height, width, seed=0):
    torch.manual_seed(seed)
    base = torch.rand(1, 3, max(1, height // 8 + 1), max(1, width // 8 + 1))
    x = torch.nn.functional.interpolate(base, size=(height, width), mode="bilinear", align_corners=False)
    return torch.round(x.clamp(0, 1) * 255) / 255


def _quantized_reconstruction(codec, x, quality):
    """What the decoder must output, computed on the encoder's side without any bytes."""
    level = quality - 1
    with torch.no_grad():
        y = codec.analysis(codec.pad(x)) * codec.gain.gain(torch.tensor([level]))
        entropy = codec.entropy
        if hasattr(entropy, "hyper_analysis"):
            z = entropy.hyper_analysis(entropy.hyper_input(y))
            z_symbols, _ = entropy.hyper_densities.symbols(level, z)
            _, means = entropy.parameters_from_side(z_symbols, level)
            y_hat = torch.round(y.double() - (0 if means is None else means)) + (0 if means is None else means)
        else:
            y_hat = quantize(y, "round", entropy.densities[level].medians.view(1, -1, 1, 1))
        x_hat = codec.synthesis(y_hat.float() * codec.gain.inverse_gain(torch.tensor([level])))
    return x_hat[..., : x.shape[-2], : x.shape[-1]].clamp(0, 1)


@pytest.mark.parametrize("size", [(1, 1), (65, 33), (31, 2000), (64, 64)])
def test_round_trip_equals_quantized_reconstruction(any_small_codec, size):
    codec = any_small_codec
    x = _image(*size)
    for quality in (1, 2):
        encoded = codec.compress(x, quality)
        decoded = codec.decompress(Encoded(encoded.sections, *size, quality))
        assert decoded.shape == x.shape
        assert torch.equal(decoded, _quantized_reconstruction(codec, x, quality))


def test_bytes_identical_with_one_and_two_threads(any_small_codec):
    codec = any_small_codec
    x = _image(130, 200, seed=3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = compress_tensor(x, 3, codec, 2)
        torch.set_num_threads(2)
        two = compress_tensor(x, 3, codec, 2)
    finally:
        torch.set_num_threads(threads)
    assert one == two


def test_forward_gives_likelihoods_in_unit_interval(any_small_codec):
    codec = any_small_codec.train()
    x = _image(64, 64)
    out = codec(torch.cat([x, x]), torch.tensor([1, 2]))
    assert out.x_hat.shape == (2, 3, 64, 64)
    for likelihood in out.likelihoods.values():
        assert likelihood.min() > 0 and likelihood.max() <= 1
    loss = out.bits().mean() + ((out.x_hat - x) ** 2).mean()
    loss.backward()
    assert all(p.grad is not None for n, p in codec.named_parameters() if "analysis" in n)


def test_estimated_bits_match_the_file_for_a_trained_model():
    """Real file size within 1% (plus the header) of the model's own estimate, on a Kodak image."""
    from licodec import zoo
    from tests.conftest import kodak_image

    if "balle2018-hyperprior" not in zoo.installed():
        pytest.skip("no shipped weights")
    from licodec.io import read_image

    codec = zoo.load("balle2018-hyperprior")
    x, _ = read_image(kodak_image(4))
    for quality in (1, codec.qualities):
        encoded = codec.compress(x, quality)
        with torch.no_grad():
            estimate = codec(codec.pad(x), quality).bits().item()
        actual = 8 * sum(len(s) for s in encoded.sections)
        assert abs(actual - estimate) <= 0.01 * estimate + 64, (quality, actual, estimate)


def test_decoder_and_encoder_agree_on_table_indices_for_extreme_latents():
    codec = small_codec("balle2018-mean-scale")
    z = np.full((1, 16, 1, 1), 10**5, dtype=np.int64)
    index, means = codec.entropy.parameters_from_side(z, 0)
    assert index.min() >= 0 and index.max() < codec.entropy.gaussian.tables.count
    assert torch.isfinite(means).all()


@pytest.mark.slow
def test_large_image_round_trip_with_the_shipped_model():
    from licodec import zoo

    codec = zoo.load("balle2018-hyperprior")
    x = _image(1536, 2048, seed=5)
    encoded = codec.compress(x, 2)
    decoded = codec.decompress(Encoded(encoded.sections, 1536, 2048, 2))
    assert torch.equal(decoded, _quantized_reconstruction(codec, x, 2))


@pytest.mark.parametrize("size", [(1, 1), (65, 33), (31, 2000)])
def test_shipped_model_round_trip_odd_sizes(size):
    from licodec import zoo

    codec = zoo.load("balle2018-hyperprior")
    x = _image(*size, seed=7)
    encoded = codec.compress(x, 3)
    decoded = codec.decompress(Encoded(encoded.sections, *size, 3))
    assert torch.equal(decoded, _quantized_reconstruction(codec, x, 3))
