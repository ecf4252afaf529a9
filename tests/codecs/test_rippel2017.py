"""rippel2017: bitplanes, truncation, exact context coding, ACR, damaged files."""

import pytest
import torch

import licodec.api
from licodec.api import compress_tensor
from licodec.registry import codec_class
from licodec.train.losses import adaptive_codelength, colour_distortion
from tests.conftest import assert_damage_is_handled


@pytest.fixture
def codec():
    torch.manual_seed(0)
    codec = codec_class("rippel2017")(features=8, channels=4, bitplanes=4, context_filters=4)
    codec.update()
    codec.eval()
    codec.weights_hash = "00" * 8
    return codec


def test_bitplanes_round_trip(codec):
    codes = torch.randint(0, 16, (2, 4, 3, 5))
    bits = codec.bitplanes(codes)
    assert bits.shape == (2, 16, 3, 5) and set(bits.unique().tolist()) <= {0, 1}
    assert torch.equal(codec.codes_from(bits), codes)
    assert torch.equal(bits[:, 0], torch.div(codes[:, 0], 8, rounding_mode="floor"))  # MSB first


@pytest.mark.parametrize("planes", [1, 2, 4])
def test_round_trip_keeps_the_top_bitplanes(codec, planes):
    torch.manual_seed(1)
    x = torch.rand(1, 3, 30, 44)
    encoded = codec.compress(x, planes)
    with torch.no_grad():
        y = codec.transform(codec.analysis, codec.layout(codec.pad(x)))
        y_hat, _ = codec.quantize(y, torch.tensor([planes]))
        expected = codec.transform(codec.synthesis, y_hat)[..., :30, :44].clamp(0, 1)
    assert torch.allclose(codec.decompress(encoded), expected, atol=1e-6)


def test_fewer_bitplanes_cost_fewer_bytes(codec):
    x = torch.rand(1, 3, 64, 64)
    sizes = [len(codec.compress(x, p).sections[0]) for p in (1, 2, 3, 4)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_acr_prefers_small_and_smooth_codes(codec):
    flat = torch.full((1, 4, 4, 4), 7.5)
    rough = flat.clone()
    rough[..., ::2, ::2] = 15
    assert codec.acr(flat) < codec.acr(rough)
    assert codec.acr(torch.zeros_like(flat)) < codec.acr(flat)  # small magnitudes cost less


def test_zero_coefficients_are_all_zero_bits(codec):
    _, codes = codec.quantize(torch.zeros(1, 4, 2, 2), torch.tensor([4]))
    assert not codec.bitplanes(codes).any()


@pytest.mark.parametrize("planes", [1, 3])
def test_training_estimate_matches_the_file(planes):
    """The training pass's bits are the coder's: planes that are not coded look the same to the context."""
    torch.manual_seed(0)  # sigmoid-bound random coefficients sit around the middle: every plane holds ones and zeros
    codec = codec_class("rippel2017")(features=8, channels=4, bitplanes=4, context_filters=4, bound="sigmoid").eval()
    torch.manual_seed(2)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for layer in codec.context.layers:  # sharper predictions than random weights give, so context matters
            layer.weight.mul_(4)
        codec.update()
        estimate = float(-torch.log2(codec(x, torch.tensor([planes])).likelihoods["bits"]).sum()) / 8
    assert len(codec.compress(x, planes).sections[0]) == pytest.approx(estimate, rel=0.02, abs=8)


def test_training_pass_and_loss(codec):
    codec.train()
    x = torch.rand(2, 3, 32, 32)
    output = codec(x, torch.tensor([1, 4]))
    terms = adaptive_codelength(codec, output, x, None, "mse")
    terms["loss"].backward()
    assert codec.analysis.extract[2][0].weight.grad.abs().sum() > 0
    assert codec.context.layers[0].weight.grad.abs().sum() > 0
    codec.eval()


def test_damaged_files(codec, monkeypatch):
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    data = compress_tensor(torch.rand(1, 3, 24, 40), 3, codec, 3)
    assert_damage_is_handled(data, 30, 6)


def test_loss_follows_the_training_metric(codec):
    codec.train()
    x = torch.rand(2, 3, 176, 176)
    output = codec(x, torch.tensor([2, 3]))
    alpha = float(codec.alpha)
    mse = adaptive_codelength(codec, output, x, None, "mse")["loss"]
    codec.alpha.fill_(alpha)
    ssim = adaptive_codelength(codec, output, x, None, "ms-ssim")["loss"]
    assert not torch.isclose(mse, ssim)
    discriminator = codec.build_discriminator()  # the adversarial objective keeps the run's metric too
    codec.alpha.fill_(alpha)
    gan_mse = adaptive_codelength(codec, output, x, None, "mse", discriminator)
    codec.alpha.fill_(alpha)
    gan_ssim = adaptive_codelength(codec, output, x, None, "ms-ssim", discriminator)
    assert torch.isclose(gan_mse["loss"] - gan_mse["g"], mse) and torch.isclose(gan_ssim["loss"] - gan_ssim["g"], ssim)
    codec.config["mse_weight"] = 0.5  # an MSE term beside MS-SSIM adds exactly that
    codec.alpha.fill_(alpha)
    mixed = adaptive_codelength(codec, output, x, None, "ms-ssim")["loss"]
    codec.config["mse_weight"] = 0.0
    assert torch.isclose(mixed - ssim, 0.5 * ((output.x_hat - x) ** 2).mean() * 255**2)
    codec.config["colour_weight"] = 0.25  # the colour term: the MSE of the 8x8 block means
    codec.alpha.fill_(alpha)
    coloured = adaptive_codelength(codec, output, x, None, "ms-ssim")["loss"]
    del codec.config["colour_weight"]
    means = torch.nn.functional.avg_pool2d(output.x_hat - x, 8)
    assert torch.isclose(coloured - ssim, 0.25 * (means**2).mean() * 255**2)
    codec.eval()


def test_colour_term_sees_colour_not_detail():
    x = torch.rand(1, 3, 64, 64)
    shifted = (x + torch.tensor([0.1, 0.0, -0.1])[:, None, None]).clamp(0, 1)
    noisy = x + 0.1 * torch.where(torch.arange(64) % 2 == 0, 1.0, -1.0)  # zero mean over every 8x8 block
    assert float(colour_distortion(shifted, x)[0]) > 100
    assert float(colour_distortion(noisy, x)[0]) < 1e-6 < float(((noisy - x) ** 2).mean())


def test_colour_weight_enters_the_config_only_when_set():
    build = codec_class("rippel2017")
    assert "colour_weight" not in build(features=8, channels=4, bitplanes=2, context_filters=4).config
    assert build(features=8, channels=4, bitplanes=2, context_filters=4, colour_weight=0.02).config[
        "colour_weight"] == 0.02


def _step(codec, x):
    """What the training loop does around a step: the objective, then `after_step` (ACR's weight)."""
    output = codec(x, torch.tensor([4]))
    codec.after_step(output, adaptive_codelength(codec, output, x, None, "mse"))


def test_acr_weight_adapts_within_bounds(codec):
    codec.train()
    x = torch.rand(1, 3, 32, 32)
    codec.config["target_bpp"] = 0.0  # unreachable: alpha rises, but no further than 10x its start
    for _ in range(300):
        _step(codec, x)
    assert float(codec.alpha) == pytest.approx(10 * codec.config["alpha"])
    codec.config["target_bpp"] = 100.0
    for _ in range(600):
        _step(codec, x)
    assert float(codec.alpha) == pytest.approx(codec.config["alpha"] / 10)
    codec.config["target_bpp"] = None  # no target: alpha stays where it is
    _step(codec, x)
    assert float(codec.alpha) == pytest.approx(codec.config["alpha"] / 10)
    codec.eval()


def test_clamped_coefficients_are_exactly_zero_where_negative():
    torch.manual_seed(3)
    codec = codec_class("rippel2017")(features=8, channels=4, bitplanes=4, context_filters=4)
    y = codec.analysis(torch.rand(1, 3, 32, 32)).detach()
    assert float(y.min()) == 0.0 and float(y.max()) <= 1.0 and (y == 0).any()
    smooth = codec_class("rippel2017")(features=8, channels=4, bitplanes=4, context_filters=4, bound="sigmoid")
    assert not (smooth.analysis(torch.rand(1, 3, 32, 32)) == 0).any()
    with pytest.raises(ValueError, match="bound"):
        codec_class("rippel2017")(bound="tanh")


# --- the bitplane coder (coder="bitplane", issue 23) -------------------------------------------------------------

@pytest.fixture
def fast_codec():
    """A small rippel2017 with the bitplane coder, its tables random but sharp (so that context matters)."""
    from licodec.entropy.bitplane import table_shapes

    torch.manual_seed(0)
    codec = codec_class("rippel2017")(features=8, channels=4, bitplanes=4, bound="sigmoid", coder="bitplane")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name in table_shapes(4):
            table = getattr(codec.bitplane_context, name)
            table.copy_((torch.randn(table.shape, generator=generator) * 32).clamp(-127, 127).int())
    codec.update()
    codec.eval()
    codec.weights_hash = "00" * 8
    return codec


def test_weights_that_name_no_coder_keep_the_3d_context_network(codec, fast_codec):
    assert codec.coder == "cnn" and "coder" not in codec.config and hasattr(codec, "context")
    assert fast_codec.coder == "bitplane" and fast_codec.config["coder"] == "bitplane"
    assert not hasattr(fast_codec, "context")
    with pytest.raises(ValueError, match="coder"):
        codec_class("rippel2017")(coder="lstm")


@pytest.mark.parametrize("planes", [1, 4])
def test_bitplane_coder_same_bytes_and_pixels_with_one_and_two_threads(fast_codec, planes):
    torch.manual_seed(4)
    x = torch.rand(1, 3, 36, 52)
    saved = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            encoded = fast_codec.compress(x, planes)
            results.append((encoded.sections, fast_codec.decompress(encoded)))
    finally:
        torch.set_num_threads(saved)
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])
    with torch.no_grad():
        y = fast_codec.transform(fast_codec.analysis, fast_codec.layout(fast_codec.pad(x)))
        y_hat, _ = fast_codec.quantize(y, torch.tensor([planes]))
        expected = fast_codec.transform(fast_codec.synthesis, y_hat)[..., :36, :52].clamp(0, 1)
    assert torch.allclose(results[0][1], expected, atol=1e-6)


@pytest.mark.parametrize("planes", [1, 3])
def test_bitplane_coder_training_estimate_matches_the_file(fast_codec, planes):
    """The training pass's likelihoods are the bitplane coder's own integer probabilities."""
    torch.manual_seed(2)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        estimate = float(fast_codec(x, torch.tensor([planes])).bits()) / 8
    assert len(fast_codec.compress(x, planes).sections[0]) == pytest.approx(estimate, rel=0.02, abs=8)


def test_bitplane_coder_training_pass(fast_codec):
    fast_codec.train()
    x = torch.rand(2, 3, 32, 32)
    output = fast_codec(x, torch.tensor([1, 4]))
    assert output.likelihoods["bits"].shape == (2, 16, 4, 4)
    terms = adaptive_codelength(fast_codec, output, x, None, "mse")
    terms["loss"].backward()  # the rate term has no gradient here (fitted coder); ACR and distortion do
    assert fast_codec.analysis.extract[2][0].weight.grad.abs().sum() > 0
    fast_codec.eval()


def test_bitplane_coder_damaged_and_truncated_files(fast_codec, monkeypatch):
    from licodec.api import decompress_tensor
    from licodec.errors import LicodecError

    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: fast_codec)
    data = compress_tensor(torch.rand(1, 3, 24, 40), 3, fast_codec, 3)
    assert_damage_is_handled(data, 30, 6)
    for cut in (5, 30, len(data) // 2, len(data) - 1):
        with pytest.raises(LicodecError):
            decompress_tensor(data[:cut])


def test_shipped_weights_use_the_bitplane_coder_and_estimate_their_files():
    """The zoo's rippel2017 codes with the bitplane coder; on a Kodak crop its training pass's estimate is the
    file's size within 2 % at every quality."""
    from licodec import zoo
    from licodec.io import read_image
    from tests.conftest import kodak_image

    codec = zoo.load("rippel2017")
    assert codec.coder == "bitplane"
    x, _ = read_image(kodak_image(23))
    x = x[..., :128, :192]
    for quality in range(1, codec.qualities + 1):
        with torch.no_grad():
            estimate = float(codec(codec.layout(codec.pad(x)), quality).bits()) / 8
        assert len(codec.compress(x, quality).sections[0]) == pytest.approx(estimate, rel=0.02, abs=8)
