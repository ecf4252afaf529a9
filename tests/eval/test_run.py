import json
import math
import subprocess
import sys

import pytest

from licodec import zoo
from tests.conftest import kodak_image


def test_eval_command_on_two_images(tmp_path):
    kodak = kodak_image(1).parent
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for name in ("kodim01.png", "kodim02.png"):
        Image.open(kodak / name).crop((0, 0, 256, 176)).save(images / name)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "eval", "--codec", "balle2018-hyperprior,jpeg",
                             "--published", str(kodak.parents[1] / "anchors"), "--jobs", "1",
                             "--dataset", str(images), "--output", str(out)], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["mean"]) == {"balle2018-hyperprior", "jpeg"}
    levels = zoo.load("balle2018-hyperprior").qualities  # every trained level, and JPEG's 19 settings
    assert len(results["points"]) == 2 * (levels + 19)
    assert all(p["psnr_y"] > 0 for p in results["points"])
    for point in results["points"]:
        assert point["bytes"] > 0 and point["bpp"] == 8 * point["bytes"] / (256 * 176)
    assert "BD-rate against jpeg" in (out / "report.md").read_text()
    assert (out / "points.csv").read_text().count("\n") == 1 + len(results["points"])
    html = (out / "report.html").read_text()
    assert "rd_psnr.png" in html and "crops/jpeg.png" in html
    assert (out / "rd_psnr.png").stat().st_size > 1000 and (out / "rd_ms-ssim.png").exists()
    assert "Cross-check" in (out / "report.md").read_text()

    before = (out / "points.csv").read_text()  # again with --reuse: nothing is coded, the times are the same
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "eval", "--codec", "balle2018-hyperprior,jpeg",
                             "--jobs", "1", "--dataset", str(images), "--output", str(out), "--reuse"],
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert (out / "points.csv").read_text() == before


def test_crops_take_the_rate_nearest_the_target_among_all_settings():
    import torch

    from licodec.eval.report import nearest_rate
    from licodec.eval.run import Coder
    from licodec.io import read_image

    x, _ = read_image(kodak_image(23))
    x = x[..., :96, :128]
    jpeg = Coder("jpeg")
    every = {q: len(jpeg.code(x, q)[0]) * 8 / (96 * 128) for q in jpeg.all_settings()}
    assert min(jpeg.all_settings()) < min(jpeg.settings)  # more than the sweep: the codec's whole range
    target = (every[30] + every[31]) / 2 + 0.01
    setting, data, x_hat = nearest_rate(jpeg, x, target)
    assert abs(len(data) * 8 / (96 * 128) - target) == min(abs(b - target) for b in every.values())
    assert x_hat.shape == x.shape
    # Below the codec's range: its lowest rate, the closest it can reach.
    assert nearest_rate(jpeg, x, 0.001)[0] == 1
    hyperprior = Coder("balle2018-hyperprior")
    settings = hyperprior.all_settings()
    assert settings[1] - settings[0] == 1 / 16 and settings[-1] == hyperprior.settings[-1]
    setting, data, _ = nearest_rate(hyperprior, x, 0.4)
    assert 1 <= setting <= settings[-1] and abs(len(data) * 8 / (96 * 128) - 0.4) < 0.1
    assert torch.is_tensor(x_hat)


def test_eval_on_thumbnails(tmp_path):
    from PIL import Image

    from licodec.eval.run import make_thumbnails

    kodak = kodak_image(1).parent
    images = [kodak / "kodim01.png", kodak / "kodim04.png"]  # landscape and portrait
    thumbnails = make_thumbnails(images, 32, tmp_path / "thumbs")
    assert [p.name for p in thumbnails] == ["kodim01.png", "kodim04.png"]
    assert all(Image.open(p).size == (32, 32) for p in thumbnails)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "eval", "--codec", "balle2018-hyperprior,jpeg",
                             "--jobs", "1", "--limit", "2", "--thumbnails", "32", "--dataset", str(kodak),
                             "--output", str(out)], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert {p["image"] for p in results["points"]} == {"kodim01.png", "kodim02.png"}
    for point in results["points"]:
        assert point["bpp"] == 8 * point["bytes"] / (32 * 32)
    assert "32x32 thumbnails" in (out / "report.html").read_text()
    assert sorted(p.name for p in (out / "thumbnails").iterdir()) == ["kodim01.png", "kodim02.png"]


def test_progressive_codecs_are_evaluated_from_one_file(monkeypatch):
    import math

    import torch

    import licodec.api
    from licodec.api import compress_tensor, decompress_tensor
    from licodec.eval.run import Coder
    from tests.codecs.test_toderici import _small

    codec = _small("toderici2017")
    monkeypatch.setattr(licodec.api, "load", lambda name, quality=None: codec)
    x = torch.rand(1, 3, 40, 72, generator=torch.Generator().manual_seed(3))
    results = list(Coder("toderici2017").code_all(x))
    assert [r[0] for r in results] == [1.0, 2.0, 3.0, 4.0]
    for k, (_, data, x_hat, encode_s, decode_s) in enumerate(results, start=1):
        assert data == compress_tensor(x, 3, codec, k)  # the very file compress writes for k iterations
        assert torch.equal(x_hat, decompress_tensor(data)[0])
        assert decode_s > 0 and (math.isnan(encode_s) if k < 4 else encode_s > 0)
    assert [r[4] for r in results] == sorted(r[4] for r in results)


def test_unmeasured_times_read_as_a_dash():
    from licodec.eval.report import markdown_report

    point = {"quality": 2.0, "bpp": 0.25, "psnr": 30.0, "psnr_y": 31.0, "ms_ssim": 0.95, "encode_s": math.nan,
             "decode_s": 0.125}
    row = next(line for line in markdown_report({"toderici2016": [point]}, "toderici2016").splitlines()
               if line.startswith("| toderici2016 | 2"))
    assert row.endswith("| - | 0.125 |") and "nan" not in row


def test_an_evaluation_reuses_only_points_made_the_same_way(tmp_path, monkeypatch):
    from dataclasses import replace

    from PIL import Image

    from licodec.eval import run

    images = []
    for index in (1, 2):
        images.append(tmp_path / f"kodim0{index}.png")
        Image.open(kodak_image(index)).crop((0, 0, 176, 168)).save(images[-1])  # MS-SSIM needs > 160
    first = run.evaluate(["jpeg"], images, progress=False, save=tmp_path / "points.csv")
    assert {p.source for p in first} == {run.library_versions()}
    earlier = run.read_points(tmp_path / "points.csv")
    assert earlier == first

    calls = []
    coding = run.evaluate_image
    monkeypatch.setattr(run, "evaluate_image", lambda path, codecs, *rest: calls.append((path.name, codecs)) or
                        coding(path, codecs, *rest))
    second = run.evaluate(["jpeg", "webp"], images, progress=False, reuse=earlier)
    assert calls == [("kodim01.png", ["webp"]), ("kodim02.png", ["webp"])]
    assert [p for p in second if p.codec == "jpeg"] == first
    assert len([p for p in second if p.codec == "webp"]) == 2 * len(run.CLASSICAL["webp"].settings)

    calls.clear()  # made by other library versions, or missing a setting: coded again
    changed = [replace(p, source="pillow 0.1") if p.image == "kodim01.png" else p for p in earlier]
    run.evaluate(["jpeg"], images, progress=False, reuse=changed)
    run.evaluate(["jpeg"], images, progress=False, reuse=[p for p in earlier if p.quality != 50])
    assert calls == [("kodim01.png", ["jpeg"]), ("kodim01.png", ["jpeg"]), ("kodim02.png", ["jpeg"])]
    assert run.read_points(tmp_path / "missing.csv") == []
    damaged = (tmp_path / "points.csv").read_text().replace(",5,", ",five,", 1)
    (tmp_path / "damaged.csv").write_text(damaged)
    assert run.read_points(tmp_path / "damaged.csv") == []  # coded again, not a traceback


def test_an_interrupted_evaluation_keeps_the_images_it_finished(tmp_path, monkeypatch):
    from PIL import Image

    from licodec.eval import run

    images = []
    for index in (1, 2):
        images.append(tmp_path / f"kodim0{index}.png")
        Image.open(kodak_image(index)).crop((0, 0, 176, 168)).save(images[-1])
    coding = run.evaluate_image

    def interrupted(path, codecs, *rest):
        if path.name == "kodim02.png":
            raise KeyboardInterrupt
        return coding(path, codecs, *rest)

    monkeypatch.setattr(run, "evaluate_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run.evaluate(["jpeg"], images, progress=False, save=tmp_path / "out" / "points.csv")
    saved = run.read_points(tmp_path / "out" / "points.csv")
    assert {p.image for p in saved} == {"kodim01.png"} and len(saved) == len(run.CLASSICAL["jpeg"].settings)
    assert not list((tmp_path / "out").glob("*.partial"))
    monkeypatch.setattr(run, "evaluate_image", coding)
    resumed = run.evaluate(["jpeg"], images, progress=False, reuse=saved)
    assert [p for p in resumed if p.image == "kodim01.png"] == saved


def test_a_learned_codecs_points_record_its_weights_hash():
    from licodec.eval.run import _coder

    assert _coder("balle2018-hyperprior").source == zoo.load("balle2018-hyperprior").weights_hash


def test_chosen_qualities_and_progress_per_point(tmp_path):
    from PIL import Image

    from licodec.errors import LicodecError
    from licodec.eval import run

    assert run.parse_qualities(["2,4", "jpeg=10,90"], ["balle2018-hyperprior", "jpeg"]) == {
        "balle2018-hyperprior": (2.0, 4.0), "jpeg": (10.0, 90.0)}
    with pytest.raises(LicodecError, match="not among"):
        run.parse_qualities(["webp=10"], ["jpeg"])
    assert run.parse_qualities(["ours=2,4"], ["ours=mine.safetensors", "jpeg"]) == {  # a LABEL=FILE by its label
        "ours=mine.safetensors": (2.0, 4.0)}
    with pytest.raises(LicodecError, match="from 1 to"):
        run.Coder("balle2017-factorized", (0.5,))
    with pytest.raises(LicodecError, match="integer qualities"):
        run.Coder("toderici2016", (2.5,))
    image = tmp_path / "kodim01.png"
    Image.open(kodak_image(1)).crop((0, 0, 176, 168)).save(image)
    ticks = []
    points = run.evaluate_image(image, ["balle2018-hyperprior", "jpeg"],
                                {"balle2018-hyperprior": (2, 3.5), "jpeg": (20,)}, ticks.append)
    assert [(p.codec, p.quality) for p in points] == [("balle2018-hyperprior", 2), ("balle2018-hyperprior", 3.5),
                                                      ("jpeg", 20)]
    assert ticks == ["balle2018-hyperprior", "balle2018-hyperprior", "jpeg"]


def test_parallel_evaluation_matches_serial(tmp_path):
    from PIL import Image

    from licodec.eval import run

    images = []
    for index in (1, 2):
        images.append(tmp_path / f"kodim0{index}.png")
        Image.open(kodak_image(index)).crop((0, 0, 176, 168)).save(images[-1])
    settings = {"jpeg": (20, 60), "webp": (50,)}
    serial = run.evaluate(["jpeg", "webp"], images, jobs=1, progress=False, settings=settings)
    parallel = run.evaluate(["jpeg", "webp"], images, jobs=2, progress=True, settings=settings)
    key = [(p.codec, p.image, p.quality, p.bytes, p.psnr) for p in serial]
    assert key == [(p.codec, p.image, p.quality, p.bytes, p.psnr) for p in parallel] and len(key) == 6
