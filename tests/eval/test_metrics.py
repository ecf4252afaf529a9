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
    assert math.isnan(bd_rate((rates, quality), ([], [])))  # MS-SSIM undefined everywhere (thumbnails)


def test_psnr_y_uses_bt601_luma():
    from licodec.eval.metrics import psnr_y

    a = torch.zeros(1, 3, 2, 2)
    b = a.clone()
    b[0, 1] = 10 / 255  # green +10 -> luma +5.87 everywhere
    assert psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 5.87**2), abs=1e-9)


def _reference_ms_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """MS-SSIM of Wang, Simoncelli & Bovik 2003 written out with scipy, per channel, averaged over RGB."""
    from scipy.ndimage import correlate1d

    weights = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]
    taps = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    taps /= taps.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(img):  # 'valid' Gaussian filtering, separable
        out = correlate1d(img, taps, axis=0, mode="constant")[5:-5]
        return correlate1d(out, taps, axis=1, mode="constant")[:, 5:-5]

    scores = []
    for channel in range(3):
        a, b = x[..., channel].astype(np.float64), y[..., channel].astype(np.float64)
        values = []
        for level in range(5):
            mu_a, mu_b = blur(a), blur(b)
            var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
            cov = blur(a * b) - mu_a * mu_b
            cs = ((2 * cov + c2) / (var_a + var_b + c2)).mean()
            if level == 4:
                values.append((((2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)) * (2 * cov + c2)
                               / (var_a + var_b + c2)).mean())
            else:
                values.append(max(cs, 0))
                h, w = a.shape[0] // 2 * 2, a.shape[1] // 2 * 2
                a = a[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
                b = b[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
        scores.append(np.prod([v**w for v, w in zip(values, weights)]))
    return float(np.mean(scores))


def test_ms_ssim_against_an_independent_implementation():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (24, 24, 3)).astype(np.uint8)
    from PIL import Image

    x = np.asarray(Image.fromarray(base).resize((200, 192), Image.BICUBIC))
    y = np.clip(x.astype(int) + rng.integers(-12, 13, x.shape), 0, 255).astype(np.uint8)
    to_tensor = lambda a: torch.from_numpy(a.copy()).permute(2, 0, 1)[None].float() / 255  # noqa: E731
    assert ms_ssim(to_tensor(x), to_tensor(y)) == pytest.approx(_reference_ms_ssim(x, y), abs=2e-3)
