"""Training objectives. A codec names its own in `Codec.objective`; `OBJECTIVES` maps the names to functions.

Every objective is `objective(codec, output, x, lmbda, metric, discriminator=None) -> terms`: `output` is the
codec's `RDOutput` on the batch `x`, `lmbda` the lambda of each sample (N,) (None where the levels are not
lambdas), `metric` "mse" or "ms-ssim", `discriminator` given for adversarial training only. `terms["loss"]` is the
scalar to minimise; "bpp" and "psnr" (and "g" for the generator's adversarial term) are what the progress bar
shows. Objectives change no state of the codec (`Codec.after_step` sees the terms).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codecs.base import Codec, RDOutput

METRICS = ("mse", "ms-ssim")
MIN_MS_SSIM_CROP = 161  # five scales of an 11-tap window need more than 160 pixels
MSE_FLOOR = 1e-10  # the PSNR of a perfect reconstruction is reported as 100 dB, not infinity


def bits_per_pixel(output: RDOutput, x: Tensor) -> Tensor:
    """Estimated bits per pixel of each sample, shape (N,)."""
    return output.bits() / (x.shape[-2] * x.shape[-1])


def psnr(x_hat: Tensor, x: Tensor) -> Tensor:
    """PSNR in dB of each sample (N,), images in [0, 1], x_hat clamped; no gradient."""
    mse = ((x_hat.detach().clamp(0, 1) - x) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp(min=MSE_FLOOR))


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB for images in [0, 1]."""
    return -10 * math.log10(max(mse, MSE_FLOOR))


def colour_distortion(x_hat: Tensor, x: Tensor, size: int = 8) -> Tensor:
    """Per-sample MSE (8-bit units) of the images' `size` x `size` block means: the error in colour and
    brightness at low frequency, the part MS-SSIM barely sees (its mean term enters at the coarsest scale only)."""
    return distortion(F.avg_pool2d(x_hat, size), F.avg_pool2d(x, size), "mse")


def distortion(x_hat: Tensor, x: Tensor, metric: str) -> Tensor:
    """Per-sample distortion: MSE in 8-bit units (as CompressAI's lambdas assume) or 1 - MS-SSIM."""
    if metric == "mse":
        return ((x_hat - x) ** 2).flatten(1).mean(1) * 255.0**2
    if metric == "ms-ssim":
        from pytorch_msssim import ms_ssim

        return 1.0 - ms_ssim(x_hat.clamp(0, 1), x, data_range=1.0, size_average=False)
    raise ValueError(f"unknown metric {metric!r}; expected one of {METRICS}")


def rd_loss(output: RDOutput, x: Tensor, lmbda: Tensor, metric: str) -> dict[str, Tensor]:
    """R + lambda * D, per sample, averaged over the batch.

    `output.aux` may add a training penalty ("penalty": ADMM pruning's augmented term, mentzer2018's context
    model's own cross-entropy) and a rate target per sample ("rate_target": the rate term is then the distance to
    it, a two-sided form of Mentzer et al. 2018's max(H - H_t, 0))."""
    bpp = bits_per_pixel(output, x)
    dist = distortion(output.x_hat, x, metric)
    penalty = output.aux.get("penalty", torch.zeros_like(bpp))
    rate = bpp if "rate_target" not in output.aux else torch.abs(bpp - output.aux["rate_target"])
    return {
        "loss": (rate + lmbda * dist + penalty).mean(),
        "bpp": bpp.mean().detach(),
        "psnr": psnr(output.x_hat, x).mean(),
        "distortion": dist.mean().detach(),
    }


def rate_distortion(codec: Codec, output: RDOutput, x: Tensor, lmbda: Tensor, metric: str,
                    discriminator: nn.Module | None = None) -> dict[str, Tensor]:
    """The transform codecs' objective: `rd_loss`."""
    return rd_loss(output, x, lmbda, metric)


def residual(codec: Codec, output: RDOutput, x: Tensor, lmbda: Tensor | None, metric: str,
             discriminator: nn.Module | None = None) -> dict[str, Tensor]:
    """[1], [2]: the mean absolute residual summed over iterations (`aux["residual"]`), plus the context model's
    rate (which trains the context model only: its input codes are detached)."""
    bpp = bits_per_pixel(output, x)
    return {"loss": output.aux["residual"].mean() + bpp.mean(), "bpp": bpp.mean().detach(),
            "psnr": psnr(output.x_hat, x).mean()}


def generator_adversarial(discriminator: nn.Module, x_hat: Tensor) -> Tensor:
    """Least-squares GAN term of the generator: D's maps on x_hat towards 1 (mean over D's scales)."""
    fake = discriminator(x_hat)
    return sum(((scale[-1] - 1) ** 2).mean() for scale in fake) / len(fake)


def discriminator_loss(x: Tensor, x_hat: Tensor, discriminator: nn.Module) -> Tensor:
    """Least-squares GAN loss of D: real towards 1, generated towards 0."""
    real, fake = discriminator(x), discriminator(x_hat.detach())
    return sum(((r[-1] - 1) ** 2).mean() + (f[-1] ** 2).mean() for r, f in zip(real, fake)) / len(real)


def adaptive_codelength(codec: Codec, output: RDOutput, x: Tensor, lmbda: Tensor | None, metric: str,
                        discriminator: nn.Module | None = None) -> dict[str, Tensor]:
    """[6]: lambda * D + alpha * ACR (`aux["acr"]`) + the context model's bits (which train the context model;
    its input bits carry no gradient), with `codec.config`'s lambda, `mse_weight` (an MSE term beside MS-SSIM,
    which is nearly blind to shifts of colour), `colour_weight` (`colour_distortion`: the MSE of 8x8 block means
    only, which corrects colour without competing with MS-SSIM for detail) and the codec's current `alpha`; plus
    the generator's adversarial term when a discriminator is given."""
    bpp = bits_per_pixel(output, x)
    config = codec.config
    loss = config["lmbda"] * distortion(output.x_hat, x, metric) + codec.alpha * output.aux["acr"] + bpp
    if config["mse_weight"]:
        loss = loss + config["mse_weight"] * distortion(output.x_hat, x, "mse")
    if config.get("colour_weight"):
        loss = loss + config["colour_weight"] * colour_distortion(output.x_hat, x)
    terms = {"loss": loss.mean(), "bpp": bpp.mean().detach(), "psnr": psnr(output.x_hat, x).mean()}
    if discriminator is not None:
        adversarial = generator_adversarial(discriminator, output.x_hat)
        terms["loss"] = terms["loss"] + adversarial
        terms["g"] = adversarial.detach()
    return terms


def generative(codec: Codec, output: RDOutput, x: Tensor, lmbda: Tensor | None, metric: str,
               discriminator: nn.Module | None = None) -> dict[str, Tensor]:
    """[7]'s GC objective: least-squares GAN + feature matching + MSE (whatever `metric` says), with
    `codec.config`'s feature_weight and mse_weight; plus the symbol model's rate."""
    if discriminator is None:
        raise ValueError(f"{codec.name} trains adversarially: its objective needs a discriminator")
    fake = discriminator(output.x_hat)
    with torch.no_grad():
        real = discriminator(x)
    adversarial = sum(((scale[-1] - 1) ** 2).mean() for scale in fake) / len(fake)
    matching = sum(F.l1_loss(f, r) for a, b in zip(fake, real) for f, r in zip(a[:-1], b[:-1])) / len(fake)
    mse = F.mse_loss(output.x_hat, x)
    bpp = bits_per_pixel(output, x)
    loss = adversarial + codec.config["feature_weight"] * matching + codec.config["mse_weight"] * mse * 10
    whole = -10 * torch.log10(((output.x_hat.detach().clamp(0, 1) - x) ** 2).mean().clamp(min=MSE_FLOOR))
    return {"loss": loss + bpp.mean(), "g": adversarial.detach(), "bpp": bpp.mean().detach(), "psnr": whole}


Objective = Callable[..., dict[str, Tensor]]
OBJECTIVES: dict[str, Objective] = {
    "rate-distortion": rate_distortion,
    "residual": residual,
    "adaptive-codelength": adaptive_codelength,
    "generative": generative,
}


def objective(codec: Codec) -> Objective:
    """The objective `codec` declares."""
    try:
        return OBJECTIVES[codec.objective]
    except KeyError:
        raise ValueError(f"{codec.name} declares an unknown objective {codec.objective!r}; "
                         f"known: {', '.join(OBJECTIVES)}") from None
