"""Hyperprior latent codecs: a Gaussian conditional for y whose parameters come from side information z.

`HyperpriorLatent` is Ballé et al. 2018 [5] (scales) and its mean-scale form (Minnen et al. 2018 without the
context model):

    y --h_a--> z --Q--> z_hat --h_s--> sigma (and mu)      z coded with a prior per level, y with N(mu, sigma^2)

`JointLatent` adds the context model of Minnen, Ballé & Toderici 2018 [23] (and the checkerboard of He et al.
2021): the entropy-parameter network maps (psi = h_s(z_hat), phi = context(decoded neighbours)) to (sigma, mu),
and the decoder visits y in the order of `licodec.entropy.context.schedule`.

At coding time h_s, the context convolution and the entropy-parameter network run as integer networks
(`licodec.nn.integer`), so encoder and decoder select the same tables on any machine and thread count.
Sections: z, then y.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.context import MaskedConv2d, one_thread, schedule
from licodec.entropy.gaussian import GaussianConditional
from licodec.entropy.latent import LatentCodec, LatentOutput, nearest_level
from licodec.quant import quantize

QUANTIZATIONS = ("noise", "ste", "mixed")

#: The sub-modules of the latent codecs, by the names that codecs built before them held them under (and the
#: tensor names of their weights files): a codec maps each to "entropy.<name>" (`Codec.renamed_modules`).
HYPERPRIOR_PARTS = ("hyper_analysis", "hyper_synthesis", "hyper_densities", "gaussian")
JOINT_PARTS = (*HYPERPRIOR_PARTS, "context", "entropy_parameters")


def moved_into(attribute: str, parts: tuple[str, ...]) -> dict[str, str]:
    """{old module name: its name inside the codec's `attribute`}, for `Codec.renamed_modules`."""
    return {part: f"{attribute}.{part}" for part in parts}


class HyperpriorLatent(LatentCodec):
    """y ~ N(mu, sigma^2) convolved with a unit box, (sigma[, mu]) = h_s(z_hat), z = h_a(|y|) (or h_a(y) with
    means).

    `hyper_prior` codes z per level: a `FactorizedDensities` [5] or a `GaussianPriors` [19] (any module with
    `channels`, `update()`, `forward(z, level, mode)` and the per-level `medians(level)`, `symbols(level, z)`,
    `table_index(level, shape)` and `level_tables(level)`).
    With `means`, h_s outputs 2M channels: the scales, then the means. `hyper_downsampling` is how
    much smaller z is than y. `quantization`: "noise" (uniform noise everywhere in training), "ste" (rounding
    with straight-through gradients) or "mixed" (noise for the rates, rounding into the synthesis and into h_s).
    """

    sections = 2

    def __init__(self, hyper_analysis: nn.Module, hyper_synthesis: nn.Module, hyper_prior: nn.Module,
                 quantization: str = "mixed", means: bool = False, hyper_downsampling: int = 4) -> None:
        super().__init__()
        if quantization not in QUANTIZATIONS:
            raise ValueError(f"unknown quantization {quantization!r}; expected one of {QUANTIZATIONS}")
        self.hyper_analysis = hyper_analysis
        self.hyper_synthesis = hyper_synthesis
        self.hyper_densities = hyper_prior
        self.gaussian = GaussianConditional()
        self.quantization = quantization
        self.means = means
        self.hyper_downsampling = hyper_downsampling

    # -- training ----------------------------------------------------------------------------------------------

    def rate_mode(self) -> str:
        """How the rate terms quantize: uniform noise in training (unless "ste"), rounding otherwise."""
        return "noise" if self.training and self.quantization in ("noise", "mixed") else "round"

    def hyper_input(self, y: Tensor) -> Tensor:
        """What h_a sees: y with means, |y| without."""
        return y if self.means else torch.abs(y)

    def split(self, params: Tensor) -> tuple[Tensor, Tensor | None]:
        """(scales, means) from h_s's (or the entropy-parameter network's) output."""
        if not self.means:
            return params, None
        scales, means = params.chunk(2, dim=1)
        return scales, means

    def side(self, y: Tensor, level: Tensor, rate_mode: str) -> tuple[Tensor, Tensor]:
        """Training pass of the side information: (z_hat as h_s sees it, likelihood of z).

        With "mixed" quantization h_s sees z rounded around the prior's medians (straight-through gradient), as
        the decoder will; the rate is measured on the noisy z."""
        z = self.transform(self.hyper_analysis, self.hyper_input(y))
        z_noisy, z_likelihood = self.hyper_densities(z, level, rate_mode)
        if self.training and self.quantization == "mixed":
            medians = torch.stack([self.hyper_densities.medians(nearest_level(float(q)))
                                   for q in level]).view(*z.shape[:2], 1, 1)
            return quantize(z, "ste", medians), z_likelihood
        return z_noisy, z_likelihood

    def forward(self, y: Tensor, level: Tensor) -> LatentOutput:
        """Training pass: noise for the rate terms, STE rounding around the means into the synthesis ("mixed")."""
        rate_mode = self.rate_mode()
        z_hat, z_likelihood = self.side(y, level, rate_mode)
        scales, means = self.split(self.transform(self.hyper_synthesis, z_hat))
        _, y_likelihood = self.gaussian(y, scales, means, rate_mode)
        if self.training and self.quantization != "mixed":
            y_hat = quantize(y, "noise")
        else:
            y_hat = quantize(y, "ste" if self.training else "round", means)
        return LatentOutput(y_hat, {"y": y_likelihood, "z": z_likelihood})

    def update(self) -> None:
        """Freeze the tables (z's prior and the Gaussian scales) and forget the integer networks."""
        self.hyper_densities.update()
        self.gaussian.update()
        self.forget_integer()

    # -- coding ------------------------------------------------------------------------------------------------

    def side_shape(self, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """Shape of z for a y of `shape`."""
        step = self.hyper_downsampling
        return (1, self.hyper_densities.channels, -(-shape[-2] // step), -(-shape[-1] // step))

    def encode_side(self, y: Tensor, level: float) -> tuple[bytes, np.ndarray]:
        """z's section and symbols."""
        prior = self.hyper_densities
        z_symbols, z_index = prior.symbols(level, self.transform(self.hyper_analysis, self.hyper_input(y)))
        return coder.encode(z_symbols, z_index, prior.level_tables(level)), z_symbols

    def decode_side(self, section: bytes, shape: tuple[int, ...], level: float) -> np.ndarray:
        """z's symbols from its section."""
        prior = self.hyper_densities
        return coder.decode(section, prior.table_index(level, self.side_shape(shape)), prior.level_tables(level))

    def hyper_fixed(self, z_symbols: np.ndarray, level: float) -> Tensor:
        """h_s's output from z's symbols, in fixed point (int64), by integer arithmetic only."""
        net = self.integer("hyper_synthesis")
        medians = net.to_fixed(self.hyper_densities.medians(level)).view(1, -1, 1, 1)
        return net(torch.from_numpy(z_symbols).long() * (1 << net.fraction_bits) + medians)

    def parameters_from_side(self, z_symbols: np.ndarray, level: float) -> tuple[Tensor, Tensor | None]:
        """Table indices of y (and the fixed-point means, as float64) from z's symbols, in integers only."""
        fraction_bits = self.integer("hyper_synthesis").fraction_bits
        scales_fixed, means_fixed = self.split(self.hyper_fixed(z_symbols, level))
        index = self.gaussian.index(scales_fixed, fraction_bits)
        means = None if means_fixed is None else means_fixed.double() / (1 << fraction_bits)
        return index, means

    @torch.no_grad()
    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:
        """z with its prior, then y with the Gaussian tables that z selects."""
        z_section, z_symbols = self.encode_side(y, level)
        index, means = self.parameters_from_side(z_symbols, level)
        centred = y.double() if means is None else y.double() - means
        y_symbols = torch.round(centred).long()
        y_hat = y_symbols.double() if means is None else y_symbols.double() + means
        return [z_section, coder.encode(y_symbols.numpy(), index.numpy(), self.gaussian.tables)], y_hat

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:
        """y_hat from the two sections."""
        index, means = self.parameters_from_side(self.decode_side(sections[0], shape, level), level)
        y_hat = torch.from_numpy(coder.decode(sections[1], index.numpy(), self.gaussian.tables)).double()
        return y_hat if means is None else y_hat + means


class JointLatent(HyperpriorLatent):
    """`HyperpriorLatent` with means, plus a context model: (sigma, mu) = entropy_parameters(psi, phi), psi =
    h_s(z_hat), phi = context(decoded neighbours of y). `context` is a `MaskedConv2d` ("causal": the serial model
    of [23], decoded in wavefronts; "checkerboard": He et al. 2021's two passes)."""

    def __init__(self, hyper_analysis: nn.Module, hyper_synthesis: nn.Module, hyper_prior: nn.Module,
                 context: MaskedConv2d, entropy_parameters: nn.Module, quantization: str = "mixed",
                 hyper_downsampling: int = 4) -> None:
        super().__init__(hyper_analysis, hyper_synthesis, hyper_prior, quantization, True, hyper_downsampling)
        self.context = context
        self.entropy_parameters = entropy_parameters

    def forward(self, y: Tensor, level: Tensor) -> LatentOutput:
        """Training pass: the context sees y with uniform noise (rounded y in eval mode), as in [23]; with "mixed"
        quantization the synthesis sees y rounded around the predicted means (straight-through gradient)."""
        rate_mode = self.rate_mode()
        z_hat, z_likelihood = self.side(y, level, rate_mode)
        psi = self.transform(self.hyper_synthesis, z_hat)
        y_tilde = quantize(y, "noise" if self.training else "round")
        phi = self.transform(self.context, y_tilde)  # zero at the checkerboard's anchors
        scales, means = self.split(self.transform(self.entropy_parameters, torch.cat([psi, phi], dim=1)))
        _, y_likelihood = self.gaussian(y, scales, means, rate_mode)
        if self.training and self.quantization != "mixed":
            y_hat = y_tilde
        else:
            y_hat = quantize(y, "ste" if self.training else "round", means)
        return LatentOutput(y_hat, {"y": y_likelihood, "z": z_likelihood})

    def visit(self, psi: Tensor, channels: int, step) -> Tensor:
        """Walk the latent in decoding order; returns y_hat in fixed point (int64, 1 x channels x h x w).

        `step(index, means_fixed, rows, cols)` returns the symbols (M x n) of the n positions of one step, given
        their table indices and fixed-point means: the encoder rounds y, the decoder decodes the next chunk."""
        y_hat = torch.zeros((1, channels, *psi.shape[-2:]), dtype=torch.long)
        # The serial model's hundreds of small steps run best on one thread; the checkerboard's two large ones not.
        with one_thread() if self.context.kind == "causal" else nullcontext():
            for rows, cols, sees_context in schedule(self.context.kind, *psi.shape[-2:]):
                self._step(y_hat, psi, rows, cols, sees_context, step)
        return y_hat

    def _step(self, y_hat: Tensor, psi: Tensor, rows: Tensor, cols: Tensor, sees_context: bool, step) -> None:
        """Code the positions of one step of the schedule, writing their fixed-point values into y_hat."""
        parameters = self.integer("entropy_parameters")
        channels = y_hat.shape[1]
        if sees_context:
            phi = self.integer("context").at(y_hat, rows, cols)
        else:
            phi = torch.zeros((len(rows), self.context.out_channels), dtype=torch.long)
        features = torch.cat([psi[0, :, rows, cols].T, phi], dim=1)
        out = parameters(features.T[None, :, None, :])[0, :, 0, :]  # 2M x n
        scales_fixed, means_fixed = out[:channels], out[channels:]
        index = self.gaussian.index(scales_fixed, parameters.fraction_bits)
        symbols = step(index, means_fixed, rows, cols)
        one = 1 << parameters.fraction_bits
        y_hat[0, :, rows, cols] = torch.as_tensor(symbols, dtype=torch.long) * one + means_fixed

    @torch.no_grad()
    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:
        """z, then y in decoding order with its context (one chunk of the y section per step)."""
        y64 = y.double()
        z_section, z_symbols = self.encode_side(y, level)
        one = 1 << self.integer("entropy_parameters").fraction_bits
        chunks: list[tuple[np.ndarray, np.ndarray]] = []

        def step(index: Tensor, means_fixed: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
            symbols = torch.round(y64[0, :, rows, cols] - means_fixed.double() / one).long()
            chunks.append((symbols.numpy(), index.numpy()))
            return symbols

        y_fixed = self.visit(self.hyper_fixed(z_symbols, level), y.shape[1], step)
        return [z_section, coder.encode_chunks(chunks, self.gaussian.tables)], y_fixed.double() / one

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:
        """y_hat from the two sections, decoded step by step."""
        psi = self.hyper_fixed(self.decode_side(sections[0], shape, level), level)
        decoder = coder.ChunkDecoder(sections[1], self.gaussian.tables)
        y_fixed = self.visit(psi, shape[1], lambda index, means, rows, cols: decoder.decode(index.numpy()))
        return y_fixed.double() / (1 << self.integer("entropy_parameters").fraction_bits)
