"""Shipped weights: they load, their hash is in every header, and a file from other weights is refused."""


import pytest
import torch

import licodec
from licodec import zoo
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

    stored = load_file(zoo.weights_path(name))
    assert all(stored[f"model.{n}"].dtype == torch.float16 for n, _ in codec.named_parameters())


def test_weights_of_the_core_issue_fit_its_budget():
    core = ["balle2018-hyperprior", "balle2017-factorized"]
    assert sum(zoo.weights_path(n).stat().st_size for n in core) <= 40e6


@pytest.mark.parametrize("name", ["minnen2018-joint", "minnen2018-checkerboard"])
def test_context_models_ship_fp16_weights_with_provenance(name):
    if name not in zoo.installed():
        pytest.fail(f"{name} has no shipped weights")
    codec = zoo.load(name)
    assert codec.qualities >= 4 and zoo.index()[name]["provenance"]["steps"]
    assert zoo.weights_path(name).stat().st_size < 25e6


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
