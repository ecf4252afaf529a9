"""Rate-distortion losses: L = R + lambda * D, per sample, averaged over the batch."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from licodec.codecs.base import RDOutput

METRICS = ("mse", "ms-ssim")
MIN_MS_SSIM_CROP = 161  # five scales of an 11-tap window need more than 160 pixels


def bits_per_pixel(output: RDOutput, x: Tensor) -> Tensor:
    """Estimated bits per pixel of each sample, shape (N,)."""
    return output.bits() / (x.shape[-2] * x.shape[-1])


def distortion(x_hat: Tensor, x: Tensor, metric: str) -> Tensor:
    """Per-sample distortion: MSE in 8-bit units (as CompressAI's lambdas assume) or 1 - MS-SSIM."""
    if metric == "mse":
        return ((x_hat - x) ** 2).flatten(1).mean(1) * 255.0**2
    if metric == "ms-ssim":
        from pytorch_msssim import ms_ssim

        return 1.0 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def rd_loss(output: RDOutput, x: Tensor, lmbda: Tensor, metric: str) -> dict[str, Tensor]:
    """The loss and what the progress bar shows (bpp, PSNR)."""
    bpp = bits_per_pixel(output, x)
    dist = distortion(output.x_hat, x, metric)
    mse = ((output.x_hat.detach().clamp(0, 1) - x) ** 2).flatten(1).mean(1)
    psnr = -10 * torch.log10(mse.clamp(min=1e-10))
    # A codec may add a training penalty (ADMM pruning's augmented term; mentzer2018's context model's own
    # cross-entropy).
    penalty = output.aux.get("penalty", torch.zeros_like(bpp))
    # A codec may give each sample a rate target (a two-sided form of Mentzer et al. 2018's max(H - H_t, 0)):
    # the rate term is then the distance to it, which holds the rate there from above and from below.
    rate = bpp if "rate_target" not in output.aux else torch.abs(bpp - output.aux["rate_target"])
    return {
        "loss": (rate + lmbda * dist + penalty).mean(),
        "bpp": bpp.mean().detach(),
        "psnr": psnr.mean(),
        "distortion": dist.mean().detach(),
    }


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for images in [0, 1]."""
    return -10 * math.log10(max(mse, 1e-10))
