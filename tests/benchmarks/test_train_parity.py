"""benchmarks/train_parity.py without training: its summary of a results JSON and its refusals."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_parity.py"


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location("train_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results(ours_scale: float, ours_seconds: float) -> dict:
    """Four points a curve: licodec's at `ours_scale` times CompressAI's bits for the same PSNR."""
    models = {}
    for i, lmbda in enumerate((0.0018, 0.0035, 0.0067, 0.013)):
        bpp, psnr = 0.2 * 1.6**i, 28.0 + 1.5 * i
        models[f"compressai/{lmbda:g}"] = {"steps": 100, "seconds": 100.0, "eval": {"bpp": bpp, "psnr": psnr}}
        models[f"licodec/{lmbda:g}"] = {"steps": 100, "seconds": 100.0 * ours_seconds,
                                       "eval": {"bpp": bpp * ours_scale, "psnr": psnr}}
    return {"config": {"steps": 100, "crop": 128, "batch": 8, "threads": 1, "limit": 24}, "models": models,
            "cpu": "test CPU", "load": "0.00 0.00 0.00"}


def test_the_last_line_reads_the_bd_rate_and_the_time_ratio(parity):
    lines = parity.summary(_results(ours_scale=0.9, ours_seconds=0.5))
    match = re.fullmatch(r"licodec vs CompressAI after 100 steps: BD-rate (-?[\d.]+) %, time per step ([\d.]+) x",
                         lines[-1])
    assert match, lines[-1]
    assert float(match[1]) == pytest.approx(-10.0, abs=0.01)
    assert float(match[2]) == pytest.approx(0.5)
    assert any("test CPU" in line for line in lines)


def test_too_few_points_give_nan_and_say_why(parity):
    results = _results(1.0, 1.0)
    results["models"] = {k: v for k, v in results["models"].items() if k.endswith(("0.0018", "0.0035"))}
    lines = parity.summary(results)
    assert "needs four points" in lines[-3] and "BD-rate nan %" in lines[-1]


def test_report_and_refusals(parity, tmp_path, capsys):
    (tmp_path / "results.json").write_text(json.dumps(_results(1.1, 2.0)))
    parity.main(["--out", str(tmp_path), "--report"])
    assert capsys.readouterr().out.splitlines()[-1].endswith("time per step 2.000 x")
    with pytest.raises(SystemExit, match="other settings"):  # a folder keeps the models of one setting
        (tmp_path / "results.json").write_text(json.dumps({"config": {"steps": 5}, "models": {}}))
        parity.main(["--out", str(tmp_path), "--steps", "10"])
    with pytest.raises(SystemExit, match="no .*results.json to report"):
        parity.main(["--out", str(tmp_path / "none"), "--report"])
    with pytest.raises(SystemExit):
        parity.main(["--lambdas", "a,b"])
