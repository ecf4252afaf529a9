"""Building blocks of the GDN transforms of Ballé et al. 2017/2018 and of the hyperprior family's side networks."""

from __future__ import annotations

from torch import Tensor, nn

from licodec.nn.gdn import GDN


def conv(in_channels: int, out_channels: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    """Convolution that divides the size by `stride` exactly ("same" padding)."""
    return nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)


def deconv(in_channels: int, out_channels: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    """Transposed convolution that multiplies the size by `stride` exactly."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2,
                              output_padding=stride - 1)


def gdn_analysis(channels: int, latent: int) -> nn.Sequential:
    """g_a: four 5x5 stride-2 convolutions with GDN between them (Ballé 2018, figure 4, left)."""
    return nn.Sequential(
        conv(3, channels), GDN(channels),
        conv(channels, channels), GDN(channels),
        conv(channels, channels), GDN(channels),
        conv(channels, latent),
    )


def gdn_synthesis(channels: int, latent: int) -> nn.Sequential:
    """g_s: four 5x5 stride-2 transposed convolutions with IGDN between them."""
    return nn.Sequential(
        deconv(latent, channels), GDN(channels, inverse=True),
        deconv(channels, channels), GDN(channels, inverse=True),
        deconv(channels, channels), GDN(channels, inverse=True),
        deconv(channels, 3),
    )


def hyper_analysis(channels: int, latent: int) -> nn.Sequential:
    """h_a of Ballé 2018: a 3x3 convolution and two stride-2 5x5 ones (y is 4x larger than z)."""
    return nn.Sequential(conv(latent, channels, 3, 1), nn.ReLU(), conv(channels, channels), nn.ReLU(),
                         conv(channels, channels))


def scale_hyper_synthesis(channels: int, latent: int) -> nn.Sequential:
    """h_s of the scale hyperprior: ends in a ReLU, as the scales are non-negative."""
    return nn.Sequential(deconv(channels, channels), nn.ReLU(), deconv(channels, channels), nn.ReLU(),
                         conv(channels, latent, 3, 1), nn.ReLU())


def mean_scale_hyper_synthesis(channels: int, latent: int) -> nn.Sequential:
    """h_s of the mean-scale model (Minnen et al. 2018): widens to 2M outputs (scales, then means), no final
    ReLU."""
    return nn.Sequential(deconv(channels, latent), nn.ReLU(), deconv(latent, latent * 3 // 2), nn.ReLU(),
                         conv(latent * 3 // 2, latent * 2, 3, 1))


class Residual(nn.Module):
    """Two 3x3 convolutions with a leaky ReLU (slope 0.2; a ReLU with `relu`) between, added to the input: the
    residual block of Theis et al. 2017 [3], also used by [6] and (with ReLU) by Mentzer et al. 2018 [17]."""

    def __init__(self, channels: int, relu: bool = False) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.ReLU() if relu else nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return x + self.body(x)
