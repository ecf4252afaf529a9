"""`licodec import compressai`: CompressAI state dicts (by their key names and shapes) become licodec weights files.

Without CompressAI installed, the state dicts are written here in its layout (from a licodec model, or random in
the shapes of CompressAI's entropy bottleneck); with it, the import is compared with CompressAI's own coding.
"""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import licodec
from licodec import zoo
from licodec.cli import main
from licodec.errors import WeightsError
from licodec.interop.compressai import convert, quality_of, read_checkpoint
from tests.conftest import small_codec


def compressai_layout(codec) -> dict[str, torch.Tensor]:
    """A licodec balle2017/balle2018 model's tensors under CompressAI's names (level 0 only)."""
    out = {}
    names = {"analysis": "g_a", "synthesis": "g_s", "hyper_analysis": "h_a", "hyper_synthesis": "h_s",
             "context": "context_prediction", "entropy_parameters": "entropy_parameters"}
    for key, value in codec.state_dict().items():
        key = key.removeprefix("entropy.")  # licodec's latent codec holds the entropy models
        head, _, rest = key.partition(".")
        if head in names:
            out[f"{names[head]}.{rest.removesuffix('.raw')}"] = value.clone()
        for density in ("densities.levels.0.", "hyper_densities.levels.0."):
            if key.startswith(density) and not key.endswith("target"):
                out["entropy_bottleneck." + key[len(density):]] = value.clone()
    return out


def random_bottleneck(channels: int, filters=(3, 3, 3, 3), seed: int = 0) -> dict[str, torch.Tensor]:
    """An entropy bottleneck in CompressAI 1.2's layout and default shape (four hidden layers of 3)."""
    generator = torch.Generator().manual_seed(seed)
    widths = (1, *filters, 1)
    out = {"entropy_bottleneck.quantiles": torch.tensor([-8.0, 0.3, 8.0]).repeat(channels, 1, 1)}
    for k in range(len(widths) - 1):
        out[f"entropy_bottleneck.matrices.{k}"] = torch.randn(channels, widths[k + 1], widths[k],
                                                              generator=generator) * 0.3
        out[f"entropy_bottleneck.biases.{k}"] = torch.rand(channels, widths[k + 1], 1, generator=generator) - 0.5
        if k < len(widths) - 2:
            out[f"entropy_bottleneck.factors.{k}"] = torch.zeros(channels, widths[k + 1], 1)
    return out


ARCHITECTURES = [("bmshj2018-factorized", "balle2017-factorized"), ("bmshj2018-hyperprior", "balle2018-hyperprior"),
                 ("mbt2018-mean", "balle2018-mean-scale"), ("mbt2018", "minnen2018-joint")]


@pytest.mark.parametrize(("arch", "name"), ARCHITECTURES)
def test_a_state_dict_in_compressai_layout_imports_to_the_same_model(arch, name):
    source = small_codec(name)
    imported = convert(arch, compressai_layout(source), 0.01)
    with torch.no_grad():  # gain 1 and level 0's density: then the source codes as the import does
        source.gain.log_gain.zero_()
        source.gain.log_inverse_gain.zero_()
    if arch != "bmshj2018-factorized":  # the import keeps CompressAI's 64 scales (and mbt2018-mean's LeakyReLUs)
        zoo.set_scale_levels(source, 64, "up")
        if arch in ("mbt2018-mean", "mbt2018"):
            zoo.set_leaky_relu(source, 0.01)
        source.update()
    source.prepare()
    mine, theirs = source.state_dict(), imported.state_dict()
    shared = [k for k in theirs if not k.startswith("gain.")]  # the source has two levels, the import one
    assert set(theirs) <= set(mine) and all(torch.equal(mine[k], theirs[k]) for k in shared)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert imported.compress(x, 1).sections == source.compress(x, 1).sections
    assert torch.equal(imported.decompress(imported.compress(x, 1)), source.decompress(source.compress(x, 1)))


@pytest.mark.parametrize(("arch", "name"), ARCHITECTURES)
@pytest.mark.parametrize("spelling", ["matrices.{k}", "_matrix{k}", "_matrices.{k}"])
def test_compressai_bottlenecks_of_four_hidden_layers_survive_the_weights_file(arch, name, spelling, tmp_path):
    state = {k: v for k, v in compressai_layout(small_codec(name)).items() if not k.startswith("entropy_bottleneck")}
    channels = 24 if arch == "bmshj2018-factorized" else 16
    for key, value in random_bottleneck(channels).items():
        kind, _, k = key.removeprefix("entropy_bottleneck.").partition(".")
        if kind == "quantiles":
            state[key] = value
            continue
        singular = {"matrices": "matrix", "biases": "bias", "factors": "factor"}[kind]
        written = spelling.replace("matrices", kind).replace("matrix", singular).format(k=k)
        state[f"entropy_bottleneck.{written}"] = value
    checkpoint = tmp_path / "bmshj2018-factorized-3-0123abcd.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, checkpoint)
    assert quality_of(checkpoint) == 3 and set(read_checkpoint(checkpoint)) == set(state)
    out = tmp_path / "imported.safetensors"
    result = CliRunner().invoke(main, ["import", "compressai", "--arch", arch, str(checkpoint), "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    codec = licodec.load(str(out))
    assert codec.config["density_filters"] == [3, 3, 3, 3] and codec.lmbdas == (0.0067,)
    assert codec.provenance["imported_from"] == "compressai"
    x = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    data = licodec.compress(x, weights=str(out), quality=1)
    assert licodec.decompress(data, weights=str(out)).size == (96, 64)
    rewritten = zoo.from_bytes(zoo.to_bytes(zoo.from_bytes(out.read_bytes()), {}, half=False))
    assert rewritten.compress(x, 1).sections == codec.compress(x, 1).sections


def test_scale_rounding_up_takes_the_first_table_scale_at_or_above(tmp_path):
    codec = small_codec("balle2018-hyperprior")
    zoo.set_scale_levels(codec, 64, "up")
    codec.update()
    table = codec.entropy.gaussian.scale_table.double()
    fraction_bits = 10
    scales = torch.tensor([0.05, table[3] * 0.999, table[3] * 1.001, (table[3] * table[4]).sqrt() * 0.99, 1e4])
    fixed = torch.floor(scales * (1 << fraction_bits)).long()
    assert codec.entropy.gaussian.index(fixed, fraction_bits).tolist() == [0, 3, 4, 4, 63]
    nearest = small_codec("balle2018-hyperprior")
    zoo.set_scale_levels(nearest, 64)
    nearest.update()
    assert nearest.entropy.gaussian.index(fixed, fraction_bits).tolist() == [0, 3, 3, 3, 63]
    reloaded = zoo.from_bytes(zoo.to_bytes(codec, {}))
    assert reloaded.config["scale_rounding"] == "up" and reloaded.entropy.gaussian.scale_table.numel() == 64
    assert reloaded.entropy.gaussian.index(fixed, fraction_bits).tolist() == [0, 3, 4, 4, 63]


def test_several_checkpoints_become_one_stacked_file_with_a_level_each(tmp_path):
    checkpoints, singles = [], []
    for quality, seed in ((2, 1), (1, 0)):
        path = tmp_path / f"bmshj2018-hyperprior-{quality}-0000abcd.pth.tar"
        torch.save(compressai_layout(small_codec("balle2018-hyperprior", seed)), path)
        checkpoints.append(str(path))
        single = tmp_path / f"single-{quality}.safetensors"
        assert CliRunner().invoke(main, ["import", "compressai", "--arch", "bmshj2018-hyperprior", str(path), "-o",
                                         str(single)]).exit_code == 0
        singles.append(licodec.load(str(single)))
    out = tmp_path / "stacked.safetensors"
    result = CliRunner().invoke(main, ["import", "compressai", "--arch", "bmshj2018-hyperprior", *checkpoints,
                                       "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    stacked = licodec.load(str(out))
    assert stacked.name == "stacked" and stacked.qualities == 2 and stacked.lmbdas == (0.0018, 0.0035)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    for quality, single in ((1, singles[1]), (2, singles[0])):  # levels by lambda, whatever the order given
        assert stacked.compress(x, quality).sections == single.compress(x, 1).sections
        data = licodec.compress(x, weights=str(out), quality=quality)
        assert licodec.decompress(data, weights=str(out)).size == (64, 64)
    with pytest.raises(licodec.CodecError, match="an integer"):
        licodec.compress(x, weights=str(out), quality=1.5)
    with pytest.raises(licodec.CodecError, match="trained one by one"):
        stacked(x, torch.tensor([0]))


def test_bad_imports_get_one_line(tmp_path):
    runner = CliRunner()

    def fails(args, fragment):
        result = runner.invoke(main, ["import", "compressai", *args])
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("licodec: ") and fragment in lines[0], lines

    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a checkpoint")
    out = str(tmp_path / "a.safetensors")
    fails(["--arch", "cheng2020-anchor", str(junk), "-o", out, "--lmbda", "0.01"], "unknown CompressAI architecture")
    fails(["--arch", "bmshj2018-factorized", str(junk), "-o", out, "--lmbda", "0.01"], "not a PyTorch checkpoint")
    fails(["--arch", "bmshj2018-factorized", str(tmp_path / "none.pth"), "-o", out], "no such checkpoint")
    partial = tmp_path / "partial.pth"
    state = compressai_layout(small_codec("balle2017-factorized"))
    del state["g_s.3.beta"]
    torch.save(state, partial)
    fails(["--arch", "bmshj2018-factorized", str(partial), "-o", out, "--lmbda", "0.01"],
          "no tensor for licodec's synthesis.3.beta.raw")
    fails(["--arch", "bmshj2018-hyperprior", str(partial), "-o", out, "--lmbda", "0.01"],
          "not a CompressAI bmshj2018-hyperprior state dict")
    fails(["--arch", "bmshj2018-factorized", str(partial), "-o", out], "give --lmbda")
    fails(["--arch", "bmshj2018-factorized", str(partial), "-o", out, "--lmbda", "0.01,0.02"], "2 lambdas for 1")
    assert not (tmp_path / "a.safetensors").exists()
    with pytest.raises(WeightsError, match="unknown CompressAI architecture"):
        convert("cheng2020-anchor", state, 0.01)


def test_against_compressai_itself():
    """Same weights, same image: licodec's file within 1 % (or 8 bytes, two of the coder's words) of CompressAI's
    strings plus licodec's header, and the same
    reconstruction to within one 8-bit level (benchmarks/compressai_import.py measures more)."""
    models = pytest.importorskip("compressai.models", reason="CompressAI is not installed (numpy conflict: see "
                                                             "benchmarks/compressai_import.py)")
    from licodec.api import compress_tensor, decompress_tensor

    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    for arch, cls in (("bmshj2018-factorized", models.FactorizedPrior),
                      ("bmshj2018-hyperprior", models.ScaleHyperprior),
                      ("mbt2018-mean", models.MeanScaleHyperprior),
                      ("mbt2018", models.JointAutoregressiveHierarchicalPriors)):
        net = cls(32, 48).eval()
        net.update(force=True)
        codec = zoo.from_bytes(zoo.to_bytes(convert(arch, net.state_dict(), 0.01), {}, half=False))
        with torch.no_grad():
            out = net.compress(x)
            theirs = net.decompress(out["strings"], out["shape"])["x_hat"]
        data = compress_tensor(x, 3, codec, 1)
        ours, header = decompress_tensor(data, weights=codec)
        overhead = len(data) - sum(header.section_lengths)
        theirs_size = sum(len(s[0]) for s in out["strings"]) + overhead
        assert abs(len(data) - theirs_size) <= max(0.01 * theirs_size, 8)  # ANS writes whole 32-bit words
        assert torch.allclose(ours, theirs.clamp(0, 1), atol=1 / 255)
