"""mentzer2018-3dcnn: exact round trips through the integer 3D context model, masks, threads, damaged files."""


import pytest
import torch

import licodec.api
from licodec.api import compress_tensor
from licodec.train.losses import bits_per_pixel, distortion, rd_loss
from tests.conftest import assert_damage_is_handled, sections_with_threads, small_codec


@pytest.fixture
def codec():
    return small_codec("mentzer2018-3dcnn")


def _image(height, width, seed=0):
    torch.manual_seed(seed)
    return torch.rand(1, 3, height, width)


def _encoder_view(codec, x, quality):
    """Counts, symbols and the decoder's expected output, computed on the encoder's side."""
    level = quality - 1
    M = codec.config["M"]
    with torch.no_grad():
        raw = codec.transform(codec.analysis, codec.layout(codec.pad(x)))
        _, count = codec.importance(raw, torch.tensor([level]))
        symbols = codec.quantizer.indices(raw[:, :M] * codec.gain.gain(torch.tensor([level])))[0]
    k = torch.arange(M).view(-1, 1, 1)
    return count[0], torch.where(k < count[0], symbols, -1)


@pytest.mark.parametrize("size", [(1, 1), (40, 72), (33, 9)])
def test_round_trip_is_exact(codec, size):
    x = _image(*size)
    encoded = codec.compress(x, 2)
    count, symbols = _encoder_view(codec, x, 2)
    with torch.no_grad():
        expected = codec.reconstruct(codec._latent(symbols, 1), 1, encoded)
        assert torch.equal(codec.decompress(encoded), expected)


def test_masked_channels_cost_nothing_and_counts_vary(codec):
    with torch.no_grad():
        codec.importance_offset.copy_(torch.tensor([-2.0, 4.0]))
    x = _image(48, 48)
    low, high = codec.compress(x, 1), codec.compress(x, 2)
    count_low, _ = _encoder_view(codec, x, 1)
    count_high, _ = _encoder_view(codec, x, 2)
    assert count_low.float().mean() < count_high.float().mean()
    assert len(low.sections[1]) < len(high.sections[1])


def test_the_estimate_matches_the_file(codec):
    x = _image(64, 96)
    encoded = codec.compress(x, 2)
    with torch.no_grad():
        bits = float(codec(codec.pad(x), torch.tensor([2])).bits())
    real = 8 * sum(len(s) for s in encoded.sections)
    assert abs(real - bits) <= 0.05 * bits + 64


def test_bytes_identical_with_one_and_two_threads(codec):
    x = _image(48, 64)
    compress = lambda: codec.compress(x, 1)  # noqa: E731
    assert sections_with_threads(compress, 1) == sections_with_threads(compress, 2)


def test_training_reaches_every_part(codec):
    codec.train()
    output = codec(_image(32, 32).repeat(2, 1, 1, 1), torch.tensor([1, 2]))
    (output.bits().sum() + output.aux["penalty"].sum() + ((output.x_hat - 0.5) ** 2).sum()).backward()
    for parameter in (codec.analysis[0].weight, codec.context.layers[0].weight, codec.quantizer.centers,
                      codec.counts.logits, codec.synthesis[0].weight):
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0
    codec.eval()


def test_damaged_files_decode_or_report(codec, monkeypatch):
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    data = compress_tensor(_image(24, 40), 3, codec, 1)
    assert_damage_is_handled(data, 40, 0)


def test_the_importance_map_starts_open(codec):
    """Channels closed early never reopen (the soft mask's gradient stops at its edge): training starts open."""
    M = codec.config["M"]
    with torch.no_grad():
        raw = codec.transform(codec.analysis, _image(32, 32))
        _, count = codec.importance(raw, torch.tensor([0]))
    assert count.float().mean() > 0.9 * M


def test_open_steps_code_every_channel_then_the_map_decides():
    codec = small_codec("mentzer2018-3dcnn", open_steps=1).train()
    with torch.no_grad():
        codec.importance_offset.fill_(-8.0)  # a map that closes nearly everything
    x = _image(32, 32)
    first = codec(x, torch.tensor([1]))  # warming up: every channel coded, the counts cost nothing
    codec.after_step(first, {})  # the training loop's step count
    second = codec(x, torch.tensor([1]))
    codec.after_step(second, {})
    assert torch.all(first.likelihoods["counts"] == 1)
    assert int(codec.steps) == 2
    assert (first.likelihoods["y"] < 1).float().mean() > (second.likelihoods["y"] < 1).float().mean()


def test_rate_targets_hold_each_levels_rate_from_both_sides():
    """With `target_bpp`, the rate term is each sample's distance to its level's target."""
    codec = small_codec("mentzer2018-3dcnn", target_bpp=[0.0, 1e6]).train()
    x = _image(32, 32).expand(2, -1, -1, -1)
    quality = torch.tensor([0, 1])
    output = codec(x, quality + 1)
    assert torch.equal(output.aux["rate_target"], torch.tensor([0.0, 1e6]))
    bpp, dist = bits_per_pixel(output, x), distortion(output.x_hat, x, "mse")
    lmbda = torch.tensor(codec.lmbdas)[quality]
    expected = (bpp[0] + lmbda[0] * dist[0] + (1e6 - bpp[1]) + lmbda[1] * dist[1]) / 2  # level 2: far under it
    assert torch.allclose(rd_loss(output, x, lmbda, "mse")["loss"], expected)


def test_each_level_has_its_own_importance_map():
    codec = small_codec("mentzer2018-3dcnn")
    M, levels = codec.config["M"], codec.qualities
    raw = torch.zeros(1, M + levels, 2, 2)
    raw[:, M + 1] = -30.0  # level 2's map shut (one channel: the count is a ceiling), level 1's at the open offset
    assert int(codec.importance(raw, torch.tensor([1]))[1].max()) == 1
    assert int(codec.importance(raw, torch.tensor([0]))[1].min()) > 0.9 * M


def test_rate_targets_need_one_rate_per_level():
    with pytest.raises(ValueError, match="one rate per level"):
        small_codec("mentzer2018-3dcnn", target_bpp=[0.1])


def test_explore_opens_channels_past_the_map_for_the_synthesis_only():
    codec = small_codec("mentzer2018-3dcnn", explore=1.0).train()
    M = codec.config["M"]
    z_hat = torch.ones(64, M, 2, 2)
    count = torch.ones(64, 2, 2, dtype=torch.long)
    volume = z_hat * (torch.arange(M).view(1, -1, 1, 1) < 1)
    opened = codec._explore(z_hat, count, volume)
    coded = opened.sum(1)  # channels shown per position
    assert torch.all(coded >= 1) and coded.max() == M and coded.float().std() > 0
    assert torch.all(coded == coded[:, :1, :1])  # the same count wherever the map's count is the same
    assert codec(_image(32, 32), torch.tensor([1])).x_hat.shape == (1, 3, 32, 32)
    codec.config["explore"] = 0.0
    assert torch.equal(codec._explore(z_hat, count, volume), volume)


def test_the_rate_trains_the_encoder_and_the_penalty_trains_the_probability_models():
    """P and the counts' model learn only from their own cross-entropy, whatever a rate target asks of the rate."""
    codec = small_codec("mentzer2018-3dcnn").train()
    output = codec(_image(32, 32), torch.tensor([2]))
    models = [p for n, p in codec.named_parameters() if n.startswith(("context.", "counts."))]
    encoder = list(codec.analysis.parameters())

    def reached(loss, parameters):
        grads = torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True)
        return any(g is not None and g.abs().sum() > 0 for g in grads)

    rate = output.bits().sum()
    assert reached(rate, encoder) and not reached(rate, models)
    penalty = output.aux["penalty"].sum()
    assert reached(penalty, models) and not reached(penalty, encoder)
    assert torch.allclose(penalty * 32 * 32, rate, rtol=1e-4)  # the same bits, as P sees them


def test_the_rate_moves_the_latent_toward_cheaper_centers():
    """The code length of a voxel's own symbol reaches the encoder through the soft assignment, even where the
    context (the neighbours) gives no gradient at all."""
    codec = small_codec("mentzer2018-3dcnn").train()
    with torch.no_grad():
        for layer in codec.context.layers:
            layer.weight.zero_()
        codec.context.layers[-1].bias.copy_(torch.linspace(-2, 2, codec.quantizer.levels))  # unequal costs
    x = _image(32, 32)
    raw = codec.transform(codec.analysis, x).detach().requires_grad_()
    analysis = codec.analysis
    codec.transform = lambda network, inputs: raw if network is analysis else network(inputs)
    output = codec(x, torch.tensor([1]))
    (grad,) = torch.autograd.grad(output.likelihoods["y"].log().sum(), raw)
    assert grad[:, : codec.config["M"]].abs().sum() > 0
