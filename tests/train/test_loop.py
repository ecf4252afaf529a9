"""The training loop: it learns, resumes exactly, exports, and runs data-parallel under torchrun."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from licodec import zoo
from licodec.train import TrainConfig, fit
from licodec.train.hardware import cpu_name


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(4):
        base = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
        Image.fromarray(base).resize((80, 72), Image.BICUBIC).save(folder / f"img{i}.png")
    return folder


def _config(images, checkpoint, steps, **extra):
    return TrainConfig(codec="balle2018-hyperprior", data=str(images), checkpoint=str(checkpoint), steps=steps,
                       batch_size=2, crop=64, lr=1e-3, checkpoint_every=2, seed=3,
                       codec_kwargs={"N": 8, "M": 12, "lmbdas": [0.01, 0.1]}, **extra)


def test_resume_continues_exactly(images, tmp_path):
    straight = fit(_config(images, tmp_path / "a.ckpt", 4), progress=False)
    fit(_config(images, tmp_path / "b.ckpt", 4), progress=False, stop_at=2)
    assert torch.load(tmp_path / "b.ckpt", weights_only=False)["step"] == 2
    resumed = fit(_config(images, tmp_path / "b.ckpt", 4), resume=True, progress=False)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_training_lowers_the_loss_and_exports(images, tmp_path):
    from licodec.train.losses import rd_loss

    codec = fit(_config(images, tmp_path / "c.ckpt", 30), progress=False)
    weights = tmp_path / "w.safetensors"
    digest = zoo.save(codec, weights, {"steps": 30})
    loaded = zoo.from_bytes(weights.read_bytes())
    assert loaded.weights_hash == digest and loaded.provenance == {"steps": 30}
    parameters = dict(loaded.named_parameters())
    stored = load_file(weights)
    assert all(stored[f"model.{name}"].dtype == torch.float16 for name in parameters)
    x = torch.from_numpy(np.array(Image.open(images / "img0.png"))).permute(2, 0, 1)[None].float() / 255
    fresh = fit(_config(images, tmp_path / "d.ckpt", 0), progress=False)
    lmbda = torch.tensor([0.1])
    with torch.no_grad():
        before = rd_loss(fresh.eval()(x[..., :64, :64], torch.tensor([1])), x[..., :64, :64], lmbda, "mse")
        after = rd_loss(loaded(x[..., :64, :64], torch.tensor([1])), x[..., :64, :64], lmbda, "mse")
    assert after["loss"] < before["loss"]


def test_ms_ssim_needs_large_crops(images, tmp_path):
    with pytest.raises(ValueError, match="MS-SSIM"):
        fit(_config(images, tmp_path / "e.ckpt", 1, metric="ms-ssim"), progress=False)


def test_cli_train_and_export(images, tmp_path):
    checkpoint, weights = tmp_path / "f.ckpt", tmp_path / "f.safetensors"
    common = [sys.executable, "-m", "licodec.cli", "train", "--codec", "balle2017-factorized", "--data", str(images),
              "--checkpoint", str(checkpoint), "--channels", "8,12", "--lmbda", "0.01,0.1", "--batch-size", "2",
              "--crop", "64", "--checkpoint-every", "1"]
    result = subprocess.run([*common, "--steps", "2"], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    result = subprocess.run([*common, "--steps", "3", "--resume", "--export", str(weights)], capture_output=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    exported = zoo.from_bytes(weights.read_bytes())
    assert exported.qualities == 2
    assert exported.provenance["steps"] == 3 and exported.provenance["batch_size"] == 2
    # Where it trained and how fast, measured: both runs (2 steps, then 1 resumed) on this CPU, in one segment.
    (segment,) = exported.provenance["trained_on"]
    assert segment["cpu"] == cpu_name() and segment["logical_cpus"] == os.cpu_count()
    assert segment["steps"] == 3 and segment["precision"] == "fp32" and segment["threads"] >= 1
    assert segment["steps_per_second"] == pytest.approx(3 / segment["seconds"], rel=0.05)
    assert segment["steps_per_second"] > 0
    # `licodec export` of the same checkpoint records the same run, and the notes given.
    again = tmp_path / "g.safetensors"
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "export", str(checkpoint), "-o", str(again),
                             "--note", "hardware=test"], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert zoo.from_bytes(again.read_bytes()).provenance == {**exported.provenance, "hardware": "test"}
    # Fine-tuning a weights file keeps its history in the new file's record.
    tuned = tmp_path / "f2.safetensors"
    fresh = [str(tmp_path / "f2.ckpt") if arg == str(checkpoint) else arg for arg in common]
    result = subprocess.run([*fresh, "--steps", "1", "--init", str(weights), "--only", "analysis", "--export",
                             str(tuned)], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    record = zoo.from_bytes(tuned.read_bytes()).provenance
    assert record["only"] == "analysis" and record["init_provenance"] == exported.provenance
    missing = subprocess.run([*common[:-8], "--checkpoint", str(tmp_path / "none.ckpt"), "--resume"],
                             capture_output=True, timeout=300)
    assert missing.returncode != 0 and b"Traceback" not in missing.stderr


def test_two_process_data_parallel_on_gloo(images, tmp_path):
    """torchrun with two CPU processes: both ranks see the same averaged gradients, so weights stay equal."""
    checkpoint = tmp_path / "ddp.ckpt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "licodec.cli", "train", "--codec", "balle2018-hyperprior", "--data", str(images),
         "--checkpoint", str(checkpoint), "--channels", "8,12", "--lmbda", "0.01,0.1", "--batch-size", "2",
         "--crop", "64", "--steps", "3", "--checkpoint-every", "3", "--jobs", "1"],
        capture_output=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    state = torch.load(checkpoint, weights_only=False)
    assert state["step"] == 3 and len(state["sampler"]) == 2


def test_bf16_transforms_and_warm_start(images, tmp_path):
    first = fit(_config(images, tmp_path / "g.ckpt", 2), progress=False)
    config = _config(images, tmp_path / "h.ckpt", 3, precision="bf16", init=str(tmp_path / "g.ckpt"))
    codec = fit(config, progress=False)
    assert codec.transform_dtype == torch.bfloat16
    assert all(torch.isfinite(p).all() for p in codec.parameters())
    assert all(p.dtype == torch.float32 for p in codec.parameters())  # master weights stay float32
    moved = [not torch.equal(a, b) for a, b in zip(first.state_dict().values(), codec.state_dict().values())]
    assert any(moved)
    with pytest.raises(ValueError, match="precision"):
        fit(_config(images, tmp_path / "i.ckpt", 1, precision="fp8"), progress=False)


def test_per_rate_model_starts_from_its_level_of_a_variable_rate_one(images, tmp_path):
    """[10]'s comparison: a one-lambda model warm-started from a variable-rate one takes that level's gains."""
    import dataclasses

    variable = fit(_config(images, tmp_path / "v.ckpt", 2), progress=False)
    config = _config(images, tmp_path / "p.ckpt", 0, init=str(tmp_path / "v.ckpt"))
    config = dataclasses.replace(config, codec_kwargs={**config.codec_kwargs, "lmbdas": [0.1]})
    single = fit(config, progress=False)
    assert list(single.lmbdas) == [0.1]
    for name in ("gain.log_gain", "gain.log_inverse_gain"):
        assert torch.equal(single.state_dict()[name], variable.state_dict()[name][1:]), name
    assert torch.equal(single.state_dict()["analysis.0.weight"], variable.state_dict()["analysis.0.weight"])
    # The per-level density module too: level 0 of the single model is level 1 of the variable one.
    key = "entropy.hyper_densities.levels.{}.matrices.0"
    assert torch.equal(single.state_dict()[key.format(0)], variable.state_dict()[key.format(1)])


def test_a_level_added_to_a_variable_rate_model_trains_alone(images, tmp_path):
    """A lower level prepended to a trained model starts from its neighbour; trained with `qualities` and `only`,
    it moves and nothing of the other levels does (their coding tables included)."""
    import dataclasses

    variable = fit(_config(images, tmp_path / "l1.ckpt", 2), progress=False)
    config = _config(images, tmp_path / "l2.ckpt", 3, init=str(tmp_path / "l1.ckpt"), qualities="1",
                     only="gain,hyper_densities.levels.0")
    config = dataclasses.replace(config, codec_kwargs={**config.codec_kwargs, "lmbdas": [0.003, 0.01, 0.1]})
    grown = fit(config, progress=False)
    before, after = variable.state_dict(), grown.state_dict()
    for name in ("gain.log_gain", "gain.log_inverse_gain"):
        assert torch.equal(after[name][1:], before[name]), name
    assert not torch.equal(after["gain.log_gain"][0], before["gain.log_gain"][0])
    for level in (0, 1):
        for part in ("matrices.0", "quantiles"):
            name = f"entropy.hyper_densities.levels.{{}}.{part}"
            assert torch.equal(after[name.format(level + 1)], before[name.format(level)]), (level, part)
    assert not torch.equal(after["entropy.hyper_densities.levels.0.matrices.0"],
                           before["entropy.hyper_densities.levels.0.matrices.0"])
    assert torch.equal(after["analysis.0.weight"], before["analysis.0.weight"])
    with pytest.raises(ValueError, match="levels 1 to 3"):
        fit(dataclasses.replace(config, qualities="4", init=""), progress=False)
    # A saved model of other widths leaves frozen tensors random: refused.
    wider = dataclasses.replace(config, codec_kwargs={**config.codec_kwargs, "N": 10})
    with pytest.raises(ValueError, match="outside --only"):
        fit(wider, progress=False)


def test_fit_quantiles_brings_the_aux_loss_down(images, tmp_path):
    from licodec.train.loop import fit_quantiles

    codec = fit(_config(images, tmp_path / "j.ckpt", 2), progress=False)
    before = float(codec.aux_loss().detach())
    after = fit_quantiles(codec, steps=1000, lr=0.5)
    assert after < 0.2 * before


def test_only_trains_the_named_parameters(images, tmp_path):
    """[3]'s per-rate fine-tuning: with only="gain", every other weight stays as it was."""
    base = fit(_config(images, tmp_path / "o1.ckpt", 2), progress=False)
    tuned = fit(_config(images, tmp_path / "o2.ckpt", 3, init=str(tmp_path / "o1.ckpt"), only="gain"),
                progress=False)
    before, after = base.state_dict(), tuned.state_dict()
    assert not torch.equal(before["gain.log_gain"], after["gain.log_gain"])
    for name in ("analysis.0.weight", "synthesis.0.weight", "entropy.hyper_synthesis.0.weight"):
        assert torch.equal(before[name], after[name]), name
    with pytest.raises(ValueError, match="no parameter"):
        fit(_config(images, tmp_path / "o3.ckpt", 1, only="nothing"), progress=False)


@pytest.mark.parametrize("name,options", [
    ("theis2017-cae", {"N": 16, "M": 24, "lmbdas": [0.01, 0.1], "start": 8, "grow": 8, "every": 2}),
    ("toderici2017", {"iterations": 2, "encoder_widths": [8, 8, 8, 8], "decoder_widths": [8, 8, 8, 8]}),
    ("toderici2016", {"iterations": 2, "encoder_widths": [8, 8, 8, 8], "decoder_widths": [8, 8, 8, 8]}),
    ("mentzer2018-3dcnn", {"N": 16, "M": 8, "lmbdas": [0.01, 0.1], "blocks": 1, "context_filters": 4}),
    ("minnen2018-local", {"N": 8, "M": 12, "lmbdas": [0.01, 0.1], "models": 3}),
    ("agustsson2019-gc", {"widths": [4, 4, 4, 4, 8], "residual_blocks": 1}),
    ("balle2017-factorized", {"N": 8, "M": 12, "lmbdas": [0.01, 0.1], "quantizer": "vq"}),
    ("rippel2017", {"features": 8, "channels": 4, "bitplanes": 3, "context_filters": 4}),
    ("rippel2017", {"features": 8, "channels": 4, "bitplanes": 3, "context_filters": 4, "adversarial": True}),
    ("balle2017-factorized", {"N": 8, "M": 12, "lmbdas": [0.01, 0.1], "quantizer": "admm"}),
])
def test_every_new_codec_trains_and_exports(images, tmp_path, name, options):
    config = TrainConfig(codec=name, data=str(images), checkpoint=str(tmp_path / "n.ckpt"), steps=3, batch_size=2,
                         crop=64, lr=1e-3, checkpoint_every=3, seed=1, codec_kwargs=options)
    codec = fit(config, progress=False)
    loaded = zoo.from_bytes(zoo.to_bytes(codec, {"steps": 3}))
    codec.prepare()
    x = torch.rand(1, 3, 40, 48)
    assert loaded.compress(x, 2).sections == codec.compress(x, 2).sections
