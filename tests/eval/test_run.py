import json
import subprocess
import sys

from tests.conftest import kodak_image


def test_eval_command_on_two_images(tmp_path):
    kodak = kodak_image(1).parent
    images = tmp_path / "images"
    images.mkdir()
    from PIL import Image

    for name in ("kodim01.png", "kodim02.png"):
        Image.open(kodak / name).crop((0, 0, 256, 176)).save(images / name)
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "licodec.cli", "eval", "--codecs", "balle2018-hyperprior,jpeg",
                             "--published", str(kodak.parents[1] / "anchors"), "--jobs", "1",
                             "--dataset", str(images), "--out", str(out)], capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert set(results["mean"]) == {"balle2018-hyperprior", "jpeg"}
    assert len(results["points"]) == 2 * (6 + 19)
    assert all(p["psnr_y"] > 0 for p in results["points"])
    for point in results["points"]:
        assert point["bytes"] > 0 and point["bpp"] == 8 * point["bytes"] / (256 * 176)
    assert "BD-rate against jpeg" in (out / "report.md").read_text()
    assert (out / "points.csv").read_text().count("\n") == 1 + len(results["points"])
    html = (out / "report.html").read_text()
    assert "rd_psnr.png" in html and "crops/jpeg.png" in html
    assert (out / "rd_psnr.png").stat().st_size > 1000 and (out / "rd_ms-ssim.png").exists()
    assert "Cross-check" in (out / "report.md").read_text()
