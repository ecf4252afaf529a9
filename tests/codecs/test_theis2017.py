"""theis2017-cae: rounding with identity gradient, GSM tables, incremental coefficients, exact round trips."""

import pytest
import torch

import licodec.api
from licodec.api import compress_tensor
from tests.conftest import assert_damage_is_handled, small_codec


@pytest.fixture
def codec():
    return small_codec("theis2017-cae")


def test_round_trip_equals_the_rounded_reconstruction(codec):
    torch.manual_seed(2)
    x = torch.rand(1, 3, 45, 70)
    encoded = codec.compress(x, 2)
    with torch.no_grad():
        y = codec.transform(codec.analysis, codec.layout(codec.pad(x))) * codec.gain.gain(torch.tensor([1.0]))
        expected = codec.reconstruct(torch.round(y).double(), 1.0, encoded)
    assert torch.equal(codec.decompress(encoded), expected)


def test_estimate_matches_the_file(codec):
    torch.manual_seed(3)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        bits = float(codec(x, torch.tensor([2])).bits())
    assert abs(8 * len(codec.compress(x, 2).sections[0]) - bits) <= 0.02 * bits + 64


def test_incremental_training_switches_coefficients_on(codec):
    codec.train()
    codec.config.update(start=4, grow=4, every=2)
    x = torch.rand(1, 3, 32, 32)
    seen = []
    for _ in range(6):
        output = codec(x, torch.tensor([1]))
        codec.after_step(output, {})  # the training loop's step count
        seen.append(codec.active())
    assert seen == [4, 8, 8, 12, 12, 16]
    with torch.no_grad():
        codec.steps.zero_()
        y = codec.transform(codec.analysis, x) * codec.gain.gain(torch.tensor([0]))
        output = codec(x, torch.tensor([1]))
    # Inactive coefficients are zero, so they cost what a zero costs under their mixture.
    assert y[:, 4:].abs().sum() > 0
    codec.eval()
    assert output.likelihoods["y"].shape[1] == codec.config["M"]


def test_rounding_has_the_identity_gradient(codec):
    codec.train()
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    codec(x, torch.tensor([1])).x_hat.sum().backward()
    assert x.grad.abs().sum() > 0
    codec.eval()


def test_damaged_files(codec, monkeypatch):
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    data = compress_tensor(torch.rand(1, 3, 24, 40), 3, codec, 1)
    assert_damage_is_handled(data, 60, 4)
