"""A stacked codec: whole models of one codec, one per quality level, in one weights file."""

import pytest
import torch

from licodec import zoo
from licodec.codecs.stacked import Stacked
from licodec.errors import CodecError
from tests.conftest import small_codec


def one_level(name: str, seed: int, lmbda: float):
    torch.manual_seed(seed)
    from licodec.registry import codec_class

    codec = codec_class(name)(N=16, M=24, lmbdas=(lmbda,))
    codec.update()
    return codec.prepare()


@pytest.mark.parametrize("name", ["balle2017-factorized", "balle2018-hyperprior"])
def test_each_level_codes_as_its_own_model_and_the_file_keeps_them(name):
    models = [one_level(name, 1, 0.02), one_level(name, 0, 0.005)]
    stacked = Stacked.of(models)
    assert stacked.qualities == 2 and stacked.lmbdas == (0.005, 0.02)  # ordered by lambda
    reloaded = zoo.from_bytes(zoo.to_bytes(stacked, {"note": "test"}, half=False))
    x = torch.rand(1, 3, 40, 72, generator=torch.Generator().manual_seed(3))
    for quality, model in ((1, models[1]), (2, models[0])):
        encoded = reloaded.compress(x, quality)
        assert encoded.sections == model.compress(x, 1).sections and encoded.quality == quality
        assert torch.equal(reloaded.decompress(encoded), model.decompress(model.compress(x, 1)))


def test_what_a_stack_refuses():
    with pytest.raises(CodecError, match="an integer"):
        Stacked.of([one_level("balle2017-factorized", 0, 0.01), one_level("balle2017-factorized", 1, 0.02)]
                   ).check_quality(1.5)
    with pytest.raises(CodecError, match="one codec"):
        Stacked.of([one_level("balle2017-factorized", 0, 0.01), one_level("balle2018-hyperprior", 0, 0.02)])
    with pytest.raises(CodecError, match="one quality level"):
        Stacked("balle2017-factorized", [small_codec("balle2017-factorized").config])
    with pytest.raises(CodecError, match="cannot be stacked"):
        Stacked("stacked", [])
