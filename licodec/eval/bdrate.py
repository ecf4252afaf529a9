"""Bjontegaard delta rate between two rate-distortion curves (through the `bjontegaard` package)."""

from __future__ import annotations

import math
import warnings

import numpy as np


def _monotone(rates: list[float], quality: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Sort by rate and drop points that do not improve quality (interpolation needs monotone curves)."""
    order = np.argsort(rates)
    kept_rates, kept_quality = [], []
    for i in order:
        if not kept_quality or quality[i] > kept_quality[-1]:
            kept_rates.append(rates[i])
            kept_quality.append(quality[i])
    return np.array(kept_rates), np.array(kept_quality)


def bd_rate(anchor: tuple[list[float], list[float]], test: tuple[list[float], list[float]],
            method: str = "cubic") -> float:
    """BD-rate of `test` against `anchor` in percent (negative: fewer bits at equal quality).

    Each curve is (rates in bpp, qualities in dB). `method` is "cubic" (VCEG-M33) or "pchip" (VCEG-AL22). NaN when
    the curves do not overlap in quality or either has fewer than four points (none where the metric is undefined,
    such as MS-SSIM on thumbnails).
    """
    import bjontegaard

    anchor_rates, anchor_quality = _monotone(*anchor)
    test_rates, test_quality = _monotone(*test)
    if len(anchor_rates) < 4 or len(test_rates) < 4:
        return math.nan
    low = max(anchor_quality.min(), test_quality.min())
    high = min(anchor_quality.max(), test_quality.max())
    if high <= low:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(bjontegaard.bd_rate(anchor_rates, anchor_quality, test_rates, test_quality, method=method,
                                         require_matching_points=False, min_overlap=0.0))
