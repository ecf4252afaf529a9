"""Laplace entropy model of an overfitted codec: fixed tables, causal grid contexts and an integer ARM.

Used by `licodec.codecs.ladune2023` (Cool-chic, Ladune et al. ICCV 2023). Three parts:

- **Tables.** A fixed family of discretised Laplace distributions, SCALES scales (log2 b from LOG2_SCALE_MIN in
  steps of 1/SCALE_STEPS) times PHASES mean phases (the fractional part of the mean in 1/PHASES). Table (s, f)
  codes v = y - floor(mu) with P(v) = F(v + 1/2 - f/PHASES) - F(v - 1/2 - f/PHASES), F the Laplace CDF of scale b.
  They are built in `decimal` arithmetic (its exp is correctly rounded) and integers only, so every machine
  builds the same integers without storing them.
- **Contexts.** Every latent of a grid sees CONTEXT causal neighbours (dy, dx) with 2 dy + dx < 0. Decoding walks
  each grid in wavefronts t = 2 r + c; every neighbour lies on an earlier wavefront, and all grids advance
  together. `GridContext` holds the fixed gather indices both the encoder and the decoder use, and the same
  neighbourhood as shifted views of a zero-padded grid for the training pass.
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


def gather_training(grid: Tensor) -> Tensor:
    """The CONTEXT causal neighbours of every latent of a (H, W) grid as an (H*W, CONTEXT) tensor, by shifted views
    of the zero-padded grid (differentiable; the same values `GridContext.neighbours` gathers)."""
    h, w = grid.shape
    padded = F.pad(grid[None, None], (PAD_LEFT, PAD_RIGHT, PAD_TOP, 0))[0, 0]
    views = [padded[PAD_TOP + dy : PAD_TOP + dy + h, PAD_LEFT + dx : PAD_LEFT + dx + w] for dy, dx in CONTEXT_OFFSETS]
    return torch.stack(views, -1).reshape(h * w, CONTEXT)


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
