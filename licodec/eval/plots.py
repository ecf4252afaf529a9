"""Rate-distortion plots: our measured curves as solid lines with markers, published ones dashed.

The axes follow the convention of the CompressAI and TensorFlow Compression result plots: bits per pixel against
RGB PSNR in dB, or against MS-SSIM in dB, -10 log10(1 - MS-SSIM), which spreads the high-quality end where
MS-SSIM crowds near 1 (TensorFlow Compression, `results/image_compression/README.md`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from licodec.errors import LicodecError
from licodec.eval.anchors import PublishedCurve
from licodec.eval.report import ms_ssim_db

METRICS = {"psnr": "PSNR (dB)", "ms-ssim": "MS-SSIM (dB)"}


def _quality(metric: str, psnr: float | None, ms_ssim: float | None) -> float:
    """The y value of a point, NaN where the metric is missing."""
    if metric == "psnr":
        return math.nan if psnr is None else psnr
    return math.nan if ms_ssim is None else ms_ssim_db(ms_ssim)


def _finite(pairs: list[tuple[float, float]], max_bpp: float = math.inf) -> tuple[list[float], list[float]]:
    """The pairs with finite values and a rate up to `max_bpp`, sorted by rate, as (rates, qualities)."""
    kept = sorted((r, q) for r, q in pairs if math.isfinite(r) and math.isfinite(q) and r <= max_bpp)
    return [r for r, _ in kept], [q for _, q in kept]


def _published_pairs(curve: PublishedCurve, metric: str) -> list[tuple[float, float]]:
    values = curve.psnr if metric == "psnr" else curve.ms_ssim
    if values is None:
        return []
    return [(r, _quality(metric, v, v)) for r, v in zip(curve.bpp, values)]


def rd_plot(curves: dict[str, list[dict]], metric: str, path: Path, published: Sequence[PublishedCurve] = (),
            title: str = "") -> Path:
    """Draw bpp against `metric` ("psnr" or "ms-ssim") and save the PNG at `path`; returns `path`.

    `curves` maps a codec to its points, dicts with "bpp", "psnr" and "ms_ssim" as `eval.run.mean_curves` gives.
    Points whose value is NaN are skipped. Published curves lacking the metric are left out, and their points
    beyond 1.25 times our largest rate are cut, so that the range we measured fills the plot.
    """
    if metric not in METRICS:
        raise LicodecError(f"unknown metric {metric!r} for a plot (known: {', '.join(METRICS)})")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    ours = {name: _finite([(p["bpp"], _quality(metric, p.get("psnr"), p.get("ms_ssim"))) for p in points])
            for name, points in curves.items()}
    rates = [rate for x, _ in ours.values() for rate in x]
    max_bpp = 1.25 * max(rates) if rates else math.inf
    for name, (x, y) in ours.items():
        if x:
            axes.plot(x, y, marker="o", markersize=4, linewidth=1.5, label=name)
    for curve in published:
        x, y = _finite(_published_pairs(curve, metric), max_bpp)
        if x:
            axes.plot(x, y, linestyle="--", marker=".", markersize=3, linewidth=1, label=f"{curve.name} (published)")
    axes.set_xlabel("bits per pixel (bpp)")
    axes.set_ylabel(METRICS[metric])
    axes.set_title(title or f"Rate-distortion, {METRICS[metric]}")
    axes.grid(True, alpha=0.3)
    if axes.lines:
        axes.legend(loc="lower right", fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path
