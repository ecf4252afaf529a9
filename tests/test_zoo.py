"""Shipped weights: they load, their hash is in every header, and a file from other weights is refused."""


import pytest
import torch

import licodec
from licodec import zoo
from licodec.api import DEFAULT_CODEC
from licodec.errors import WeightsError


@pytest.mark.parametrize("name", ["balle2018-hyperprior", "balle2017-factorized"])
def test_shipped_weights_load_and_are_fp16(name):
    if name not in zoo.installed():
        pytest.fail(f"{name} has no shipped weights")
    codec = zoo.load(name)
    assert codec.qualities >= 4
    assert len(codec.weights_hash) == 16
    entry = zoo.index()[name]
    assert entry["bytes"] < 20e6 and entry["provenance"]
    from safetensors.torch import load_file

    stored = zoo.renamed(load_file(zoo.weights_path(name)), codec)  # older module names mapped
    assert all(stored[f"model.{n}"].dtype == torch.float16 for n, _ in codec.named_parameters())


def test_weights_of_the_core_issue_fit_its_budget():
    core = ["balle2018-hyperprior", "balle2017-factorized"]
    assert sum(zoo.weights_path(n).stat().st_size for n in core) <= 40e6


@pytest.mark.parametrize("name", ["minnen2018-joint", "minnen2018-checkerboard", "lee2019-context-adaptive",
                                  "minnen2018-local", "agustsson2019-gc", "theis2017-cae", "toderici2016",
                                  "toderici2017", "mentzer2018-3dcnn", "rippel2017"])
def test_trained_codecs_ship_fp16_weights_with_provenance(name):
    if name not in zoo.installed():
        pytest.fail(f"{name} has no shipped weights")
    codec = zoo.load(name)
    assert codec.qualities >= 4 and zoo.index()[name]["provenance"]["steps"]
    x = torch.rand(1, 3, 48, 64)
    data = licodec.compress(x, codec=name, quality=2)
    assert licodec.decompress(data).size == (64, 48)


def test_header_records_the_weights_and_foreign_weights_are_refused():
    data = licodec.compress(torch.rand(1, 3, 20, 30))
    codec = zoo.load("balle2018-hyperprior")
    name_end = 6 + len(codec.name)
    assert data[name_end : name_end + 8].hex() == codec.weights_hash
    from licodec.bitstream import Header, pack, unpack

    header, sections = unpack(data)
    foreign = Header(header.codec, "ff" + header.weights_hash[2:], header.height, header.width, header.channels,
                     header.quality)
    with pytest.raises(WeightsError, match="not installed"):
        licodec.decompress(pack(foreign, sections))


def test_missing_weights_are_reported():
    with pytest.raises(WeightsError, match="no trained weights"):
        zoo.load("balle2018-mean-scale")


@pytest.mark.parametrize("name", ["minnen2018-joint", "minnen2018-checkerboard", "minnen2018-local",
                                  "mentzer2018-3dcnn",
                                  "lee2019-context-adaptive"])
def test_new_codecs_survive_the_weights_file(name):
    """Serialize a small random model and load it back: same tables, same bytes when coding."""
    from tests.conftest import small_codec

    codec = small_codec(name)
    data = zoo.to_bytes(codec, {"note": "test"})
    loaded = zoo.from_bytes(data)
    x = torch.rand(1, 3, 40, 70)
    assert loaded.compress(x, 2).sections == codec.compress(x, 2).sections


@pytest.mark.parametrize("name", ["minnen2018-joint", "minnen2018-checkerboard", "lee2019-context-adaptive",
                                  "mentzer2018-3dcnn"])
def test_masked_convolutions_store_only_their_visible_taps(name):
    from safetensors.torch import load as load_bytes

    from tests.conftest import small_codec

    codec = small_codec(name)
    stored = load_bytes(zoo.to_bytes(codec, {"note": "test"}))
    masked = {n: m for n, m in codec.named_modules() if isinstance(getattr(m, "mask", None), torch.Tensor)}
    assert masked
    for module_name, module in masked.items():
        assert f"model.{module_name}.weight" not in stored
        packed = stored[f"visible.{module_name}.weight"]
        assert packed.shape[-1] == int(module.mask.count_nonzero()) < module.mask.numel()
    loaded = zoo.from_bytes(zoo.to_bytes(codec, {"note": "test"}))
    for module_name, module in masked.items():
        mine = module.weight * module.mask
        theirs = loaded.get_submodule(module_name).weight
        assert torch.equal(theirs, mine.half().float())


def test_a_weights_file_of_another_shape_is_refused():
    from tests.conftest import small_codec

    data = zoo.to_bytes(small_codec("minnen2018-joint"), {"note": "test"})
    from safetensors.torch import load as load_bytes
    from safetensors.torch import save as save_bytes

    tensors = load_bytes(data)
    del tensors["visible.entropy.context.weight"]
    broken = save_bytes(tensors, metadata=zoo._metadata(data))
    with pytest.raises(WeightsError, match="does not match"):
        zoo.from_bytes(broken)



def test_the_whole_zoo_fits_its_budget():
    """DESIGN.md: at most 80 MB for all codecs together, about 12 MB for a codec other than the default.

    The slim joint and checkerboard models are 13.9 and 13.7 MB (h_s at N channels), the largest."""
    sizes = {name: zoo.weights_path(name).stat().st_size for name in zoo.installed()}
    assert sum(sizes.values()) <= 80e6, sizes
    assert all(size <= 14e6 for name, size in sizes.items() if name != DEFAULT_CODEC), sizes


def test_a_file_built_on_a_base_stores_only_what_differs(tmp_path, monkeypatch):
    from safetensors.torch import load as load_bytes

    from tests.codecs.test_toderici import _small

    monkeypatch.setattr(zoo, "ZOO", tmp_path)
    base = _small("toderici2016", cell="gru", reconstruction="additive")
    (tmp_path / "toderici2016.safetensors").write_bytes(zoo.to_bytes(base, {"note": "base"}))
    derived = _small("toderici2017")
    derived.load_state_dict(base.state_dict(), strict=False)  # the same recurrent network, its own context model
    data = zoo.to_bytes(derived, {"note": "derived"}, base="toderici2016")
    stored = load_bytes(data)
    assert stored and all(".context." in key for key in stored)
    assert len(data) < len(zoo.to_bytes(derived, {"note": "derived"})) / 4
    loaded = zoo.from_bytes(data)
    x = torch.rand(1, 3, 32, 48)
    assert loaded.compress(x, 3).sections == derived.compress(x, 3).sections
    # Another base than the one recorded is refused, with the reason.
    other = _small("toderici2016", cell="gru", reconstruction="additive", bits=32)
    torch.nn.init.zeros_(other.decoder.out.weight)
    (tmp_path / "toderici2016.safetensors").write_bytes(zoo.to_bytes(other, {"note": "other"}))
    with pytest.raises(WeightsError, match="build on 'toderici2016'"):
        zoo.from_bytes(data)
