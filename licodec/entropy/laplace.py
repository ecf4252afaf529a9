"""Laplace entropy model of an overfitted codec: fixed tables, causal grid contexts and an integer ARM.

Used by `licodec.codecs.ladune2023` (Cool-chic, Ladune et al. ICCV 2023). Three parts:

- **Tables.** A fixed family of discretised Laplace distributions, SCALES scales (log2 b from LOG2_SCALE_MIN in
  steps of 1/SCALE_STEPS) times PHASES mean phases (the fractional part of the mean in 1/PHASES). Table (s, f)
  codes v = y - floor(mu) with P(v) = F(v + 1/2 - f/PHASES) - F(v - 1/2 - f/PHASES), F the Laplace CDF of scale b.
  They are built in `decimal` arithmetic (its exp is correctly rounded) and integers only, so every machine
  builds the same integers without storing them.
- **Contexts.** Every latent of a grid sees CONTEXT causal neighbours (dy, dx) with 2 dy + dx < 0. Decoding walks
  each grid in wavefronts t = 2 r + c; every neighbour lies on an earlier wavefront, and all grids advance
  together. `GridContext` holds the fixed gather indices both the encoder and the decoder use; the training
  rate (`arm_rate`) takes the same neighbourhood as shifted views of each zero-padded grid.
- **Integer ARM.** The ARM (an MLP from the CONTEXT neighbours to a location and a log2 scale) runs, when coding,
  on integers: weights w = W * 2^-k, activations a = A * 2^-FRAC, exact integer products (float64 holding
  integers below 2^53 is exact in any summation order) and rounding right shifts. Its outputs select a table.
  The same integers come out on every machine and thread count (Ballé et al., ICLR 2019, "Integer networks for
  data compression").

`encode_latents` / `LatentDecoder` and `encode_tensors` / `decode_tensors` are the only calls into
`licodec.entropy.coder`.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from licodec.entropy import coder
from licodec.entropy.tables import PRECISION, CdfTables
from licodec.errors import BitstreamError

# --- the table family -------------------------------------------------------------------------------------
LOG2_SCALE_MIN = -4.0  # b = 1/16: a latent that is almost surely its rounded mean
SCALE_STEPS = 4  # log2 b in quarters
SCALES = 37  # up to log2 b = -4 + 36/4 = 5 (b = 32)
PHASES = 8  # the mean's fractional part in eighths
TAIL_WIDTHS = 12  # a table spans +-(TAIL_WIDTHS * b + 2); beyond, the coder's escape
FRAC = 8  # fractional bits of the integer ARM's activations
ACTIVATION_LIMIT = 1 << 24  # integer activations are clamped here (keeps every sum exact in float64)
CONTEXT_OFFSETS = tuple([(0, dx) for dx in range(-4, 0)] + [(-1, dx) for dx in range(-3, 2)]
                        + [(-2, dx) for dx in range(-3, 4)])  # (dy, dx), all with 2 dy + dx < 0
CONTEXT = len(CONTEXT_OFFSETS)
PAD_TOP, PAD_LEFT, PAD_RIGHT = 2, 4, 3


def scale_of(index: int) -> decimal.Decimal:
    """The Laplace scale b of scale index `index` (exact in decimal: 2 ** (LOG2_SCALE_MIN + index/STEPS))."""
    with decimal.localcontext(decimal.Context(prec=40)):
        return decimal.Decimal(2) ** (decimal.Decimal(LOG2_SCALE_MIN) + decimal.Decimal(index) / SCALE_STEPS)


def _half_width(index: int) -> int:
    return int(TAIL_WIDTHS * scale_of(index)) + 2


def _laplace_cdf(x: decimal.Decimal, b: decimal.Decimal) -> decimal.Decimal:
    if x < 0:
        return (x / b).exp() / 2
    return 1 - (-x / b).exp() / 2


def _table(index: int, phase: int) -> list[int]:
    """Integer frequencies (summing to 2**PRECISION, each >= 1) of table (index, phase), escape last."""
    with decimal.localcontext(decimal.Context(prec=30)):
        b = scale_of(index)
        centre = decimal.Decimal(phase) / PHASES
        half = _half_width(index)
        edges = [_laplace_cdf(decimal.Decimal(v) - decimal.Decimal("0.5") - centre, b)
                 for v in range(-half, half + 2)]
        probs = [hi - lo for lo, hi in zip(edges[:-1], edges[1:])]
        probs.append(1 - (edges[-1] - edges[0]))  # the escape: mass outside the table
        total = 1 << PRECISION
        spare = total - len(probs)
        shares = [p * spare for p in probs]
        counts = [1 + int(share) for share in shares]  # int() truncates: floor of a non-negative
        leftover = total - sum(counts)
        order = sorted(range(len(probs)), key=lambda i: (-(shares[i] - int(shares[i])), i))
        for i in order[:leftover]:
            counts[i] += 1
    return counts


@lru_cache(maxsize=1)
def tables() -> CdfTables:
    """The whole family: table s * PHASES + f codes v from -half(s) to half(s) (see the module docstring)."""
    rows, lengths, offsets = [], [], []
    for s in range(SCALES):
        for f in range(PHASES):
            counts = _table(s, f)
            rows.append(counts)
            lengths.append(len(counts) - 1)
            offsets.append(-_half_width(s))
    freqs = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int32)
    for t, row in enumerate(rows):
        freqs[t, : len(row)] = row
    return CdfTables(freqs=freqs, lengths=np.array(lengths, dtype=np.int32),
                     offsets=np.array(offsets, dtype=np.int32))


def select(location: np.ndarray, log2_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Table indices and integer shifts (floor of the mean) from the integer ARM outputs (both at FRAC bits).

    The mean is rounded to 1/PHASES, its floor is subtracted from the latent and its phase picks the table; the
    log2 scale is rounded to 1/SCALE_STEPS and clamped to the family."""
    shift = FRAC - (PHASES.bit_length() - 1)
    mean = _round_shift(np.asarray(location, dtype=np.int64), shift)
    floor = mean >> (PHASES.bit_length() - 1)
    phase = mean - (floor << (PHASES.bit_length() - 1))
    steps = _round_shift(np.asarray(log2_scale, dtype=np.int64) - int(LOG2_SCALE_MIN * (1 << FRAC)),
                         FRAC - (SCALE_STEPS.bit_length() - 1))
    index = np.clip(steps, 0, SCALES - 1)
    return index * PHASES + phase, floor


def _round_shift(value: np.ndarray, bits: int) -> np.ndarray:
    """value * 2^-bits rounded half up, in integers (an arithmetic shift is a floor)."""
    if bits <= 0:
        return value << -bits
    return (value + (1 << (bits - 1))) >> bits


# --- the Laplace rate of the training pass ----------------------------------------------------------------
def laplace_bits(y: Tensor, location: Tensor, log2_scale: Tensor) -> Tensor:
    """-log2 P(y) of integers (or soft-rounded reals) y under a Laplace of that location and 2^log2_scale, the
    mass of [y - 1/2, y + 1/2]; the log2 scale is clamped to the table family's range and the probability is
    floored at 2^-PRECISION, like the integer tables."""
    low = LOG2_SCALE_MIN
    high = LOG2_SCALE_MIN + (SCALES - 1) / SCALE_STEPS
    b = torch.exp2(log2_scale.clamp(low, high))
    d = (y - location).abs()
    # On the folded axis d = |y - mu|: beyond 1/2 the interval lies on one side, P = e^(-(d-1/2)/b) (1 - e^(-1/b)) / 2
    # (taken in logs, so far latents keep a gradient); within, P = 1 - (e^(-(1/2-d)/b) + e^(-(1/2+d)/b)) / 2.
    far = ((d - 0.5).clamp(min=0) / b - torch.log(0.5 * (-torch.expm1(-1 / b)))) / np.log(2)
    p_near = 1 - 0.5 * (torch.exp(-(0.5 - d).clamp(min=0) / b) + torch.exp(-(0.5 + d) / b))
    near = -torch.log2(p_near.clamp(min=2.0 ** -PRECISION))
    return torch.where(d >= 0.5, far, near)


LN2 = float(np.log(2))
RATE_CHUNK = 65536  # latents per chunk of `arm_rate` (its 16-channel activations stay in cache)


def _laplace_terms(y: Tensor, location: Tensor, log2_scale: Tensor,
                   gradient: bool) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """`laplace_bits` of each y and, with `gradient`, its derivatives with respect to y and to the log2 scale
    (the derivative with respect to the location is minus that with respect to y)."""
    low = LOG2_SCALE_MIN
    high = LOG2_SCALE_MIN + (SCALES - 1) / SCALE_STEPS
    clamped = log2_scale.clamp(low, high)
    inv_b = torch.exp2(-clamped)
    diff = y - location
    d = diff.abs()
    one_minus_q = -torch.expm1(-inv_b)  # 1 - e^(-1/b)
    beyond = (d - 0.5).clamp_(min=0)
    within = (0.5 - d).clamp_(min=0)
    far_side = d >= 0.5
    far = (beyond * inv_b - torch.log(0.5 * one_minus_q)) / LN2
    a = torch.exp(-within * inv_b)
    b_term = torch.exp(-(0.5 + d) * inv_b)
    p = 1 - 0.5 * (a + b_term)
    floor = 2.0 ** -PRECISION
    near = -torch.log2(p.clamp(min=floor))
    bits = torch.where(far_side, far, near)
    if not gradient:
        return bits, None, None
    # far: d/dd = 1 / (b ln 2), d/ds = (q / (1 - q) - beyond) / b, with q = e^(-1/b)
    # near: d/dd = (a [d < 1/2] - b_term) / (2 b p ln 2), d/ds = (a within + b_term (1/2 + d)) / (2 b p)
    inv_p = torch.where(p >= floor, 1 / p, 0.0)
    d_near = (a * (d < 0.5) - b_term) * inv_b * inv_p / (2 * LN2)
    d_far = inv_b / LN2
    grad_y = torch.where(far_side, d_far, d_near) * torch.sign(diff)
    s_far = ((1 - one_minus_q) / one_minus_q - beyond) * inv_b
    s_near = (a * within + b_term * (0.5 + d)) * inv_b * inv_p / 2
    inside = (log2_scale >= low) & (log2_scale <= high)
    grad_s = torch.where(far_side, s_far, s_near) * inside
    return bits, grad_y, grad_s


def _row_chunks(height: int, width: int) -> list[tuple[int, int]]:
    rows = max(1, RATE_CHUNK // max(width, 1))
    return [(r, min(r + rows, height)) for r in range(0, height, rows)]


def _context_columns(padded: Tensor, r0: int, r1: int, width: int) -> Tensor:
    """(CONTEXT, (r1 - r0) * width): the causal neighbours of rows r0..r1 of a grid padded by `_pad`."""
    return torch.stack([padded[PAD_TOP + dy + r0 : PAD_TOP + dy + r1, PAD_LEFT + dx : PAD_LEFT + dx + width]
                        for dy, dx in CONTEXT_OFFSETS]).reshape(CONTEXT, -1)


def _pad(grid: Tensor) -> Tensor:
    return F.pad(grid[None, None], (PAD_LEFT, PAD_RIGHT, PAD_TOP, 0))[0, 0]


class _ArmRate(torch.autograd.Function):
    """Sum of `laplace_bits` over latent grids, each latent under the ARM of its causal neighbours; chunked, with
    the activations recomputed in the backward pass (see `arm_rate`)."""

    @staticmethod
    def _arm(context: Tensor, w1, b1, w2, b2, w3, b3) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        h1 = torch.addmm(b1[:, None], w1, context).relu_()
        relu2 = torch.addmm(b2[:, None], w2, h1).relu_()
        h2 = torch.add(relu2, h1)
        return h1, relu2, h2, torch.addmm(b3[:, None], w3, h2)

    @staticmethod
    def forward(ctx, w1, b1, w2, b2, w3, b3, *grids: Tensor) -> Tensor:  # noqa: D102
        weights = (w1, b1, w2, b2, w3, b3)
        total = torch.zeros((), dtype=grids[0].dtype)
        for grid in grids:
            height, width = grid.shape
            padded = _pad(grid)
            for r0, r1 in _row_chunks(height, width):
                out = _ArmRate._arm(_context_columns(padded, r0, r1, width), *weights)[3]
                bits, _, _ = _laplace_terms(grid[r0:r1].reshape(-1), out[0], out[1], gradient=False)
                total += bits.sum()
        ctx.save_for_backward(*weights, *grids)
        return total

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # noqa: D102
        w1, b1, w2, b2, w3, b3, *grids = ctx.saved_tensors
        weights = (w1, b1, w2, b2, w3, b3)
        grad_weights = [torch.zeros_like(t) for t in weights]
        gw1, gb1, gw2, gb2, gw3, gb3 = grad_weights
        grad_grids = []
        for grid in grids:
            height, width = grid.shape
            padded = _pad(grid)
            grad_padded = torch.zeros_like(padded)
            for r0, r1 in _row_chunks(height, width):
                context = _context_columns(padded, r0, r1, width)
                h1, relu2, h2, out = _ArmRate._arm(context, *weights)
                _, grad_y, grad_s = _laplace_terms(grid[r0:r1].reshape(-1), out[0], out[1], gradient=True)
                grad_out = torch.stack([-grad_y, grad_s]).mul_(grad)
                gw3.addmm_(grad_out, h2.t())
                gb3.add_(grad_out.sum(1))
                grad_h2 = torch.mm(w3.t(), grad_out)
                grad_pre2 = torch.ops.aten.threshold_backward(grad_h2, relu2, 0)
                gw2.addmm_(grad_pre2, h1.t())
                gb2.add_(grad_pre2.sum(1))
                grad_pre1 = torch.ops.aten.threshold_backward(torch.addmm(grad_h2, w2.t(), grad_pre2), h1, 0)
                gw1.addmm_(grad_pre1, context.t())
                gb1.add_(grad_pre1.sum(1))
                grad_context = torch.mm(w1.t(), grad_pre1).reshape(CONTEXT, r1 - r0, width)
                for k, (dy, dx) in enumerate(CONTEXT_OFFSETS):
                    grad_padded[PAD_TOP + dy + r0 : PAD_TOP + dy + r1, PAD_LEFT + dx : PAD_LEFT + dx + width].add_(
                        grad_context[k])
                grad_padded[PAD_TOP + r0 : PAD_TOP + r1, PAD_LEFT : PAD_LEFT + width].add_(
                    grad_y.mul_(grad).reshape(r1 - r0, width))
            grad_grids.append(grad_padded[PAD_TOP:, PAD_LEFT : PAD_LEFT + width])
        return (*grad_weights, *grad_grids)


def arm_rate(grids: list[Tensor], weights: list[Tensor]) -> Tensor:
    """The training rate in bits: `laplace_bits` of every latent of the (H, W) `grids` under the Laplace that the
    float ARM `weights` (w1, b1, w2, b2, w3, b3: relu(L1), residual relu(L2), L3 to location and log2 scale) give
    from its CONTEXT causal neighbours in its own grid (zero outside). Differentiable in the grids (as values
    coded and as contexts) and the weights; computed in chunks of rows with the activations recomputed in the
    backward pass, so its memory traffic stays in cache."""
    return _ArmRate.apply(*weights, *grids)


# --- contexts ---------------------------------------------------------------------------------------------
@dataclass
class GridContext:
    """Fixed gather indices over the latent grids of one image size (see the module docstring).

    All grids live in one flat int64 buffer, each zero-padded by PAD_TOP rows and PAD_LEFT / PAD_RIGHT columns.
    `position[i]` is where latent i (grids in order, each in raster order) sits in the buffer, `neighbours[i]`
    where its CONTEXT neighbours sit, `wavefront[i]` its decoding step; `order` lists the latents by step (then
    grid, then row) and `starts` delimits each step in it."""

    shapes: list[tuple[int, int]]
    size: int
    position: np.ndarray
    neighbours: np.ndarray
    wavefront: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def build(cls, shapes: list[tuple[int, int]]) -> GridContext:  # noqa: D102
        positions, neighbours, fronts = [], [], []
        base = 0
        for h, w in shapes:
            stride = w + PAD_LEFT + PAD_RIGHT
            rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
            flat = base + (rows + PAD_TOP) * stride + cols + PAD_LEFT
            positions.append(flat.ravel())
            neighbours.append(np.stack([flat.ravel() + dy * stride + dx for dy, dx in CONTEXT_OFFSETS], 1))
            fronts.append((2 * rows + cols).ravel())
            base += (h + PAD_TOP) * stride
        position = np.concatenate(positions).astype(np.int64)
        wavefront = np.concatenate(fronts).astype(np.int64)
        order = np.argsort(wavefront, kind="stable")
        starts = np.searchsorted(wavefront[order], np.arange(int(wavefront.max()) + 2))
        return cls(list(shapes), base, position, np.concatenate(neighbours).astype(np.int64), wavefront, order,
                   starts)

    def buffer(self, grids: list[np.ndarray]) -> np.ndarray:
        """The flat padded buffer holding integer grids (the encoder's view: everything known)."""
        buffer = np.zeros(self.size, dtype=np.int64)
        buffer[self.position] = np.concatenate([np.asarray(g, dtype=np.int64).ravel() for g in grids])
        return buffer

    def split(self, values: np.ndarray) -> list[np.ndarray]:
        """Per-latent values (grids in order, raster order) cut back into grids."""
        out, start = [], 0
        for h, w in self.shapes:
            out.append(values[start : start + h * w].reshape(h, w))
            start += h * w
        return out


# --- the integer ARM --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntegerLayer:
    """A linear layer w = weight * 2^-weight_bits, bias = bias * 2^-bias_bits (integers, out x in)."""

    weight: np.ndarray
    weight_bits: int
    bias: np.ndarray
    bias_bits: int


def integer_arm(context: np.ndarray, layers: list[IntegerLayer]) -> tuple[np.ndarray, np.ndarray]:
    """Run the ARM of `licodec.codecs.ladune2023` on integer contexts (n, CONTEXT): relu(L1), then a residual
    relu(L2) + h, then L3 to (location, log2 scale), both integers at FRAC bits. Deterministic (see module)."""
    first, middle, last = layers
    h = np.maximum(_layer(np.asarray(context, dtype=np.int64), 0, first), 0)
    h = np.maximum(_layer(h, FRAC, middle), 0) + h
    out = _layer(h, FRAC, last)
    return out[:, 0], out[:, 1]


def _layer(a: np.ndarray, a_bits: int, layer: IntegerLayer) -> np.ndarray:
    a = np.clip(a, -ACTIVATION_LIMIT, ACTIVATION_LIMIT)
    product = (a.astype(np.float64) @ layer.weight.T.astype(np.float64)).astype(np.int64)  # exact: < 2^53
    bits = layer.weight_bits + a_bits
    bias = _round_shift(layer.bias.astype(np.int64), layer.bias_bits - bits)
    return np.clip(_round_shift(product + bias, bits - FRAC), -ACTIVATION_LIMIT, ACTIVATION_LIMIT)


# --- coding -----------------------------------------------------------------------------------------------
def encode_latents(grids: list[np.ndarray], context: GridContext, layers: list[IntegerLayer]) -> bytes:
    """Code integer latent grids in wavefronts, each latent with the table its causal neighbours select."""
    buffer = context.buffer(grids)
    location, log2_scale = integer_arm(buffer[context.neighbours], layers)
    table, floor = select(location, log2_scale)
    symbols = buffer[context.position] - floor
    chunks = []
    for t in range(len(context.starts) - 1):
        which = context.order[context.starts[t] : context.starts[t + 1]]
        chunks.append((symbols[which], table[which]))
    return coder.encode_chunks(chunks, tables())


def latent_cost(grids: list[np.ndarray], context: GridContext, layers: list[IntegerLayer]) -> float:
    """The ideal code length in bits of `encode_latents` (its integer tables' -log2 probabilities, escapes
    counted as the coder codes them): what the encoder minimises when it picks weight steps."""
    family = tables()
    buffer = context.buffer(grids)
    location, log2_scale = integer_arm(buffer[context.neighbours], layers)
    table, floor = select(location, log2_scale)
    v = buffer[context.position] - floor - family.offsets[table]
    length = family.lengths[table]
    inside = (v >= 0) & (v < length)
    freq = family.freqs[table, np.where(inside, v, length)].astype(np.float64)
    bits = PRECISION - np.log2(freq)
    # an escape adds its sign, its bit length (1 of 33) and 16-bit chunks (`licodec.entropy.coder`)
    escape = np.abs(np.where(inside, 0, np.where(v < 0, v, v - length)))[~inside]
    chunks = np.ceil(np.floor(np.log2(np.maximum(escape, 1)) + 1) * (escape > 0) / 16)
    return float(bits.sum() + (1 + np.log2(33) + 16 * chunks).sum())


def decode_latents(data: bytes, context: GridContext, layers: list[IntegerLayer]) -> list[np.ndarray]:
    """Inverse of `encode_latents`: the integer grids, decoded wavefront by wavefront."""
    decoder = coder.ChunkDecoder(data, tables())
    buffer = np.zeros(context.size, dtype=np.int64)
    for t in range(len(context.starts) - 1):
        which = context.order[context.starts[t] : context.starts[t + 1]]
        location, log2_scale = integer_arm(buffer[context.neighbours[which]], layers)
        table, floor = select(location, log2_scale)
        values = decoder.decode(table) + floor
        buffer[context.position[which]] = np.clip(values, -(1 << 20), 1 << 20)  # damage cannot overflow later
    return context.split(buffer[context.position])


def _weights_table(values: np.ndarray) -> int:
    """The scale index whose Laplace fits integers `values` (zero mean) best by mean absolute value."""
    mean_abs = float(np.abs(values).mean()) if values.size else 0.0
    if mean_abs <= 0:
        return 0
    steps = round((np.log2(mean_abs) - LOG2_SCALE_MIN) * SCALE_STEPS)
    return int(min(max(steps, 0), SCALES - 1))


def encode_tensors(tensors: list[np.ndarray], bits: list[int]) -> bytes:
    """Code integer tensors (a network's quantized weights, each times 2^-bits) into one section: per tensor a
    byte of bits and a byte of table, then the integers, each tensor with its zero-mean Laplace table."""
    head = bytearray()
    chunks = []
    for values, k in zip(tensors, bits):
        if not 0 <= k < 256:
            raise ValueError(f"weight bits {k} out of range")
        values = np.asarray(values, dtype=np.int64).ravel()
        s = _weights_table(values)
        head += bytes([k, s])
        chunks.append((values, np.full(values.shape, s * PHASES, dtype=np.int64)))
    return bytes(head) + coder.encode_chunks(chunks, tables())


def decode_tensors(data: bytes, shapes: list[tuple[int, ...]]) -> tuple[list[np.ndarray], list[int]]:
    """Inverse of `encode_tensors`, given the tensors' shapes: the integer tensors and their bits."""
    head = 2 * len(shapes)
    if len(data) < head:
        raise BitstreamError("a network section is shorter than its header")
    bits = [data[2 * i] for i in range(len(shapes))]
    table_of = [data[2 * i + 1] for i in range(len(shapes))]
    if max(table_of, default=0) >= SCALES or max(bits, default=0) > 30:
        raise BitstreamError("a network section names a table or step that does not exist")
    decoder = coder.ChunkDecoder(data[head:], tables())
    out = []
    for shape, s in zip(shapes, table_of):
        n = int(np.prod(shape))
        out.append(decoder.decode(np.full(n, s * PHASES, dtype=np.int64)).reshape(shape))
    return out, bits
