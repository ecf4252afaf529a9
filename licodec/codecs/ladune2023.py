"""Cool-chic: an overfitted per-image codec. Ladune, Philippe, Henry, Clare & Leguay, "COOL-CHIC: Coordinate-based
Low Complexity Hierarchical Image Codec", ICCV 2023; with the learned upsampling and ARM of Leguay et al., "Low-
complexity overfitted neural image codec", MMSP 2023, and the soft-rounding schedule of Kim et al., "C3: High-
performance and low-complexity neural compression from a single image or video", CVPR 2024.

    y_0 (1)  y_1 (1/2) ... y_6 (1/64)     latent grids, one feature each, learned for this image
       |        |             |
       |        +--up--+ ... -+            learned separable 2x upsampling, cascaded (bicubic at the start)
       v               v
      [7 channels at full resolution] --linear 7->40, relu, linear 40->3, two residual 3x3 convs--> x_hat

    each latent ~ Laplace(mu, b), (mu, log2 b) = ARM(16 causal neighbours in its own grid)

There is no training set: `compress` fits the latents and the three small networks (ARM, upsampling, synthesis)
to the image by gradient descent on D + lambda * R (D the MSE on [0, 1], R the latents' bits per pixel), then
quantizes every network tensor to integers times 2^-k (k chosen per tensor by rate-distortion), and writes the
networks (one section each) and the latents (one section) into the file. The decoder rebuilds the networks from
the file, decodes the latents in wavefronts with the integer ARM (`licodec.entropy.laplace`) and runs the
float synthesis.

Encoder schedule (after C3, Kim et al. 2024): a warm-up keeps the best of WARMUP_STARTS random starts; then
additive uniform noise (NOISE_SHARE of the iterations); then soft rounding (SOFT_SHARE) with the temperature
annealed from SOFT_TEMPERATURE[0] to [1], the rate measured on s_T(y) + u and the synthesis fed s_T(s_T(y) + u)
(Agustsson & Theis 2020's form); then hard rounding with a straight-through gradient. Adam, the latents at
LATENT_LR_FACTOR times the networks' learning rate (latents start at zero and must travel several units in a few
hundred iterations). `effort` 1..5 sets the iterations (EFFORT_ITERATIONS).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy import laplace
from licodec.errors import BitstreamError, CodecError
from licodec.nn.fused import pixel_mlp
from licodec.registry import register
from licodec.taxonomy import Taxonomy

GRIDS = 7  # full resolution down to 1/64
SYNTHESIS_HIDDEN = 40
ARM_HIDDEN = 16
EFFORT_ITERATIONS = {1: 300, 2: 800, 3: 2000, 4: 5000, 5: 12000}
DEFAULT_EFFORT = 3
DEFAULT_LMBDAS = tuple(0.02 * 200 ** (-k / 7) for k in range(8))  # quality 1 (0.02) .. 8 (1e-4), as Cool-chic's
LEARNING_RATE = 1e-2
FINAL_LR_FACTOR = 0.1  # the learning rate at the end of the soft phase and through the hard phase, relative
LR_SCHEDULE = "phases"  # "phases": constant through the noise phase, then cosine; "cosine": cosine from the start
WARMUP_STARTS = 3
NOISE_SHARE, SOFT_SHARE = 0.4, 0.5  # the rest is hard rounding
SOFT_TEMPERATURE = (0.3, 0.1)
SOFT_NOISE = (1.0, 1.0)  # the noise amplitude through the soft phase, first to last
SOFT_TWICE = True  # the synthesis sees s_T(s_T(y) + u)
LATENT_LR_FACTOR = 10.0  # the latents' learning rate, relative to the networks'
WEIGHT_BITS = range(4, 17)  # candidate steps 2^-k of the network tensors
FORMAT = 1

# Bicubic (a = -0.75) weights of 2x upsampling: output 2k at k - 1/4 (taps k-2..k+1), 2k+1 at k + 1/4 (k-1..k+2).
_BICUBIC_EVEN = (-0.03515625, 0.26171875, 0.87890625, -0.10546875)
_BICUBIC_ODD = tuple(reversed(_BICUBIC_EVEN))

# The per-image networks, by section: (name, shape) of each tensor, in the order the file stores them.
NETWORKS: dict[str, list[tuple[str, tuple[int, ...]]]] = {
    "arm": [("arm_w1", (ARM_HIDDEN, laplace.CONTEXT)), ("arm_b1", (ARM_HIDDEN,)),
            ("arm_w2", (ARM_HIDDEN, ARM_HIDDEN)), ("arm_b2", (ARM_HIDDEN,)),
            ("arm_w3", (2, ARM_HIDDEN)), ("arm_b3", (2,))],
    "upsampling": [("up_even", (GRIDS - 1, 4)), ("up_odd", (GRIDS - 1, 4))],
    "synthesis": [("syn_w1", (SYNTHESIS_HIDDEN, GRIDS)), ("syn_b1", (SYNTHESIS_HIDDEN,)),
                  ("syn_w2", (3, SYNTHESIS_HIDDEN)), ("syn_b2", (3,)),
                  ("syn_wa", (3, 3, 3, 3)), ("syn_ba", (3,)), ("syn_wb", (3, 3, 3, 3)), ("syn_bb", (3,))],
}


def grid_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """The latent grids of a padded height x width image (both multiples of 2^(GRIDS-1))."""
    return [(height >> i, width >> i) for i in range(GRIDS)]


def soft_round(y: Tensor, temperature: float) -> Tensor:
    """C3's soft rounding s_T(y) = floor(y) + 1/2 + tanh(r / T) / (2 tanh(1 / (2T))), r = y - floor(y) - 1/2:
    the identity as T grows, rounding as T -> 0 (Kim et al. 2024, Eq. 3, with alpha = 1/T)."""
    floor = torch.floor(y).detach()
    r = y - floor - 0.5
    return floor + 0.5 + torch.tanh(r / temperature) / (2 * math.tanh(0.5 / temperature))


def _conv3x3(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """A zero-padded 3x3 convolution of (C, H, W) as one matrix product over the nine shifted views."""
    c, height, width = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    views = torch.cat([padded[:, dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)])
    # views rows: (dy, dx, channel); the kernel's columns must follow the same order
    kernel = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], 9 * c)
    return torch.addmm(bias[:, None], kernel, views.reshape(9 * c, -1)).reshape(-1, height, width)


class Decoder(nn.Module):
    """The per-image decoder: the ARM, the upsampling and the synthesis (tensors named as in NETWORKS)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)

        def uniform(shape, fan_in):
            bound = 1 / math.sqrt(fan_in)
            return nn.Parameter((torch.rand(shape, generator=generator) * 2 - 1) * bound)

        self.arm_w1 = uniform((ARM_HIDDEN, laplace.CONTEXT), laplace.CONTEXT)
        self.arm_b1 = nn.Parameter(torch.zeros(ARM_HIDDEN))
        self.arm_w2 = uniform((ARM_HIDDEN, ARM_HIDDEN), ARM_HIDDEN)
        self.arm_b2 = nn.Parameter(torch.zeros(ARM_HIDDEN))
        self.arm_w3 = nn.Parameter(torch.zeros(2, ARM_HIDDEN))
        self.arm_b3 = nn.Parameter(torch.zeros(2))
        self.up_even = nn.Parameter(torch.tensor([_BICUBIC_EVEN] * (GRIDS - 1)))
        self.up_odd = nn.Parameter(torch.tensor([_BICUBIC_ODD] * (GRIDS - 1)))
        self.syn_w1 = uniform((SYNTHESIS_HIDDEN, GRIDS), GRIDS)
        self.syn_b1 = nn.Parameter(torch.zeros(SYNTHESIS_HIDDEN))
        self.syn_w2 = uniform((3, SYNTHESIS_HIDDEN), SYNTHESIS_HIDDEN)
        self.syn_b2 = nn.Parameter(torch.full((3,), 0.5))
        self.syn_wa = nn.Parameter(torch.zeros(3, 3, 3, 3))
        self.syn_ba = nn.Parameter(torch.zeros(3))
        self.syn_wb = nn.Parameter(torch.zeros(3, 3, 3, 3))
        self.syn_bb = nn.Parameter(torch.zeros(3))

    def arm(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """(location, log2 scale) from (n, CONTEXT) contexts: relu(L1), residual relu(L2), L3 (matrix products)."""
        h = torch.relu(torch.addmm(self.arm_b1, context, self.arm_w1.t()))
        h = torch.relu(torch.addmm(self.arm_b2, h, self.arm_w2.t())) + h
        out = torch.addmm(self.arm_b3, h, self.arm_w3.t())
        return out[:, 0], out[:, 1]

    def upsample2x(self, x: Tensor, step: int) -> Tensor:
        """(C, h, w) -> (C, 2h, 2w): the step's separable 4-tap phase filters along the width, then the height,
        as sums of shifted views (elementwise work; no convolution call with its costly backward)."""
        even, odd = self.up_even[step], self.up_odd[step]
        for _ in range(2):
            c, h, w = x.shape
            padded = F.pad(x, (2, 2), mode="replicate")  # (C, h, w + 4)
            taps = [padded[..., j : j + w] for j in range(5)]
            out_even = even[0] * taps[0] + even[1] * taps[1] + even[2] * taps[2] + even[3] * taps[3]
            out_odd = odd[0] * taps[1] + odd[1] * taps[2] + odd[2] * taps[3] + odd[3] * taps[4]
            x = torch.stack([out_even, out_odd], -1).reshape(c, h, 2 * w).transpose(1, 2)  # interleave, swap axes
        return x

    def upsample(self, grids: list[Tensor]) -> Tensor:
        """(GRIDS, H, W): every grid at full resolution, coarsest upsampled through every step."""
        stack = grids[-1][None]
        for level in range(GRIDS - 2, -1, -1):
            stack = torch.cat([grids[level][None], self.upsample2x(stack, level)])
        return stack

    def synthesis(self, features: Tensor) -> Tensor:
        """(GRIDS, H, W) -> (1, 3, H, W): per-pixel linear layers as matrix products, then two residual 3x3
        convolutions (the decoder's form: the same output at any thread count)."""
        _, height, width = features.shape
        flat = features.reshape(GRIDS, -1)
        hidden = torch.relu(torch.addmm(self.syn_b1[:, None], self.syn_w1, flat))
        x = torch.addmm(self.syn_b2[:, None], self.syn_w2, hidden).reshape(3, height, width)
        x = x + _conv3x3(torch.relu(x), self.syn_wa, self.syn_ba)
        return (x + _conv3x3(x, self.syn_wb, self.syn_bb))[None]

    def training_synthesis(self, features: Tensor) -> Tensor:
        """`synthesis` for the encoder's gradient descent: the same function, with the per-pixel MLP chunked and
        recomputed in the backward pass (`licodec.nn.fused`) and the 3x3 convolutions through `F.conv2d`."""
        _, height, width = features.shape
        x = pixel_mlp(features.reshape(GRIDS, -1), self.syn_w1, self.syn_b1, self.syn_w2, self.syn_b2)
        x = x.reshape(1, 3, height, width).contiguous(memory_format=torch.channels_last)  # mkldnn's fast layout
        x = x + F.conv2d(torch.relu(x), self.syn_wa, self.syn_ba, padding=1)
        return x + F.conv2d(x, self.syn_wb, self.syn_bb, padding=1)

    def tensors(self, network: str) -> list[Tensor]:
        """The tensors of one network, in file order."""
        return [getattr(self, name) for name, _ in NETWORKS[network]]


def _quantized(value: Tensor, bits: int) -> np.ndarray:
    return torch.round(value.detach().double() * (1 << bits)).long().clamp(-(1 << 16), 1 << 16).numpy()


def integer_layers(decoder: Decoder, bits: dict[str, int]) -> list[laplace.IntegerLayer]:
    """The ARM of `decoder` (its tensors already multiples of 2^-bits[name]) as integer layers."""
    return [laplace.IntegerLayer(_quantized(getattr(decoder, f"arm_w{i}"), bits[f"arm_w{i}"]), bits[f"arm_w{i}"],
                                 _quantized(getattr(decoder, f"arm_b{i}"), bits[f"arm_b{i}"]), bits[f"arm_b{i}"])
            for i in (1, 2, 3)]


@dataclass
class Fit:
    """The state of an encoding: float latents and the decoder, with what the last iteration measured."""

    latents: list[Tensor]
    decoder: Decoder
    loss: float = math.inf
    bpp: float = math.nan
    psnr: float = math.nan

    def copy(self) -> Fit:  # noqa: D102
        decoder = Decoder()
        decoder.load_state_dict(self.decoder.state_dict())
        return Fit([g.detach().clone().requires_grad_(True) for g in self.latents], decoder, self.loss, self.bpp,
                   self.psnr)


def rd_pass(fit: Fit, x: Tensor, height: int, width: int, lmbda: float,
            quantize: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """One training pass: (loss, bits, mse) of the image `x` (1x3xHxW padded; the first height x width count).
    `quantize` maps a latent grid to the values the rate is measured on and those the synthesis sees (noise,
    soft or hard rounding; see `_Schedule.quantizer`)."""
    decoder = fit.decoder
    quantized = [quantize(g) for g in fit.latents]
    bits = laplace.arm_rate([rate_view for rate_view, _ in quantized], decoder.tensors("arm"))
    x_hat = decoder.training_synthesis(decoder.upsample([synthesis_view for _, synthesis_view in quantized]))
    mse = F.mse_loss(x_hat[..., :height, :width], x[..., :height, :width])
    return mse + lmbda * bits / (height * width), bits, mse


def _psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


class _Schedule:
    """The quantization and learning rate of iteration i of n (see the module docstring)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)  # the noise: the same encode gives the same file
        self.noise_end = round(n * NOISE_SHARE)
        self.soft_end = self.noise_end + round(n * SOFT_SHARE)

    def phase(self, i: int) -> str:  # noqa: D102
        return "noise" if i < self.noise_end else "soft" if i < self.soft_end else "hard"

    def learning_rate(self, i: int) -> float:  # noqa: D102
        start = 0 if LR_SCHEDULE == "cosine" else self.noise_end
        if i < start:
            return LEARNING_RATE
        if i < self.soft_end:  # cosine from LEARNING_RATE to FINAL_LR_FACTOR times it
            t = (i - start) / max(self.soft_end - start, 1)
            return LEARNING_RATE * (FINAL_LR_FACTOR + (1 - FINAL_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * t)))
        return LEARNING_RATE * FINAL_LR_FACTOR

    def noise(self, like: Tensor) -> Tensor:
        """Uniform noise on [-1/2, 1/2) shaped like `like`, from the schedule's own generator."""
        return torch.rand(like.shape, generator=self.generator) - 0.5

    def quantizer(self, i: int) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        """Latents -> (values the rate is measured on, values the synthesis sees): y + u (noise); s_T(y) + u and
        s_T(s_T(y) + u) (soft; Agustsson & Theis 2020, as C3 uses it); round(y) with a straight-through gradient."""
        phase = self.phase(i)
        if phase == "noise":
            def noisy(y: Tensor) -> tuple[Tensor, Tensor]:
                value = y + self.noise(y)
                return value, value
            return noisy
        if phase == "soft":
            t = (i - self.noise_end) / max(self.soft_end - self.noise_end, 1)
            temperature = SOFT_TEMPERATURE[0] + t * (SOFT_TEMPERATURE[1] - SOFT_TEMPERATURE[0])
            amplitude = SOFT_NOISE[0] + t * (SOFT_NOISE[1] - SOFT_NOISE[0])

            def soft(y: Tensor) -> tuple[Tensor, Tensor]:
                value = soft_round(y, temperature) + amplitude * self.noise(y)
                return value, soft_round(value, temperature) if SOFT_TWICE else value
            return soft

        def hard(y: Tensor) -> tuple[Tensor, Tensor]:
            value = y + (torch.round(y) - y).detach()
            return value, value
        return hard


@register("ladune2023-coolchic")
class CoolChic(Codec):
    """Cool-chic (see the module docstring). It has no weights file: the file carries the decoder."""

    taxonomy = Taxonomy(
        reference="Ladune et al. 2023 (Cool-chic), Leguay et al. 2023, Kim et al. 2024 (C3); beyond the survey",
        network="per-image overfitted: latent grids, upsampling and a tiny synthesis MLP/CNN, learned at encode time",
        coding_unit="full image (7 latent grids, 1 to 1/64 resolution)",
        spatial_tools="hierarchical latent grids; autoregressive Laplace ARM over 16 causal neighbours (integer)",
        rate_control="lambda per image (continuous quality); decoder weights quantized per tensor by RD",
        quality_range="about 0.1 to 2 bpp (8 qualities, lambda 0.02 to 1e-4)",
    )
    overfitted = True  # no zoo file: `standalone()` builds it
    encoder_revision = 3  # 2: the fused training pass (licodec.nn.fused, laplace.arm_rate); 3: latents at 10x
    # every latent (at least one per pixel) costs more than 0.00059 bits in the most peaked table: a payload
    # below this for the header's size is damage (`licodec.api._check_payload`)
    fewest_bits_per_pixel = 0.0005
    multiple = 1 << (GRIDS - 1)

    def __init__(self, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS, **config) -> None:
        super().__init__(lmbdas, **config)
        self.effort = DEFAULT_EFFORT
        self.progress: bool | None = None  # tqdm's disable=None: a bar on terminals only
        self._warm: dict[str, list[tuple[float, Fit]]] | None = None
        self.weights_hash = self.architecture_hash()

    @classmethod
    def standalone(cls) -> CoolChic:
        """The codec ready to code: nothing to load, its hash that of its architecture."""
        return cls()

    def architecture_hash(self) -> str:
        """What the header's weights hash means here: the SHA-256 of the architecture, format and lambdas, so that
        a file names the decoder design that reads it (there are no shared weights)."""
        description = {"codec": "ladune2023-coolchic", "format": FORMAT, "networks": NETWORKS,
                       "grids": GRIDS, "context": laplace.CONTEXT_OFFSETS, "config": self.config}
        text = json.dumps(description, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).digest()[:8].hex()

    def lmbda(self, level: float) -> float:
        """The lambda of a 0-based (fractional) quality level: geometric between the two neighbours."""
        low = min(int(level), len(self.lmbdas) - 2) if len(self.lmbdas) > 1 else 0
        t = level - low
        if len(self.lmbdas) == 1:
            return self.lmbdas[0]
        return math.exp((1 - t) * math.log(self.lmbdas[low]) + t * math.log(self.lmbdas[low + 1]))

    @contextmanager
    def encoding(self, effort: int | None = None, warm_start: bool = False,
                 progress: bool | None = None) -> Iterator[CoolChic]:
        """Encode with `effort` (1..5) for the duration of a `with` block; with `warm_start`, each encode of an
        image already coded in the block starts from the solution of the nearest lambda (rate control)."""
        if effort is not None and (isinstance(effort, bool) or effort not in EFFORT_ITERATIONS):
            raise CodecError(f"effort must be an integer from 1 to {max(EFFORT_ITERATIONS)}, got {effort!r}")
        saved = self.effort, self._warm, self.progress
        self.effort = effort or self.effort
        self._warm = {} if warm_start else None
        self.progress = self.progress if progress is None else progress
        try:
            yield self
        finally:
            self.effort, self._warm, self.progress = saved

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:  # noqa: D102
        raise CodecError("ladune2023-coolchic has no training set: it learns each image in compress()")

    def update(self) -> None:  # noqa: D102
        """Nothing to freeze: the Laplace tables are fixed (`licodec.entropy.laplace.tables`)."""

    # --- encoding ---------------------------------------------------------------------------------------------
    def compress(self, x: Tensor, quality: float, effort: int | None = None, iterations: int | None = None,
                 seed: int = 0) -> Encoded:
        """Fit latents and a decoder to the 1x3xHxW image `x` at the lambda of `quality`, and code them.

        `iterations` overrides the effort's count (tests); the warm-up and rounding phases scale with it."""
        level = self.check_quality(quality)
        if effort is not None and (isinstance(effort, bool) or effort not in EFFORT_ITERATIONS):
            raise CodecError(f"effort must be an integer from 1 to {max(EFFORT_ITERATIONS)}, got {effort!r}")
        n = iterations or EFFORT_ITERATIONS[effort or self.effort]
        lmbda = self.lmbda(level)
        height, width = x.shape[-2:]
        target = self.pad(x.float().detach())
        key = hashlib.sha256(target.numpy().tobytes()).hexdigest() if self._warm is not None else ""
        earlier = self._warm.get(key, []) if self._warm is not None else []
        with torch.enable_grad():
            if earlier:
                start = min(earlier, key=lambda e: abs(math.log(e[0] / lmbda)))[1].copy()
                fit = self.fit(target, height, width, lmbda, max(n // 2, 1), start=start, seed=seed)
            else:
                fit = self.fit(target, height, width, lmbda, n, seed=seed)
        if self._warm is not None:
            self._warm.setdefault(key, []).append((lmbda, fit.copy()))
        with torch.no_grad():
            sections = self.finish(fit, target, height, width, lmbda)
        return Encoded(sections, height, width, level + 1)

    def _start(self, target: Tensor, seed: int) -> Fit:
        shapes = grid_shapes(*target.shape[-2:])
        return Fit([torch.zeros(s, requires_grad=True) for s in shapes], Decoder(seed))

    def fit(self, target: Tensor, height: int, width: int, lmbda: float, n: int, start: Fit | None = None,
            seed: int = 0) -> Fit:
        """Gradient descent on the RD loss (see the module docstring); returns the final state."""
        from tqdm import tqdm

        schedule = _Schedule(n, seed)
        bar = tqdm(total=n + (0 if start else WARMUP_STARTS * max(n // 20, 1)), desc="overfitting", unit="it",
                   disable=None if self.progress is None else not self.progress,
                   leave=False)
        try:
            if start is None:
                candidates = []
                for k in range(WARMUP_STARTS):
                    candidate = self._start(target, seed * WARMUP_STARTS + k)
                    self._descend(candidate, target, height, width, lmbda, _Schedule(max(n // 20, 1) * 10, k),
                                  range(max(n // 20, 1)), bar, "warm-up")
                    candidates.append(candidate)
                start = min(candidates, key=lambda c: c.loss)
            self._descend(start, target, height, width, lmbda, schedule, range(n), bar, None)
        finally:
            bar.close()
        return start

    def _descend(self, fit: Fit, target: Tensor, height: int, width: int, lmbda: float, schedule: _Schedule,
                 steps: range, bar, label: str | None) -> None:
        optimizer = torch.optim.Adam([{"params": fit.latents, "factor": LATENT_LR_FACTOR},
                                      {"params": list(fit.decoder.parameters()), "factor": 1.0}], lr=LEARNING_RATE)
        for i in steps:
            for group in optimizer.param_groups:
                group["lr"] = schedule.learning_rate(i) * group["factor"]
            loss, bits, mse = rd_pass(fit, target, height, width, lmbda, schedule.quantizer(i))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            fit.loss, fit.bpp = float(loss.detach()), float(bits.detach()) / (height * width)
            fit.psnr = _psnr(float(mse.detach()))
            bar.update(1)
            if i % 10 == 0 or i == steps[-1]:
                bar.set_postfix_str(f"{label or schedule.phase(i)} {fit.bpp:.3f} bpp {fit.psnr:.2f} dB", refresh=False)

    def finish(self, fit: Fit, target: Tensor, height: int, width: int, lmbda: float) -> list[bytes]:
        """Round the latents, quantize each network tensor with the step that minimises the real RD cost (file
        bits of that tensor, latent bits under the integer ARM), and code the four sections."""
        latents = [torch.round(g.detach()) for g in fit.latents]
        decoder = fit.decoder
        floats = {name: getattr(decoder, name).detach().clone() for names in NETWORKS.values() for name, _ in names}
        bits = {name: 12 for name in floats}
        pixels = height * width
        shapes = [tuple(g.shape) for g in latents]
        context = laplace.GridContext.build(shapes)
        grids = [g.long().numpy() for g in latents]

        def set_tensor(name: str, k: int) -> None:
            getattr(decoder, name).data.copy_(torch.from_numpy(_quantized(floats[name], k)).float() / (1 << k))

        def tensor_bits(name: str, k: int) -> int:
            return 8 * len(laplace.encode_tensors([_quantized(floats[name], k)], [k]))

        def latent_bits() -> float:
            return laplace.latent_cost(grids, context, integer_layers(decoder, bits))

        def distortion() -> float:
            x_hat = decoder.synthesis(decoder.upsample(latents))[..., :height, :width]
            return float(F.mse_loss(x_hat, target[..., :height, :width]))

        for name in floats:
            set_tensor(name, bits[name])
        base_rate, base_mse = latent_bits(), distortion()
        for network, names in NETWORKS.items():
            for name, _ in names:
                best = None
                for k in WEIGHT_BITS:
                    set_tensor(name, k)
                    rate = latent_bits() if network == "arm" else base_rate
                    mse = distortion() if network != "arm" else base_mse
                    cost = mse + lmbda * (rate + tensor_bits(name, k)) / pixels
                    if best is None or cost < best[0]:
                        best = (cost, k, rate, mse)
                    elif k > best[1] + 2:  # the cost has turned up for good
                        break
                bits[name] = best[1]
                set_tensor(name, bits[name])
                base_rate, base_mse = best[2], best[3]
        sections = [laplace.encode_tensors([_quantized(floats[name], bits[name]) for name, _ in names],
                                           [bits[name] for name, _ in names]) for names in NETWORKS.values()]
        sections.append(laplace.encode_latents(grids, context, integer_layers(decoder, bits)))
        return sections

    # --- decoding ---------------------------------------------------------------------------------------------
    def read_decoder(self, sections: list[bytes]) -> tuple[Decoder, dict[str, int]]:
        """The decoder the first three sections carry, and the step bits of each tensor."""
        decoder = Decoder()
        bits = {}
        for section, names in zip(sections, NETWORKS.values()):
            values, steps = laplace.decode_tensors(section, [shape for _, shape in names])
            for (name, _), ints, k in zip(names, values, steps):
                ints = np.clip(ints, -(1 << 16), 1 << 16)
                getattr(decoder, name).data.copy_(torch.from_numpy(ints).float() / (1 << k))
                bits[name] = k
        return decoder, bits

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """The image of `compress`'s sections, cropped to its size, in [0, 1]."""
        if len(encoded.sections) != len(NETWORKS) + 1:
            raise BitstreamError(f"expected {len(NETWORKS) + 1} sections, found {len(encoded.sections)}")
        decoder, bits = self.read_decoder(encoded.sections)
        shapes = grid_shapes(*self.padded_size(encoded.height, encoded.width))
        context = laplace.GridContext.build(shapes)
        grids = laplace.decode_latents(encoded.sections[-1], context, integer_layers(decoder, bits))
        latents = [torch.from_numpy(g).float() for g in grids]
        x_hat = torch.nan_to_num(decoder.synthesis(decoder.upsample(latents)), nan=0.0)
        return x_hat[..., : encoded.height, : encoded.width].clamp(0, 1)

    def decode_latents(self, encoded: Encoded) -> list[np.ndarray]:
        """The integer latent grids of a file (tests compare them across thread counts)."""
        decoder, bits = self.read_decoder(encoded.sections)
        context = laplace.GridContext.build(grid_shapes(*self.padded_size(encoded.height, encoded.width)))
        return laplace.decode_latents(encoded.sections[-1], context, integer_layers(decoder, bits))
