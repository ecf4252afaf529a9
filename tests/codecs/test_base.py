"""The codec contract (licodec/codecs/base.py): forward changes no state, the quality convention, and a new codec
composed from a latent codec with no coder call of its own."""

import importlib
import inspect
import pkgutil
import re

import pytest
import torch
from torch import nn

import licodec.codecs
from licodec.codecs.base import Encoded, TransformCodec
from licodec.entropy.factorized import FactorizedLatent
from licodec.errors import CodecError
from licodec.quant.gain import GainUnit
from licodec.registry import codec_class
from licodec.taxonomy import Taxonomy
from tests.conftest import small_codec

SMALL = {
    "rippel2017": {"features": 8, "channels": 4, "bitplanes": 4, "context_filters": 4},
    "agustsson2019-gc": {"widths": (8, 8, 8, 8, 16), "residual_blocks": 1},
    "toderici2016": {"iterations": 2, "encoder_widths": (8, 16, 16, 16), "decoder_widths": (16, 16, 16, 16)},
    "toderici2017": {"iterations": 2, "encoder_widths": (8, 16, 16, 16), "decoder_widths": (16, 16, 16, 16)},
}
TRANSFORM_CODECS = ["balle2017-factorized", "balle2018-hyperprior", "balle2018-mean-scale", "minnen2018-joint",
                    "minnen2018-checkerboard", "lee2019-context-adaptive", "minnen2018-local"]
STATEFUL = [("theis2017-cae", {}), ("mentzer2018-3dcnn", {}), ("rippel2017", {}),
            ("balle2017-factorized", {"quantizer": "nonuniform", "quantizer_options": {"levels": 8,
                                                                                      "refit_every": 1}}),
            ("balle2017-factorized", {"quantizer": "vq", "quantizer_options": {"centers": 16, "dim": 2}}),
            ("balle2017-factorized", {"quantizer": "admm", "quantizer_options": {"sparsity": 0.5}})]


def _build(name, **options):
    torch.manual_seed(0)
    if name in SMALL:
        return codec_class(name)(**SMALL[name], **options)
    return codec_class(name)(N=16, M=24, lmbdas=(0.01, 0.05), **options)


def _state(codec):
    return {k: v.clone() for k, v in codec.state_dict().items()}


@pytest.mark.parametrize("name,options", [*((n, {}) for n in TRANSFORM_CODECS), *STATEFUL,
                                          ("toderici2017", {}), ("agustsson2019-gc", {})])
def test_forward_changes_no_state(name, options):
    codec = _build(name, **options).train()
    before = _state(codec)
    x = torch.rand(2, 3, 64, 64)
    codec(x, torch.tensor([1, 2])).bits().sum().backward()
    after = codec.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), [k for k in before
                                                                    if not torch.equal(before[k], after[k])]


@pytest.mark.parametrize("name,options", STATEFUL)
def test_state_changes_happen_in_the_step_hooks(name, options):
    """What forward used to change (step counters, refits, first fits, running thresholds, ACR's weight) now
    changes in before_step / after_step, which the training loop calls."""
    from licodec.train.losses import objective

    codec = _build(name, **options).train()
    if name == "rippel2017":
        codec.config["target_bpp"] = 0.0
    before = _state(codec)
    x = torch.rand(2, 3, 64, 64)
    level = torch.tensor([0, 1])
    codec.before_step(0, x, level)
    output = codec(x, level + 1)
    terms = objective(codec)(codec, output, x, torch.tensor([0.01, 0.05]), "mse")
    codec.after_step(output, terms)
    after = codec.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_quality_is_one_based_and_fractional_in_forward_as_in_compress():
    codec = small_codec("balle2018-hyperprior")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        codec.gain.log_gain.add_(3.0)  # a latent that does not round to zero everywhere
        top = codec(x)  # no quality: the highest
        assert torch.equal(top.x_hat, codec(x, codec.qualities).x_hat)
        low, middle = codec(x, 1), codec(x, 1.5)
        assert not torch.equal(low.x_hat, middle.x_hat) and not torch.equal(middle.x_hat, top.x_hat)
    for wrong in (0, codec.qualities + 0.5, torch.tensor([1, 0])):
        with pytest.raises(CodecError):
            codec(x, wrong)


@pytest.mark.parametrize("module", sorted(pkgutil.iter_modules(licodec.codecs.__path__), key=str))
def test_no_codec_calls_the_coder_or_imports_another_codec_or_the_training_package(module):
    source = inspect.getsource(importlib.import_module(f"licodec.codecs.{module.name}"))
    assert "import coder" not in source and not re.search(r"\bcoder\.", source)
    imported = re.findall(r"^from (licodec\.[\w.]+) import", source, re.M)
    assert all(not name.startswith(("licodec.codecs.", "licodec.train")) or name == "licodec.codecs.base"
               for name in imported), imported


class TinyCodec(TransformCodec):
    """A new codec as a user would write one: two convolutions and a latent codec, nothing else."""

    name = "tiny"
    taxonomy = Taxonomy(reference="test", network="CNN", coding_unit="full image", spatial_tools="none",
                        rate_control="gain vectors", quality_range="any", refs=())
    multiple = 4
    downsampling = 4

    def __init__(self, lmbdas=(0.01, 0.05)) -> None:
        super().__init__(lmbdas)
        self.latent_channels = 6
        self.analysis = nn.Conv2d(3, 6, 4, stride=4)
        self.synthesis = nn.ConvTranspose2d(6, 3, 4, stride=4)
        self.gain = GainUnit(self.lmbdas, 6)
        self.entropy = FactorizedLatent(self.qualities, 6)


def test_a_new_codec_composed_from_a_latent_codec_trains_and_codes():
    torch.manual_seed(0)
    codec = TinyCodec().train()
    x = torch.rand(2, 3, 16, 20)
    output = codec(x, torch.tensor([1, 2]))
    (output.bits().mean() + ((output.x_hat - x) ** 2).mean()).backward()
    assert codec.analysis.weight.grad.abs().sum() > 0
    codec.update()
    codec.eval()
    image = torch.rand(1, 3, 13, 18)
    encoded = codec.compress(image, 1.5)
    assert len(encoded.sections) == codec.entropy.sections
    level = codec.check_quality(1.5)
    _, y_hat = codec.entropy.encode(codec.latent(image, level), level)  # the latent the decoder must rebuild
    decoded = codec.decompress(Encoded(encoded.sections, 13, 18, 1.5))
    assert decoded.shape == image.shape
    assert torch.equal(decoded, codec.reconstruct(y_hat, level, encoded))


def test_levels_that_are_not_lambdas_and_a_codec_never_saved():
    from licodec.api import pack
    from licodec.errors import WeightsError

    recurrent = _build("toderici2016")
    assert recurrent.qualities == 2 and recurrent.lmbdas == () and "lmbdas" not in recurrent.config
    codec = TinyCodec().eval()
    codec.update()
    encoded = codec.compress(torch.rand(1, 3, 8, 8), 1)
    with pytest.raises(WeightsError, match="never saved"):
        pack(codec, encoded, 3)
