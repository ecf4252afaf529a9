import math

import numpy as np
import pytest
import torch

from licodec.eval.bdrate import bd_rate
from licodec.eval.metrics import bpp, ms_ssim, psnr


def test_psnr_against_a_direct_computation():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 3, 16, 16)).astype(np.float64)
    b = np.clip(a + rng.integers(-3, 4, a.shape), 0, 255)
    expected = 10 * math.log10(255**2 / ((a - b) ** 2).mean())
    assert psnr(torch.from_numpy(a) / 255, torch.from_numpy(b) / 255) == pytest.approx(expected, abs=1e-9)
    assert psnr(torch.from_numpy(a) / 255, torch.from_numpy(a) / 255) == math.inf


def test_ms_ssim_of_identical_and_different_images():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 192, 192)
    assert ms_ssim(x, x) == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim(x, (x + 0.2 * torch.randn_like(x)).clamp(0, 1)) < 0.9
    assert math.isnan(ms_ssim(x[..., :100, :], x[..., :100, :]))


def test_bpp_counts_bits_per_pixel():
    assert bpp(96, 16, 12) == 4.0


def test_bd_rate_of_a_uniformly_cheaper_curve():
    rates = [0.25, 0.5, 1.0, 2.0, 4.0]
    quality = [28.0, 31.0, 34.0, 37.0, 40.0]
    assert bd_rate((rates, quality), (rates, quality)) == pytest.approx(0.0, abs=1e-9)
    half = [r * 0.5 for r in rates]
    for method in ("cubic", "pchip"):
        assert bd_rate((rates, quality), (half, quality), method) == pytest.approx(-50.0, abs=1e-6)
    assert math.isnan(bd_rate((rates, quality), (rates, [q + 50 for q in quality])))
