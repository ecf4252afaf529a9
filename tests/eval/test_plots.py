import math

import pytest
from PIL import Image

from licodec.errors import LicodecError
from licodec.eval.anchors import PublishedCurve
from licodec.eval.plots import _finite, rd_plot

CURVES = {
    "balle2018-hyperprior": [{"quality": q, "bpp": b, "psnr": p, "ms_ssim": m}
                             for q, b, p, m in [(1, 0.15, 28.0, 0.93), (2, 0.3, 31.0, math.nan), (3, 0.6, 34.5, 0.98)]],
    "jpeg": [{"quality": q, "bpp": b, "psnr": p, "ms_ssim": m}
             for q, b, p, m in [(50, 0.9, 32.0, 0.975), (10, 0.33, 26.6, 0.89), (90, 2.3, 37.9, 0.993)]],
}
PUBLISHED = [
    PublishedCurve("compressai/jpeg", "CompressAI (JPEG)", "kodak", [0.22, 0.9, 3.4], [23.8, 32.1, 40.6],
                   [0.80, 0.975, 0.9956], "jpeg.json"),
    PublishedCurve("tfc/rippel2017", "TensorFlow Compression (Rippel 2017 (ICML))", "kodak", [0.1, 0.5], None,
                   [0.9, 0.98], "rippel2017.txt"),
]


@pytest.mark.parametrize("metric", ["psnr", "ms-ssim"])
def test_plot_is_a_png(tmp_path, metric):
    path = rd_plot(CURVES, metric, tmp_path / "plots" / f"rd-{metric}.png", PUBLISHED, title="Kodak")
    assert path == tmp_path / "plots" / f"rd-{metric}.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < path.stat().st_size < 1_000_000
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 600)


def test_nan_points_are_skipped_and_rates_sorted():
    rates, qualities = _finite([(0.6, 34.5), (0.15, 28.0), (0.3, math.nan), (9.0, 50.0)], max_bpp=1.0)
    assert (rates, qualities) == ([0.15, 0.6], [28.0, 34.5])


def test_empty_plot_and_bad_metric(tmp_path):
    assert rd_plot({}, "psnr", tmp_path / "empty.png").exists()
    with pytest.raises(LicodecError, match="unknown metric 'ssim'"):
        rd_plot(CURVES, "ssim", tmp_path / "x.png")
