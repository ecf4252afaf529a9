"""Cool-chic (ladune2023-coolchic): real files, exact decoding at 1 and 2 threads, damage, the API and CLI."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import licodec
from licodec.api import compress_tensor, decompress_tensor, load
from licodec.cli import main
from licodec.codecs import ladune2023
from licodec.codecs.ladune2023 import CoolChic
from licodec.errors import LicodecError
from tests.conftest import assert_damage_is_handled

NAME = "ladune2023-coolchic"


def _image(height=32, width=32, seed=0):
    torch.manual_seed(seed)
    base = torch.rand(1, 3, height // 6 + 2, width // 6 + 2)
    x = torch.nn.functional.interpolate(base, size=(height, width), mode="bicubic", align_corners=False)
    return torch.round(x.clamp(0, 1) * 255) / 255


def _codec():
    codec = CoolChic()
    codec.progress = False
    return codec


@pytest.fixture(scope="module")
def fitted():
    """A short fit of a 40x70 image (two padded grids' worth of odd size) and its sections."""
    codec = _codec()
    x = _image(40, 70)
    target = codec.pad(x)
    fit = codec.fit(target, 40, 70, codec.lmbda(3), 40)
    with torch.no_grad():
        sections = codec.finish(fit, target, 40, 70, codec.lmbda(3))
    return codec, x, fit, sections


def test_decoder_rebuilds_the_encoders_latents_and_image(fitted):
    codec, x, fit, sections = fitted
    encoded = licodec.codecs.base.Encoded(sections, 40, 70, 4)
    grids = codec.decode_latents(encoded)
    assert all(np.array_equal(g, torch.round(f.detach()).long().numpy()) for g, f in zip(grids, fit.latents))
    with torch.no_grad():  # finish() left the encoder's decoder at its quantized weights
        expected = fit.decoder.synthesis(fit.decoder.upsample([torch.round(f.detach()) for f in fit.latents]))
    assert torch.equal(codec.decompress(encoded), expected[..., :40, :70].clamp(0, 1))
    for name, _ in sum(ladune2023.NETWORKS.values(), []):  # the file carries exactly the encoder's tensors
        assert torch.equal(getattr(codec.read_decoder(sections)[0], name), getattr(fit.decoder, name))


def test_decoding_is_identical_at_one_and_two_threads(fitted):
    codec, _, _, sections = fitted
    encoded = licodec.codecs.base.Encoded(sections, 40, 70, 4)
    saved = torch.get_num_threads()
    try:
        out = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out.append((codec.decode_latents(encoded), codec.decompress(encoded)))
    finally:
        torch.set_num_threads(saved)
    assert all(np.array_equal(a, b) for a, b in zip(out[0][0], out[1][0]))
    assert torch.equal(out[0][1], out[1][1])


def test_file_round_trip_through_the_api_needs_no_weights_file(monkeypatch):
    monkeypatch.setitem(ladune2023.EFFORT_ITERATIONS, 1, 200)
    codec = load(NAME)
    assert codec.weights_hash == CoolChic().architecture_hash()
    x = _image()
    with codec.encoding(progress=False):
        data = compress_tensor(x, 3, codec, 3, effort=1)
    x_hat, header = decompress_tensor(data)
    assert header.codec == NAME and x_hat.shape == x.shape
    assert float(((x_hat - x) ** 2).mean()) < float(((x - x.mean((2, 3), keepdim=True)) ** 2).mean())


def test_more_iterations_or_quality_change_the_file():
    codec = _codec()
    x = _image(seed=3)
    low = codec.compress(x, 1, iterations=30)
    high = codec.compress(x, 8, iterations=30)
    assert sum(map(len, high.sections)) > sum(map(len, low.sections))


def test_damaged_and_truncated_files_are_reported_cleanly(fitted):
    codec, _, _, sections = fitted
    from licodec.api import pack as _pack

    data = _pack(codec, licodec.codecs.base.Encoded(sections, 40, 70, 4), 3)
    assert_damage_is_handled(data, 40, 0)
    for cut in (5, 30, len(data) // 2, len(data) - 1):
        with pytest.raises(LicodecError):
            decompress_tensor(data[:cut])
    wrong = licodec.codecs.base.Encoded(sections[:3], 40, 70, 4)
    with pytest.raises(LicodecError):
        codec.decompress(wrong)


def test_effort_is_checked():
    codec = _codec()
    with pytest.raises(LicodecError):
        codec.compress(_image(), 3, effort=6)
    with pytest.raises(LicodecError):
        with codec.encoding(effort=0):
            pass


def test_cli_compress_and_decompress(tmp_path, monkeypatch):
    monkeypatch.setitem(ladune2023.EFFORT_ITERATIONS, 1, 20)
    from PIL import Image

    source = tmp_path / "a.png"
    Image.fromarray((_image(24, 20)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(source)
    runner = CliRunner()
    result = runner.invoke(main, ["compress", str(source), "--codec", NAME, "-q", "2.5", "--effort", "1",
                                  "-o", str(tmp_path / "a.lic")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["decompress", str(tmp_path / "a.lic"), "-o", str(tmp_path / "b.png")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "b.png").size == (20, 24)
    result = runner.invoke(main, ["compress", str(source), "--codec", NAME, "--effort", "9"])
    assert result.exit_code != 0 and "effort" in result.output


def test_interrupt_leaves_no_partial_file(tmp_path, monkeypatch):
    from PIL import Image

    source = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(source)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ladune2023, "rd_pass", interrupted)
    result = CliRunner().invoke(main, ["compress", str(source), "--codec", NAME, "--effort", "1"])
    assert result.exit_code == 130
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]


def test_rate_control_warm_starts_from_the_previous_lambda(monkeypatch):
    codec = _codec()
    x = _image(64, 64, seed=5)
    monkeypatch.setitem(ladune2023.EFFORT_ITERATIONS, 1, 20)
    ends = [8 * len(compress_tensor(x, 3, codec, q, effort=1)) / (64 * 64) for q in (1, 8)]
    counts = []
    original = CoolChic.fit

    def counting(self, target, height, width, lmbda, n, start=None, seed=0):
        counts.append((n, start is not None))
        return original(self, target, height, width, lmbda, n, start, seed)

    monkeypatch.setattr(CoolChic, "fit", counting)
    from licodec.api import compress_to_target

    target = sum(ends) / 2
    data, reached = compress_to_target(x, 3, codec, "bpp", target, effort=1)
    assert reached.evaluations == len(counts) >= 2
    assert counts[0] == (20, False) and all(warm and n == 10 for n, warm in counts[1:])
    assert 8 * len(data) / (64 * 64) <= target


def test_eval_records_the_effort(tmp_path, monkeypatch):
    from PIL import Image

    from licodec.eval.run import evaluate

    monkeypatch.setitem(ladune2023.EFFORT_ITERATIONS, 1, 10)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray((_image(16, 16)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(
        folder / "a.png")
    points = evaluate([NAME], [folder / "a.png"], jobs=1, progress=False, effort=1)
    assert len(points) == 8 and all(p.source.endswith("+effort1") for p in points)
    result = CliRunner().invoke(main, ["eval", "--codecs", NAME, "--dataset", str(folder), "--out",
                                       str(tmp_path / "out"), "--jobs", "1", "--effort", "1"])
    assert result.exit_code == 0, result.output
    assert "+effort1" in (tmp_path / "out" / "points.csv").read_text()


def test_an_interrupted_evaluation_keeps_each_finished_encode(tmp_path, monkeypatch):
    """An overfitted codec's encodes are units of their own: those done before an interruption are saved and
    kept by --reuse, and only the others are coded again."""
    from PIL import Image

    from licodec.eval import run

    monkeypatch.setitem(ladune2023.EFFORT_ITERATIONS, 1, 10)
    monkeypatch.setitem(ladune2023.EFFORT_ITERATIONS, 2, 10)
    path = tmp_path / "a.png"
    Image.fromarray((_image(16, 16)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    coding, calls = run.evaluate_image, []

    def interrupted(image, codecs, settings, *rest, **options):
        calls.append(settings[NAME])
        if settings[NAME] == (3,):
            raise KeyboardInterrupt
        return coding(image, codecs, settings, *rest, **options)

    monkeypatch.setattr(run, "evaluate_image", interrupted)
    save = tmp_path / "points.csv"
    with pytest.raises(KeyboardInterrupt):
        run.evaluate([NAME], [path], progress=False, effort=1, settings={NAME: (1, 2, 3, 4)}, save=save)
    saved = run.read_points(save)
    assert [p.quality for p in saved] == [1, 2]
    calls.clear()
    monkeypatch.setattr(run, "evaluate_image", lambda *a, **k: calls.append(a[2][NAME]) or coding(*a, **k))
    points = run.evaluate([NAME], [path], progress=False, effort=1, settings={NAME: (1, 2, 3, 4)}, reuse=saved)
    assert calls == [(3,), (4,)] and [p.quality for p in points] == [1, 2, 3, 4] and points[:2] == saved
    calls.clear()  # points of another effort are not the same encode
    run.evaluate([NAME], [path], progress=False, effort=2, settings={NAME: (1, 2)}, reuse=saved)
    assert calls == [(1,), (2,)]


def test_the_same_encode_gives_the_same_file():
    codec = _codec()
    x = _image(seed=7)
    first = codec.compress(x, 4, iterations=20)
    assert codec.compress(x, 4, iterations=20).sections == first.sections
