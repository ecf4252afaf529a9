"""Minnen, Ballé & Toderici, "Joint autoregressive and hierarchical priors for learned image compression",
NeurIPS 2018 [23], and its parallel checkerboard variant (He et al., CVPR 2021); at the end, Minnen et al.,
"Image-dependent local entropy models for learned image compression", ICIP 2018 [18].

    x --g_a--> y --Q--> y_hat --g_s--> x_hat
               |          |
               v          +--context (masked 5x5 conv)--> phi --+
              h_a                                              +--entropy parameters (1x1 convs)--> mu, sigma
               v                                               |
               z --Q--> z_hat --h_s--> psi ---------------------+

Each element of y is N(mu, sigma^2) with mu and sigma from the hyperprior's features psi and the context features
phi of the already decoded neighbours. Coding is exact and machine-independent: h_s, the context convolution and
the entropy-parameter network all run as integer networks, and the decoder visits the latent in the order of
`licodec.entropy.context.schedule` (wavefronts for the serial model, two passes for the checkerboard).
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch
from torch import Tensor, nn

from licodec.codecs.balle2017 import DEFAULT_LMBDAS, FactorizedPrior
from licodec.codecs.balle2018 import MeanScaleHyperprior
from licodec.codecs.base import Encoded, RDOutput
from licodec.entropy import coder
from licodec.entropy.context import MaskedConv2d, one_thread, schedule
from licodec.entropy.local import LocalDensities
from licodec.errors import BitstreamError
from licodec.nn.blocks import conv, deconv
from licodec.quant import quantize
from licodec.registry import register
from licodec.taxonomy import Taxonomy


def entropy_parameters(M: int, slim: bool = False) -> nn.Sequential:
    """The entropy-parameter network of [23]: three 1x1 convolutions from (psi, phi) to (sigma, mu), narrowing
    4M -> 10M/3 -> 8M/3 -> 2M (all 2M wide when `slim`).

    The paper uses leaky ReLUs; plain ReLUs keep the network integer-evaluable (`licodec.nn.integer`)."""
    first, second = (M * 2, M * 2) if slim else (M * 10 // 3, M * 8 // 3)
    return nn.Sequential(
        nn.Conv2d(M * 4, first, 1), nn.ReLU(),
        nn.Conv2d(first, second, 1), nn.ReLU(),
        nn.Conv2d(second, M * 2, 1),
    )


@register("minnen2018-joint")
class JointAutoregressive(MeanScaleHyperprior):
    """Mean-scale hyperprior plus a serial masked 5x5 context model (CompressAI's "mbt2018")."""

    taxonomy = Taxonomy(
        reference="[23] Minnen, Ballé, Toderici 2018",
        network="CNN with GDN/IGDN; hyperprior CNN; masked-convolution context model",
        coding_unit="full image",
        spatial_tools="hyperprior (side information) and autoregressive context of decoded neighbours",
        rate_control="one model per rate in the paper; here one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(23,),
    )
    fewest_bits_per_pixel = 8.8e-4  # measured: 1/32 of a flat image's at quality 1
    context_kind = "causal"

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed", slim: bool = False) -> None:
        """`slim` narrows the side networks to fit the zoo's size budget (DESIGN.md): h_s keeps N channels until
        its last layer (the paper widens to M and 3M/2) and the entropy-parameter network stays 2M wide. It
        halves the weights outside the transforms (20 MB -> 13.6 MB in fp16 for N=128, M=192)."""
        super().__init__(N, M, lmbdas, quantization)
        if slim:
            self.config["slim"] = True  # only then, so that subclasses without the option keep their signature
            self.hyper_synthesis = nn.Sequential(
                deconv(N, N), nn.ReLU(), deconv(N, N), nn.ReLU(), conv(N, M * 2, 3, 1),
            )
        self.context = MaskedConv2d(M, M * 2, 5, self.context_kind)
        self.entropy_parameters = entropy_parameters(M, slim)

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:
        """Training pass: the context sees y with uniform noise (rounded y in eval mode), as in [23]; with "mixed"
        quantization the synthesis sees y rounded around the predicted means (straight-through gradient)."""
        y = self.transform(self.analysis, x) * self.gain.gain(quality)
        rate_mode = self.rate_mode()
        z_hat, z_likelihood = self.hyperprior(y, quality, rate_mode)
        psi = self.transform(self.hyper_synthesis, z_hat)
        y_tilde = quantize(y, "noise" if self.training else "round")
        phi = self.transform(self.context, y_tilde)  # zero at the checkerboard's anchors
        scales, means = self.split(self.transform(self.entropy_parameters, torch.cat([psi, phi], dim=1)))
        _, y_likelihood = self.gaussian(y, scales, means, rate_mode)
        if self.training and self.quantization != "mixed":
            y_hat = y_tilde
        else:
            y_hat = quantize(y, "ste" if self.training else "round", means)
        x_hat = self.transform(self.synthesis, y_hat * self.gain.inverse_gain(quality))
        return RDOutput(x_hat, {"y": y_likelihood, "z": z_likelihood})

    def _visit(self, psi: Tensor, step) -> Tensor:
        """Walk the latent in decoding order; returns y_hat in fixed point (int64, 1 x M x h x w).

        `step(index, means_fixed, rows, cols)` returns the symbols (M x n) of the n positions of one step, given
        their table indices and fixed-point means: the encoder rounds y, the decoder decodes the next chunk.
        """
        y_hat = torch.zeros((1, self.config["M"], *psi.shape[-2:]), dtype=torch.long)
        # The serial model's hundreds of small steps run best on one thread; the checkerboard's two large ones not.
        with one_thread() if self.context_kind == "causal" else nullcontext():
            for rows, cols, sees_context in schedule(self.context_kind, *psi.shape[-2:]):
                self._step(y_hat, psi, rows, cols, sees_context, step)
        return y_hat

    def _step(self, y_hat: Tensor, psi: Tensor, rows: Tensor, cols: Tensor, sees_context: bool, step) -> None:
        """Code the positions of one step of the schedule, writing their fixed-point values into y_hat."""
        context = self.integer("context")
        parameters = self.integer("entropy_parameters")
        M = self.config["M"]
        if sees_context:
            phi = context.at(y_hat, rows, cols)
        else:
            phi = torch.zeros((len(rows), self.context.out_channels), dtype=torch.long)
        features = torch.cat([psi[0, :, rows, cols].T, phi], dim=1)  # n x 4M
        out = parameters(features.T[None, :, None, :])[0, :, 0, :]  # 2M x n
        scales_fixed, means_fixed = out[:M], out[M:]
        index = self.gaussian.index(scales_fixed, parameters.fraction_bits)
        symbols = step(index, means_fixed, rows, cols)
        one = 1 << parameters.fraction_bits
        y_hat[0, :, rows, cols] = torch.as_tensor(symbols, dtype=torch.long) * one + means_fixed

    @torch.no_grad()
    def compress(self, x: Tensor, quality: int) -> Encoded:
        """Code a 1x3xHxW image in [0, 1]: z, then y in decoding order with its context."""
        level = self.check_quality(quality)
        y = self.analyse(x, level).double()
        z_section, z_symbols = self.encode_z(y.float(), level)
        one = 1 << self.integer("entropy_parameters").fraction_bits
        chunks: list[tuple[np.ndarray, np.ndarray]] = []

        def step(index: Tensor, means_fixed: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
            symbols = torch.round(y[0, :, rows, cols] - means_fixed.double() / one).long()
            chunks.append((symbols.numpy(), index.numpy()))
            return symbols

        self._visit(self.hyper_fixed(z_symbols, level), step)
        return Encoded([z_section, coder.encode_chunks(chunks, self.gaussian.tables)],
                       x.shape[-2], x.shape[-1], quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        psi = self.hyper_fixed(self.decode_z(encoded, level), level)
        decoder = coder.ChunkDecoder(encoded.sections[1], self.gaussian.tables)
        y_hat = self._visit(psi, lambda index, means, rows, cols: decoder.decode(index.numpy()))
        one = 1 << self.integer("entropy_parameters").fraction_bits
        return self.synthesise(y_hat.double() / one, level, encoded)


@register("minnen2018-checkerboard")
class CheckerboardJoint(JointAutoregressive):
    """[23] with the checkerboard context of He et al. 2021: two parallel passes instead of a serial scan."""

    taxonomy = Taxonomy(
        reference="[23] Minnen, Ballé, Toderici 2018, with the checkerboard context of He et al. 2021",
        network="CNN with GDN/IGDN; hyperprior CNN; checkerboard-masked context model",
        coding_unit="full image",
        spatial_tools="hyperprior (side information) and a two-pass checkerboard context of decoded anchors",
        rate_control="one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(23,),
    )
    fewest_bits_per_pixel = 1.1e-3  # measured: 1/32 of a flat image's at quality 1
    context_kind = "checkerboard"


@register("minnen2018-local")
class LocalEntropyModels(FactorizedPrior):
    """Ballé 2017's transforms with image-dependent local entropy models (Minnen et al., ICIP 2018 [18]): a
    dictionary of `models` learned densities per channel, one chosen per `block` x `block` tile of the latent and
    signalled as side information (`licodec.entropy.local`)."""

    taxonomy = Taxonomy(
        reference="[18] Minnen, Toderici, Singh, Hwang, Covell 2018",
        network="CNN with GDN/IGDN",
        coding_unit="full image; entropy model chosen per latent block (64x64 pixels by default)",
        spatial_tools="a dictionary of learned entropy models, one signalled per block",
        rate_control="one model, gain vector per level",
        quality_range="about 0.1 to 1.5 bpp",
        refs=(18, 4),
    )
    fewest_bits_per_pixel = 4.7e-3  # measured: 1/32 of a flat image's at quality 1

    def __init__(self, N: int = 128, M: int = 192, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS,
                 quantization: str = "mixed", models: int = 8, block: int = 4) -> None:
        super().__init__(N, M, lmbdas, quantization)
        self.config.update(models=models, block=block)
        del self.densities
        self.local = LocalDensities(self.qualities, M, models, block)

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:
        """Training pass: the rate of each block under its best model, plus the choices' log2 K bits."""
        y = self.transform(self.analysis, x) * self.gain.gain(quality)
        noisy = self.training and self.quantization in ("noise", "mixed")
        y_rate = quantize(y, "noise" if noisy else ("ste" if self.training else "round"))
        likelihood, choice_likelihood = self.local(y_rate, quality)
        y_hat = quantize(y, "ste" if self.training else "round") if self.quantization != "noise" else y_rate
        x_hat = self.transform(self.synthesis, y_hat * self.gain.inverse_gain(quality))
        return RDOutput(x_hat, {"y": likelihood, "choices": choice_likelihood})

    def update(self) -> None:
        """Freeze the tables of every model."""
        self.local.update()

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code a 1x3xHxW image: the blocks' choices, then y with the chosen tables."""
        level = self.check_quality(quality)
        y = self.transform(self.analysis, self.layout(self.pad(x))) * self.gain.gain(torch.tensor([level]))
        y_int = torch.round(y).long().numpy()
        density = self.local.level(level)
        choice = self.local.choose(y_int, level)
        index = self.local.table_index(choice, y_int.shape)
        symbols = y_int - density.centres.numpy().astype(np.int64)[index]
        return Encoded([coder.encode(choice, np.zeros_like(choice), self.local.choice_tables),
                        coder.encode(symbols, index, density.tables)], x.shape[-2], x.shape[-1], quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        density = self.local.level(level)
        shape = self.latent_shape(encoded.height, encoded.width)
        blocks = (math.ceil(shape[-2] / self.local.block), math.ceil(shape[-1] / self.local.block))
        choice = coder.decode(encoded.sections[0], np.zeros(blocks, dtype=np.int64), self.local.choice_tables)
        if choice.min() < 0 or choice.max() >= self.local.models:
            raise BitstreamError("entropy model choice out of range")
        index = self.local.table_index(choice, shape)
        symbols = coder.decode(encoded.sections[1], index, density.tables)
        y_hat = torch.from_numpy(symbols + density.centres.numpy().astype(np.int64)[index]).double()
        return self.synthesise(y_hat, level, encoded)
