"""agustsson2019-gc: bottlenecks, fixed-length or entropy-coded symbols, selective generation, damaged files."""

import numpy as np
import pytest
import torch

import licodec.api
from licodec.api import compress_tensor
from licodec.errors import CodecError
from licodec.registry import codec_class
from licodec.train.losses import discriminator_loss, generative
from tests.conftest import assert_damage_is_handled


@pytest.fixture
def codec():
    torch.manual_seed(0)
    codec = codec_class("agustsson2019-gc")(widths=(8, 8, 8, 8, 16), residual_blocks=1)
    codec.update()
    codec.eval()
    codec.weights_hash = "00" * 8
    return codec


def _expected(codec, x, quality, keep=None):
    with torch.no_grad():
        w = codec.transform(codec.analysis, codec.layout(codec.pad(x)) * 2 - 1)
        symbols = codec.quantizer.indices(w)
        C = codec.config["bottlenecks"][quality - 1]
        w_hat = codec.quantizer.dequantize(symbols)
        w_hat[:, C:] = 0
        keep = torch.ones_like(w_hat[:, :1]) if keep is None else keep
        w_hat = w_hat * keep
        return codec.generate(w_hat, keep)[..., : x.shape[-2], : x.shape[-1]].clamp(0, 1)


@pytest.mark.parametrize("quality", [1, 2, 3, 4])
def test_round_trip_and_rate_per_bottleneck(codec, quality):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 50, 70)
    encoded = codec.compress(x, quality)
    assert torch.allclose(codec.decompress(encoded), _expected(codec, x, quality), atol=1e-6)
    C = codec.config["bottlenecks"][quality - 1]
    fixed_length_bits = C * 4 * 5 * np.log2(5)  # C channels at 64/16 x 80/16 positions, log2 5 bits each
    assert 8 * (len(encoded.sections[1]) - 1) <= fixed_length_bits + 64


def test_the_smaller_coding_of_the_symbols_is_kept(codec):
    rng = np.random.default_rng(0)
    uniform_like = rng.integers(0, 5, (4, 200))
    skewed = np.where(rng.random((4, 200)) < 0.9, 0, rng.integers(1, 5, (4, 200)))
    with torch.no_grad():
        codec.symbol_priors.logits.copy_(torch.tensor([[6.0, 0, 0, 0, 0]]).repeat(16, 1))
    codec.update()
    assert codec.symbol_priors.encode_rows(skewed)[0] == 1
    assert codec.symbol_priors.encode_rows(uniform_like)[0] == 0


def test_selective_generation_codes_only_the_preserved_blocks(codec):
    torch.manual_seed(2)
    x = torch.rand(1, 3, 64, 96)
    preserve = torch.zeros(64, 96, dtype=torch.bool)
    preserve[:16, :40] = True  # touches 1 x 3 latent positions
    full = codec.compress(x, 4)
    selective = codec.compress(x, 4, preserve=preserve)
    assert len(selective.sections[1]) < len(full.sections[1])
    keep = torch.zeros(1, 1, 4, 6)
    keep[..., :1, :3] = 1
    assert torch.allclose(codec.decompress(selective), _expected(codec, x, 4, keep), atol=1e-6)


def test_qualities_are_bottlenecks(codec):
    with pytest.raises(CodecError, match="bottlenecks"):
        codec.compress(torch.rand(1, 3, 16, 16), 1.5)


def test_training_pass_and_gan_losses(codec):
    codec.train()
    x = torch.rand(2, 3, 64, 64)
    output = codec(x, torch.tensor([1, 4]))
    discriminator = codec.build_discriminator()
    terms = generative(codec, output, x, None, "mse", discriminator)
    terms["loss"].backward()
    assert codec.analysis[0][0].weight.grad.abs().sum() > 0
    assert codec.quantizer.centers.grad.abs().sum() > 0
    d_loss = discriminator_loss(x, output.x_hat, discriminator)
    assert d_loss.item() > 0
    codec.eval()


def test_damaged_files(codec, monkeypatch):
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    mask = torch.zeros(40, 56)
    mask[:10] = 1
    for data in (compress_tensor(torch.rand(1, 3, 40, 56), 3, codec, 4),
                 compress_tensor(torch.rand(1, 3, 40, 56), 3, codec, 2, preserve=mask)):
        assert_damage_is_handled(data, 40, 5)


def test_channel_norm_is_local_and_the_default_stays_the_papers():
    """Channel norm works at each position alone (an image's colour survives it, and crops and full images see
    the same statistics); instance norm, the paper's and the default, mixes the whole image."""
    from licodec.codecs.agustsson2019 import NORMS

    torch.manual_seed(2)
    x = torch.randn(1, 6, 8, 8)
    changed = x.clone()
    changed[..., 4:, :] += 3.0  # the bottom half only
    channel = NORMS["channel"](6)
    assert torch.allclose(channel(x)[..., :4, :], channel(changed)[..., :4, :])
    instance = NORMS["instance"](6)
    assert not torch.allclose(instance(x)[..., :4, :], instance(changed)[..., :4, :])
    assert codec_class("agustsson2019-gc")(widths=(8, 8, 8, 8, 16), residual_blocks=1).config["norm"] == "instance"
    with pytest.raises(ValueError, match="norm"):
        codec_class("agustsson2019-gc")(widths=(8, 8, 8, 8, 16), residual_blocks=1, norm="batch")


def test_channel_norm_model_round_trips():
    torch.manual_seed(3)
    codec = codec_class("agustsson2019-gc")(widths=(8, 8, 8, 8, 16), residual_blocks=1, norm="channel")
    codec.update()
    codec.eval()
    x = torch.rand(1, 3, 40, 56)
    encoded = codec.compress(x, 2)
    assert torch.allclose(codec.decompress(encoded), _expected(codec, x, 2), atol=1e-6)
