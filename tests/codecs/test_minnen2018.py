"""The context-model codecs ([23], checkerboard, [19], [18]): exact round trips, threads, damaged files."""


import pytest
import torch

import licodec.api
from licodec.api import compress_tensor, decompress_tensor
from licodec.errors import LicodecError
from tests.conftest import assert_damage_is_handled, sections_with_threads, small_codec

NAMES = ["minnen2018-joint", "minnen2018-checkerboard", "lee2019-context-adaptive"]
ALL = [*NAMES, "minnen2018-local"]


def _image(height, width, seed=0):
    torch.manual_seed(seed)
    base = torch.rand(1, 3, height // 6 + 2, width // 6 + 2)
    x = torch.nn.functional.interpolate(base, size=(height, width), mode="bicubic", align_corners=False)
    return torch.round(x.clamp(0, 1) * 255) / 255


def _lively(name, seed=0):
    """A small random codec whose latent is large enough to exercise many tables and escapes."""
    codec = small_codec(name, seed)
    with torch.no_grad():
        codec.gain.log_gain.add_(3.0)
        codec.gain.log_inverse_gain.sub_(3.0)
    return codec


@pytest.fixture(params=NAMES)
def codec(request):
    return _lively(request.param)


def _encoder_latent(codec, x, quality):
    """y_hat as the encoder computes it (fixed point), with no bytes involved."""
    level = quality - 1
    entropy = codec.entropy
    y = codec.latent(x, level).double()
    _, z_symbols = entropy.encode_side(y.float(), level)
    one = 1 << entropy.integer("entropy_parameters").fraction_bits
    return entropy.visit(entropy.hyper_fixed(z_symbols, level), y.shape[1],
                         lambda index, means, rows, cols: torch.round(y[0, :, rows, cols] - means.double() / one))


@pytest.mark.parametrize("size", [(1, 1), (70, 45), (64, 130)])
def test_round_trip_is_exact(codec, size):
    x = _image(*size)
    encoded = codec.compress(x, 2)
    assert sum(len(s) for s in encoded.sections) > 8
    with torch.no_grad():
        expected = codec.reconstruct(_encoder_latent(codec, x, 2).double() / 1024, 1, encoded)
        assert torch.equal(codec.decompress(encoded), expected)


def test_wavefront_decoder_equals_a_position_by_position_decoder():
    """The batched wavefront visits give the same latent as visiting one position at a time in raster order."""
    import licodec.entropy.hyperprior as module

    codec = _lively("minnen2018-joint")
    x = _image(70, 130)
    fast = _encoder_latent(codec, x, 2)
    original = module.schedule

    def raster(kind, height, width, kernel=5):
        return [(torch.tensor([i]), torch.tensor([j]), True) for i in range(height) for j in range(width)]

    module.schedule = raster
    try:
        slow = _encoder_latent(codec, x, 2)
    finally:
        module.schedule = original
    assert torch.equal(fast, slow)


@pytest.fixture(params=ALL)
def any_codec(request):
    return _lively(request.param)


def test_bytes_identical_with_one_and_two_threads(any_codec):
    codec = any_codec
    x = _image(96, 80)
    compress = lambda: codec.compress(x, 1)  # noqa: E731
    assert sections_with_threads(compress, 1) == sections_with_threads(compress, 2)


def test_forward_likelihoods_and_the_estimate(any_codec):
    codec = any_codec.train()
    output = codec(_image(64, 64).repeat(2, 1, 1, 1), torch.tensor([1, 2]))
    for likelihood in output.likelihoods.values():
        assert ((likelihood > 0) & (likelihood <= 1)).all()
    output.bits().sum().backward()
    entropy = codec.entropy
    trained = [entropy.context, entropy.entropy_parameters[0]] if hasattr(entropy, "context") else [codec.analysis[0]]
    for module in trained:
        assert module.weight.grad.abs().sum() > 0
    codec.eval()


def test_local_models_round_trip_and_choose_the_cheapest_blocks():
    codec = _lively("minnen2018-local")
    x = _image(150, 100)
    encoded = codec.compress(x, 2)
    level = 1
    with torch.no_grad():
        y = codec.transform(codec.analysis, codec.layout(codec.pad(x))) * codec.gain.gain(torch.tensor([level]))
        expected = codec.reconstruct(torch.round(y).double(), level, encoded)
        assert torch.equal(codec.decompress(encoded), expected)
    # Forcing every block onto one model never gives a smaller file than the per-block choice.
    from licodec.entropy import coder

    y_int = torch.round(y).long().numpy()
    local = codec.entropy.local
    density = local.level(level)
    chosen = len(encoded.sections[1])
    for k in range(local.models):
        choice = torch.full((3, 2), k).numpy()
        index = local.table_index(choice, y_int.shape)
        symbols = y_int - density.centres.numpy().astype("int64")[index]
        assert len(coder.encode(symbols, index, density.tables)) >= chosen - 8


@pytest.fixture(params=ALL)
def small_file(request, monkeypatch):
    codec = _lively(request.param)
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    return compress_tensor(_image(40, 56), 3, codec, 1)


def test_damaged_files_decode_or_report(small_file):
    for end in range(0, len(small_file), 7):
        with pytest.raises(LicodecError):
            decompress_tensor(small_file[:end])
    assert_damage_is_handled(small_file, 60, 0)


@pytest.mark.parametrize("name", ["minnen2018-joint", "minnen2018-checkerboard"])
def test_slim_side_networks_are_smaller_and_code_exactly(name):
    from licodec import zoo
    from licodec.registry import codec_class

    def size(codec):
        return sum(p.numel() for p in codec.parameters())

    wide = codec_class(name)(N=32, M=48)
    slim = codec_class(name)(N=32, M=48, slim=True)
    assert slim.config["slim"] and "slim" not in wide.config
    assert size(slim.entropy.hyper_synthesis) < size(wide.entropy.hyper_synthesis) / 2
    assert size(slim.entropy.entropy_parameters) < size(wide.entropy.entropy_parameters)
    codec = small_codec(name, seed=1, slim=True)
    loaded = zoo.from_bytes(zoo.to_bytes(codec, {"note": "test"}))  # the file rebuilds the slim layout
    x = _image(70, 45)
    encoded = loaded.compress(x, 2)
    assert loaded.compress(x, 2).sections == codec.compress(x, 2).sections
    with torch.no_grad():
        expected = loaded.reconstruct(_encoder_latent(loaded, x, 2).double() / 1024, 1, encoded)
        assert torch.equal(loaded.decompress(encoded), expected)
