"""The survey's quantization tools [11]-[13] at train and test time, and inside balle2017-factorized."""

import pytest
import torch

from licodec.codecs.base import Encoded
from licodec.quant.admm import AdmmPruning, project
from licodec.quant.nonuniform import NonUniformQuantizer
from licodec.registry import codec_class


def test_projection_keeps_the_largest_magnitudes():
    values = torch.tensor([[0.1, -3.0, 0.5, 2.0, -0.2, 0.0]])
    assert project(values, 0.5).tolist() == [[0.0, -3.0, 0.5, 2.0, 0.0, 0.0]]


def test_admm_pulls_the_small_entries_to_zero_and_leaves_the_large_ones():
    pruning = AdmmPruning(sparsity=0.5, rho=1.0, momentum=0.0)
    y = torch.tensor([[[[0.3, -4.0], [5.0, -0.2]]]], requires_grad=True)
    pruning.penalty(y).sum().backward()
    assert float(pruning.threshold) == 0.0  # the threshold moves after the step, not in the penalty
    pruning.after_step()
    grad = y.grad.flatten()
    assert grad[0] > 0 and grad[3] < 0  # descent moves 0.3 and -0.2 towards zero
    assert grad[1] == 0 and grad[2] == 0
    assert 0.2 < float(pruning.threshold) <= 4.0
    assert pruning.prune(y.detach()).flatten().tolist() == [0.0, -4.0, 5.0, 0.0]


def test_lloyd_refit_finds_the_clusters():
    torch.manual_seed(0)
    quantizer = NonUniformQuantizer(channels=1, levels=3, refit_every=1, lloyd_iterations=30)
    centers = torch.tensor([-6.0, 0.5, 7.0])
    y = (centers[torch.randint(3, (4000,))] + 0.1 * torch.randn(4000)).view(1, 1, 40, 100)
    quantizer.refit(y)
    assert torch.allclose(quantizer.levels[0], centers, atol=0.1)
    quantizer.eval()
    y_hat, indices = quantizer(y)
    assert torch.equal(y_hat, quantizer.levels[0][indices])


def test_nonuniform_training_refits_and_passes_gradients():
    from licodec.entropy.indexed import IndexedLatent

    latent = IndexedLatent("nonuniform", 1, 2, {"levels": 4, "refit_every": 2}).train()
    quantizer = latent.quantizer
    y = torch.randn(1, 2, 8, 8, requires_grad=True)
    before = quantizer.levels.clone()
    latent.before_step(lambda: y)
    assert not torch.equal(before, quantizer.levels)  # step 0 refits
    refitted = quantizer.levels.clone()
    latent.before_step(lambda: y * 3)
    assert torch.equal(refitted, quantizer.levels) and int(quantizer.steps) == 2  # step 1 does not
    y_hat, _ = quantizer(y)
    y_hat.sum().backward()
    assert y.grad.abs().sum() > 0


@pytest.mark.parametrize("quantizer,options", [("admm", {"sparsity": 0.6}), ("nonuniform", {"levels": 8}),
                                                ("vq", {"centers": 16, "dim": 2})])
def test_factorized_codec_with_each_quantizer_round_trips(quantizer, options):
    torch.manual_seed(0)
    codec = codec_class("balle2017-factorized")(N=16, M=24, lmbdas=(0.01, 0.05), quantizer=quantizer,
                                                 quantizer_options=options)
    codec.train()
    x = torch.rand(2, 3, 64, 64)
    output = codec(x, torch.tensor([1, 2]))
    loss = output.bits().sum() + output.aux.get("penalty", torch.zeros(2)).sum() + output.x_hat.sum()
    loss.backward()
    assert codec.analysis[0].weight.grad.abs().sum() > 0
    codec.update()
    codec.eval()
    x = torch.rand(1, 3, 40, 56)
    encoded = codec.compress(x, 2)
    decoded = codec.decompress(encoded)
    with torch.no_grad():
        estimate = float(codec(codec.pad(x), torch.tensor([2])).bits())
        y = codec.transform(codec.analysis, codec.pad(x)) * codec.gain.gain(torch.tensor([1.0]))
        if quantizer == "admm":
            y_hat = codec.pruning.prune(y)
            medians = codec.entropy.densities[1].medians.view(1, -1, 1, 1)
            y_hat = torch.round(y_hat - medians) + medians
        else:
            y_hat = codec.entropy.quantizer.dequantize(codec.entropy.quantizer.indices(y))
        expected = codec.reconstruct(y_hat.double(), 1.0, Encoded([], 40, 56, 2))
    assert torch.allclose(decoded, expected, atol=1e-6)
    assert abs(8 * len(encoded.sections[0]) - estimate) <= 0.05 * estimate + 64


@pytest.mark.parametrize("quantizer,options", [("nonuniform", {"levels": 8}), ("vq", {"centers": 16, "dim": 2})])
def test_index_categoricals_start_from_the_first_batch_histogram(quantizer, options):
    torch.manual_seed(0)
    codec = codec_class("balle2017-factorized")(N=16, M=24, lmbdas=(0.01, 0.05), quantizer=quantizer,
                                                 quantizer_options=options).train()
    x = torch.rand(2, 3, 64, 64)
    indexed = codec.entropy
    indices = indexed.quantizer(codec.transform(codec.analysis, x) * codec.gain.gain(torch.tensor([0, 1])))[1]
    codec.before_step(0, x, torch.tensor([0, 1]))
    assert bool(indexed.fitted)
    logits = indexed.priors.logits.detach()
    for group in range(indexed.groups):
        counts = torch.bincount(indices[:, group].flatten(), minlength=indexed.quantizer.alphabet)
        assert int(logits[group].argmax()) == int(counts.argmax())  # every level's table, group by group
        assert int(logits[indexed.groups + group].argmax()) == int(counts.argmax())
    before = logits.clone()
    codec.before_step(1, x, torch.tensor([0, 1]))
    assert torch.equal(before, indexed.priors.logits.detach())  # fitted once, then learned


def test_categorical_priors_train_at_the_density_learning_rate():
    codec = codec_class("balle2017-factorized")(N=16, M=24, lmbdas=(0.01, 0.05), quantizer="vq")
    groups = {name: {id(p) for p in parameters} for name, parameters in codec.parameter_groups().items()}
    assert id(codec.entropy.priors.logits) in groups["density"]
    assert id(codec.analysis[0].weight) in groups["main"]
    plain = codec_class("balle2017-factorized")(N=16, M=24, lmbdas=(0.01, 0.05))
    groups = {name: {id(p) for p in parameters} for name, parameters in plain.parameter_groups().items()}
    density = plain.entropy.densities[0]
    assert id(density.matrices[1]) in groups["density"] and id(density.quantiles) in groups["quantiles"]


def test_entropy_constrained_refit_spends_fewer_bits_than_plain_lloyd():
    torch.manual_seed(0)
    y = torch.randn(20000).view(1, 1, 100, 200)

    def fitted(weight):
        quantizer = NonUniformQuantizer(channels=1, levels=16, rate_weight=weight, lloyd_iterations=40)
        quantizer.refit(y)
        indices = quantizer.indices(y).flatten()
        shares = torch.bincount(indices, minlength=16).double() / indices.numel()
        entropy = float(-(shares[shares > 0] * shares[shares > 0].log2()).sum())
        error = float(((quantizer.dequantize(quantizer.indices(y)) - y) ** 2).mean())
        return quantizer.levels[0], entropy, error

    plain_levels, plain_entropy, plain_error = fitted(0.0)
    levels, entropy, error = fitted(NonUniformQuantizer(1).rate_weight)
    assert float(torch.diff(plain_levels).min()) < 0.5  # plain Lloyd packs 16 levels into the bulk
    centre = levels[(levels > -2) & (levels < 2)]
    assert float(torch.diff(centre).min()) > 0.7  # near the unit step of the uniform quantizer it stands in for
    assert entropy < plain_entropy - 0.5 and error > plain_error
    # At high rate, entropy-constrained scalar quantization of a Gaussian reaches D ~ 1/12 at h(Y) - log2(1) bits.
    assert abs(error - 1 / 12) < 0.03
