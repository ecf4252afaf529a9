"""Quality metrics on 8-bit RGB: every reconstruction is rounded to 8 bits before it is measured."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _to_8bit(x: Tensor) -> Tensor:
    return torch.round(x.clamp(0, 1) * 255).double()


def mse(x: Tensor, y: Tensor) -> float:
    """Mean squared error in 8-bit units of two images in [0, 1] (both rounded to 8 bits)."""
    return float(((_to_8bit(x) - _to_8bit(y)) ** 2).mean())


def psnr(x: Tensor, y: Tensor) -> float:
    """PSNR in dB over all RGB samples, peak 255; inf for identical images."""
    error = mse(x, y)
    return math.inf if error == 0 else 10 * math.log10(255.0**2 / error)


MS_SSIM_MIN_SIDE = 161  # five scales of an 11-tap Gaussian window


#: BT.601 luma weights (full range, as JFIF defines Y'CbCr).
BT601 = (0.299, 0.587, 0.114)


def psnr_y(x: Tensor, y: Tensor) -> float:
    """PSNR in dB of the BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B of two 8-bit RGB images (peak 255)."""
    weights = torch.tensor(BT601, dtype=torch.float64).view(1, 3, 1, 1)
    luma_x = (_to_8bit(x) * weights).sum(1)
    luma_y = (_to_8bit(y) * weights).sum(1)
    error = float(((luma_x - luma_y) ** 2).mean())
    return math.inf if error == 0 else 10 * math.log10(255.0**2 / error)


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB: -10 log10(1 - MS-SSIM) (NaN stays NaN, a perfect score is inf)."""
    if math.isnan(value):
        return math.nan
    return math.inf if value >= 1 else -10 * math.log10(1 - value)


def ms_ssim(x: Tensor, y: Tensor) -> float:
    """MS-SSIM (Wang et al. 2003) on 8-bit RGB, via pytorch-msssim; NaN for images too small for five scales."""
    from pytorch_msssim import ms_ssim as _ms_ssim

    if min(x.shape[-2:]) < MS_SSIM_MIN_SIDE:
        return math.nan
    return float(_ms_ssim(_to_8bit(x).float(), _to_8bit(y).float(), data_range=255.0))


def bpp(num_bytes: int, height: int, width: int) -> float:
    """Bits per pixel of a file of `num_bytes` for an image of height x width."""
    return 8 * num_bytes / (height * width)
