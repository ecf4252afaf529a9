import json
import math

import pytest

from licodec.errors import LicodecError
from licodec.eval.anchors import PublishedCurve, find, load_published
from tests.conftest import SHARED

ANCHORS = SHARED / "anchors"


@pytest.fixture(scope="module")
def kodak() -> list[PublishedCurve]:
    if not ANCHORS.is_dir():
        pytest.skip(f"{ANCHORS} not available")
    return load_published(ANCHORS, "kodak")


def only(curves: list[PublishedCurve], name: str) -> PublishedCurve:
    matches = [curve for curve in curves if curve.name == name]
    assert len(matches) == 1, [curve.name for curve in find(curves, name)]
    return matches[0]


def test_compressai_hyperprior_matches_the_readme(kodak):
    curve = only(kodak, "compressai/compressai-bmshj2018-hyperprior_mse_cuda")
    assert curve.dataset == "kodak" and curve.source.startswith("CompressAI (bmshj2018-hyperprior")
    assert curve.path.endswith("compressai-kodak/compressai-bmshj2018-hyperprior_mse_cuda.json")
    assert len(curve.bpp) == len(curve.psnr) == len(curve.ms_ssim) == 8
    # README, "Learned models" table: q1 0.131 / 27.58 / 0.9174, q4 0.478 / 32.84 / 0.9749, q8 1.660 / 40.56 / 0.9955
    for index, (bpp, psnr, ms_ssim) in {0: (0.131, 27.58, 0.9174), 3: (0.478, 32.84, 0.9749),
                                        7: (1.660, 40.56, 0.9955)}.items():
        assert curve.bpp[index] == pytest.approx(bpp, abs=5e-4)
        assert curve.psnr[index] == pytest.approx(psnr, abs=5e-3)
        assert curve.ms_ssim[index] == pytest.approx(ms_ssim, abs=5e-5)


def test_classical_curves_keep_the_file_order(kodak):
    jpeg = only(kodak, "compressai/jpeg")
    # README, "Classical codecs": JPEG quality 5 -> 0.221 / 23.78 / 0.8031, quality 95 -> 3.401 / 40.56 / 0.9956
    assert len(jpeg.bpp) == 19
    assert (jpeg.bpp[0], jpeg.psnr[0], jpeg.ms_ssim[0]) == pytest.approx((0.221, 23.78, 0.8031), abs=5e-3)
    assert (jpeg.bpp[-1], jpeg.psnr[-1], jpeg.ms_ssim[-1]) == pytest.approx((3.401, 40.56, 0.9956), abs=5e-3)
    jpeg2000 = only(kodak, "compressai/jpeg2000")
    assert jpeg2000.bpp[0] == pytest.approx(2.3973, abs=1e-4) and jpeg2000.psnr[0] == pytest.approx(39.79, abs=5e-3)


def test_paper_results_in_db_and_8bit_files(kodak):
    checkerboard = only(kodak, "compressai/paper-cheng2020-checkerboard-6M_ms-ssim")
    assert checkerboard.psnr is None
    assert -10 * math.log10(1 - checkerboard.ms_ssim[0]) == pytest.approx(7.059, abs=1e-6)
    assert only(kodak, "compressai/paper-bmshj2018-hyperprior").ms_ssim is None
    eight_bit = find(kodak, "8bit-decoded/compressai-bmshj2018-hyperprior")
    assert [c.name for c in eight_bit] == ["compressai/8bit-decoded/compressai-bmshj2018-hyperprior_ms-ssim_ans_cuda",
                                           "compressai/8bit-decoded/compressai-bmshj2018-hyperprior_mse_ans_cuda"]
    assert "mse-8bit" in eight_bit[0].source  # the file's own name says what it is


def test_tfc_results_parse(kodak):
    balle = only(kodak, "tfc/balle-2018-iclr-opt-mse")
    assert balle.source == "TensorFlow Compression (Ballé 2018 (ICLR, opt. MSE))"
    assert balle.path.endswith("tfc-results/kodak/PSNR_sRGB_RGB/balle-2018-iclr-opt-mse.txt")
    assert len(balle.bpp) == len(balle.psnr) == len(balle.ms_ssim) == 8
    assert (balle.bpp[-1], balle.psnr[-1]) == (1.727503, 40.794920)
    assert only(kodak, "tfc/balle-2018-iclr").ms_ssim[-1] == 0.995267
    rippel = only(kodak, "tfc/rippel2017")
    assert rippel.psnr is None and rippel.ms_ssim[-1] == 0.996330
    assert only(kodak, "tfc/minnen-2020-icip").ms_ssim is None
    assert only(kodak, "tfc/webp").name != only(kodak, "compressai/webp").name
    assert len({curve.name for curve in kodak}) == len(kodak)


def test_other_datasets_and_find(kodak):
    tecnick = load_published(ANCHORS, "tecnick")
    assert tecnick and all(c.name.startswith("tfc/") and c.dataset == "tecnick" for c in tecnick)
    professional = load_published(ANCHORS, "clic2020-professional")
    assert all(c.name.startswith("compressai/") for c in professional)
    assert find(professional, "BMSHJ2018-HYPERPRIOR_MSE_CUDA")[0].psnr[0] > 25
    assert find(kodak, "no such codec") == []


def test_errors_are_one_line(tmp_path):
    with pytest.raises(LicodecError, match="no published results for dataset 'imagenet'"):
        load_published(tmp_path, "imagenet")
    with pytest.raises(LicodecError, match=f"no published results for kodak under {tmp_path}"):
        load_published(tmp_path, "kodak")
    folder = tmp_path / "compressai-kodak"
    folder.mkdir()
    (folder / "broken.json").write_text(json.dumps({"name": "x", "results": {"bpp": [0.1], "psnr-rgb": [1, 2]}}))
    with pytest.raises(LicodecError, match="broken.json: results.psnr-rgb has 2 values for 1 rates"):
        load_published(tmp_path, "kodak")
    (folder / "broken.json").write_text("{")
    with pytest.raises(LicodecError, match="not a CompressAI results file"):
        load_published(tmp_path, "kodak")


def test_tfc_files_with_different_rates_stay_apart(tmp_path):
    psnr, ms_ssim = tmp_path / "tfc-results/tecnick/PSNR_sRGB_RGB", tmp_path / "tfc-results/tecnick/MS-SSIM_sRGB_RGB"
    psnr.mkdir(parents=True)
    ms_ssim.mkdir(parents=True)
    (psnr / "codec.txt").write_text('# Aggregate rate-distortion data for "Codec" on tecnick.\n#\n\n0.5, 30.0\n1, 35\n')
    (ms_ssim / "codec.txt").write_text("0.4, 0.95\n")
    curves = load_published(tmp_path, "tecnick")
    assert [(c.name, c.bpp, c.psnr, c.ms_ssim) for c in curves] == [
        ("tfc/codec", [0.5, 1.0], [30.0, 35.0], None), ("tfc/codec (MS-SSIM)", [0.4], None, [0.95])]
    assert curves[0].source == "TensorFlow Compression (Codec)"
    (ms_ssim / "codec.txt").write_text("0.4; 0.95\n")
    with pytest.raises(LicodecError, match="line 1 is not 'bpp, value'"):
        load_published(tmp_path, "tecnick")
