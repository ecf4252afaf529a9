"""licodec.eval.report: what the report says it measured, which published curves it draws, its order and its
CompressAI-format JSON."""

import json
from pathlib import Path

import pytest
from PIL import Image

from licodec.errors import LicodecError
from licodec.eval import report
from licodec.eval.anchors import PublishedCurve
from licodec.eval.run import evaluate
from tests.conftest import kodak_image

KODAK = [Path(f"kodim{i:02d}.png") for i in range(1, 25)]


def _curve(name):
    return PublishedCurve(name, "test", "kodak", [0.2, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 38.0],
                          [0.9, 0.95, 0.97, 0.99], name)


def test_published_curves_are_only_those_asked_for():
    everything = [_curve(n) for n in ("compressai/jpeg", "compressai/jpeg2000", "compressai/webp", "tfc/jpeg420")]
    assert [c.name for c in report.choose_published(everything, ["compressai/jpeg"], [])] == ["compressai/jpeg"]
    assert [c.name for c in report.choose_published(everything, ["webp"], [])] == ["compressai/webp"]
    with pytest.raises(LicodecError, match="names 3 published curves"):
        report.choose_published(everything, ["jpeg"], [])
    with pytest.raises(LicodecError, match="names 0"):
        report.choose_published(everything, ["bpg"], [])
    # Without names: the published twin of each evaluated codec, nothing else.
    assert [c.name for c in report.choose_published(everything, None, ["jpeg", "balle2018-hyperprior"])] == [
        "compressai/jpeg"]


def test_warning_when_published_curves_cover_other_images():
    assert report.coverage_warning(KODAK, "kodak") == ""
    assert "measured 4 images" in report.coverage_warning(KODAK[:4], "kodak")
    assert "32x32 thumbnails" in report.coverage_warning(KODAK, "kodak", thumbnails=32)
    renamed = [Path(f"photo{i}.png") for i in range(24)]
    assert "24 kodak images" in report.coverage_warning(renamed, "kodak")
    assert "cannot tell" in report.coverage_warning(KODAK, "clic2020-mobile")
    note = report.measured_note(KODAK[:4], "kodak", available=24)
    assert note.startswith("Measured on 4 images of kodak (the first 4 of 24): kodim01.png, kodim02.png")


def test_report_order_and_compressai_json(tmp_path):
    images = []
    for index in (1, 2):
        images.append(tmp_path / f"kodim0{index}.png")
        Image.open(kodak_image(index)).crop((0, 0, 176, 168)).save(images[-1])
    points = evaluate(["jpeg", "webp"], images, progress=False, settings={"jpeg": (10, 30, 50, 70),
                                                                           "webp": (10, 30, 50, 70)})
    anchors = kodak_image(1).parents[2] / "anchors"
    out = tmp_path / "out"
    text = report.write_report(out, points, images, "jpeg", published=anchors, published_names=None, crop_bpp=0.5,
                               dataset="kodak", available=24)
    assert text.startswith("Measured on 2 images of kodak (the first 2 of 24)")
    order = [text.index(s) for s in ("Warning: the published curves", "BD-rate against jpeg", "rd_psnr.png",
                                     "| codec | setting |")]
    assert order == sorted(order)
    assert "Published curves drawn: `compressai/jpeg`, `compressai/webp`." in text
    html = (out / "report.html").read_text()
    assert html.index("BD-rate against") < html.index("rd_psnr.png") < html.index("Every point")
    data = json.loads((out / "compressai" / "jpeg.json").read_text())
    assert data["name"] == "jpeg" and "2 images" in data["description"]
    results = data["results"]
    assert results["quality"] == [10, 30, 50, 70] and len(results["bpp"]) == 4
    assert results["psnr-rgb"] == results["psnr"] and all(0 < v < 1 for v in results["ms-ssim-rgb"])
    assert json.loads((out / "results.json").read_text())["count"] == 2
