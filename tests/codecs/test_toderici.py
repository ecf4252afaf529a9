"""The recurrent codecs: progressive files, prefix decoding, exact context coding, damaged files."""

import pytest
import torch

import licodec.api
from licodec.api import compress_tensor, decompress_tensor
from licodec.codecs.base import Encoded
from licodec.errors import CodecError, LicodecError
from licodec.registry import codec_class
from licodec.train.losses import residual
from tests.conftest import assert_damage_is_handled, sections_with_threads

NAMES = ["toderici2017", "toderici2016"]


def _small(name, **config):
    torch.manual_seed(0)
    codec = codec_class(name)(iterations=4, encoder_widths=(8, 16, 16, 16), decoder_widths=(16, 16, 16, 16),
                              **config)
    codec.update()
    codec.eval()
    codec.weights_hash = "00" * 8
    return codec


@pytest.fixture(params=NAMES)
def codec(request):
    return _small(request.param)


def _image(height=40, width=72, seed=1):
    torch.manual_seed(seed)
    return torch.rand(1, 3, height, width)


def _expected(codec, x, iterations):
    with torch.no_grad():
        if codec.name == "toderici2016":
            tiles, grid = codec.patches(x)
            _, outputs = codec.iterate(tiles, iterations)
            out = codec.assemble(outputs[-1], grid)
        else:
            _, outputs = codec.iterate(codec.pad(x), iterations)
            out = outputs[-1]
    return out[..., : x.shape[-2], : x.shape[-1]].clamp(0, 1)


def test_every_prefix_decodes_to_that_iteration(codec):
    x = _image()
    encoded = codec.compress(x, 4)
    assert len(encoded.sections) == 4
    for k in range(1, 5):
        prefix = Encoded(encoded.sections[:k], 40, 72, 4)
        assert torch.allclose(codec.decompress(prefix), _expected(codec, x, k), atol=1e-5)


def test_rate_before_entropy_coding_is_bits_per_block(codec):
    x = _image(64, 96)
    encoded = codec.compress(x, 2)
    raw_bits = 32 * (64 // 16) * (96 // 16)  # 32 codes per 16x16 block and iteration
    if codec.name == "toderici2016":
        assert all(len(s) == raw_bits // 8 for s in encoded.sections)
    else:
        assert all(4 <= len(s) for s in encoded.sections)


@pytest.mark.parametrize("cell,reconstruction", [("lstm", "one-shot"), ("gru", "additive"), ("gru", "one-shot")])
def test_variants_round_trip(cell, reconstruction):
    codec = _small("toderici2017", cell=cell, reconstruction=reconstruction)
    x = _image(33, 20)
    encoded = codec.compress(x, 3)
    assert torch.allclose(codec.decompress(encoded), _expected(codec, x, 3), atol=1e-5)


def test_fully_connected_variant_of_2016():
    codec = _small("toderici2016", network="dense")
    x = _image(40, 70)
    encoded = codec.compress(x, 3)
    assert all(len(s) == 6 * 128 // 8 for s in encoded.sections)  # 2 x 3 patches, 128 bits each
    assert torch.allclose(codec.decompress(encoded), _expected(codec, x, 3), atol=1e-5)


def test_context_coded_bits_identical_with_one_and_two_threads():
    codec = _small("toderici2017")
    x = _image(48, 64)
    compress = lambda: codec.compress(x, 2)  # noqa: E731
    assert sections_with_threads(compress, 1) == sections_with_threads(compress, 2)


def test_training_pass_trains_the_networks_and_the_context_model():
    codec = _small("toderici2017").train()
    x = torch.rand(2, 3, 32, 32)
    output = codec(x, torch.tensor([1, 2]))
    terms = residual(codec, output, x, None, "mse")
    terms["loss"].backward()
    assert codec.encoder.stem.weight.grad.abs().sum() > 0
    assert codec.decoder.out.weight.grad.abs().sum() > 0
    assert codec.context.layers[0].weight.grad.abs().sum() > 0


def test_a_frozen_network_gives_the_context_model_the_bits_the_coder_codes():
    codec = _small("toderici2017")
    x = torch.rand(1, 3, 32, 32)
    codec.train()
    assert codec.encoder.training  # trained: stochastic bits
    for parameter in [*codec.encoder.parameters(), *codec.decoder.parameters()]:
        parameter.requires_grad_(False)
    codec.train()
    assert codec.context.training and not codec.encoder.training and not codec.decoder.training
    codes, _ = codec.iterate(x, 2)
    assert all(torch.equal(a, b) for a, b in zip(codes, codec.iterate(x, 2)[0], strict=True))
    assert torch.equal(codes[0], codec.eval().iterate(x, 1)[0][0])  # the signs the coder codes


def test_qualities_are_iterations(codec):
    with pytest.raises(CodecError):
        codec.compress(_image(), 2.5)
    with pytest.raises(CodecError):
        codec.compress(_image(), 5)


@pytest.fixture(params=NAMES)
def lic_file(request, monkeypatch):
    codec = _small(request.param)
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    return codec, compress_tensor(_image(), 3, codec, 4)


def test_truncated_at_an_iteration_boundary_still_decodes(lic_file):
    from licodec.bitstream import unpack

    codec, data = lic_file
    header, sections = unpack(data)
    header_end = len(data) - sum(len(s) + 4 for s in sections)
    full, _ = decompress_tensor(data)
    for k in range(1, 4):
        cut = data[: header_end + sum(len(s) + 4 for s in sections[:k])]
        x_hat, _ = decompress_tensor(cut)
        assert torch.allclose(x_hat, _expected(codec, _image(), k), atol=1e-5)
        assert torch.equal(decompress_tensor(data, iterations=k)[0], x_hat)
    assert torch.equal(decompress_tensor(data, iterations=99)[0], full)
    with pytest.raises(LicodecError):
        decompress_tensor(data[: header_end + 3])  # inside the first iteration
    with pytest.raises(LicodecError):
        decompress_tensor(data[:header_end])  # no iteration at all


def test_damaged_files_decode_or_report(lic_file):
    _, data = lic_file
    assert_damage_is_handled(data, 12, 3)
