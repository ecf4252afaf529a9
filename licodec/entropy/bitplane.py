"""A fast, exact bitplane coder: integer logistic contexts over whole batches of bits (Rippel & Bourdev 2017 [6]).

[6] codes its bitplanes with an adaptive arithmetic coder whose contexts are a few features of the bits already
coded, not a deep network per bit. This module is that design, vectorized:

- The planes of C coefficient channels (H x W each, B bits per coefficient) are coded plane by plane, most
  significant first. Plane p of every coefficient is coded in `BATCHES` = 12 batches: channel group
  g = c mod `GROUPS` (0, 1, 2), then spatial phase, the 2x2 polyphase components (i mod 2, j mod 2) = (0, 0),
  (1, 1), (0, 1), (1, 0), in the order (g, phase). A batch's contexts read only bits of earlier planes (all of
  them: the whole neighbourhood, not only a causal half) and the bits of earlier batches of the same plane, so the
  decoder computes every context of a batch at once: 12 vectorized steps a plane whatever the image size.
- The context of a bit is a small logistic model in integer arithmetic. Its logit, in 1/`UNIT` nats, is a sum of
  integer table entries selected by integer features, plus two channel-mixing products:

      logit = own[p, batch, bucket(prefix)] + channel[p, s, c] + near[p, s, n8] + ring[p, s, n16]
            + across[p, s, bucket(m)] + magnitude[p, s, bucket(v8)] + around[p, s, bucket(a)]
            + plane_near[p, s, phase, o8] + plane_across[p, s, bucket(o)] + plane_around[p, s, bucket(q)]
            + sum_c' mix_sig[p, c, c'] sig[c'] + sum_c' mix_bit[p, c, c'] bit[c']
            + offset[p, c] (per image, sent in the file)

  with prefix the coefficient's more significant bits (the value of planes 0 .. p-1), s = prefix > 0 (the
  coefficient is already significant), n8 / n16 the significant coefficients of the same channel among the 8
  neighbours / the 16 of the 5x5 ring, m the significant coefficients of the other channels at the same position,
  v8 the sum of the 8 neighbours' prefixes (each capped at 3), a the significant coefficients of all channels in
  the 8 neighbouring positions, o8 the ones of plane p among the 8 neighbours of the same channel already coded
  (by the bit's phase, which says which neighbours are), o / q the ones of plane p already coded at the same
  position / in the 8 neighbouring positions (all channels), sig[c'] / bit[c'] channel c''s significance / plane-p
  bit at the same position (bit[c'] = 0 where not yet coded). Every product and sum is an exact integer (the
  mixing products are float64 matrix products of integers below 2**53, exact whatever the order of summation).
- Per-image adaptation, semi-static: before each plane the encoder sends one offset per channel (4 bits, -2 .. +1.75
  nats in quarter nats), chosen exactly (integer histograms of the plane's logits and integer code lengths) to code
  that channel's bits of the plane in the fewest bits; it corrects a model fitted on other images where an image is
  smoother or busier than they were (on Kodak's smooth kodim02, 19 % of the bytes at one plane, 6 % at five).
- The probability of a one is `SIGMOID[clamp(logit, -CAP, CAP)]`, a stored integer table (16-bit fixed point,
  within [1, 2**16 - 1], one entry per 1/32 nat); encoder and decoder index the same table with the same
  integer, so they agree on every machine and thread count. The bits go through
  `licodec.entropy.coder.encode_binary_chunks`, one chunk per batch (and one for each plane's offsets).

The table entries are fitted offline on the bitplanes of a trained model (`benchmarks/fit_rippel2017_coder.py`,
float logistic regression with the same features, `float_logits`, then rounded to 1/32 nat), never at coding time.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.context import one_thread
from licodec.errors import BitstreamError

GROUPS = 3  # channel groups c mod 3
PHASES = 4  # spatial phases: (i mod 2, j mod 2) = (0, 0), (1, 1), (0, 1), (1, 0), in that order
BATCHES = PHASES * GROUPS  # (group, phase), in that order
UNIT = 32  # weights and logits in 1/32 nats
CAP = 12  # logits beyond +-12 nats read as +-12
OFFSET_UNIT = 8  # per-image offsets of a channel's logits in one plane, in 1/4 nat
OFFSET_BITS = 4  # each within -8 .. 7 (-2 .. +1.75 nats), sent as 4 bits
MIXES = ("mix_sig", "mix_bit")  # the channel-mixing tables, stored as int8 (within +-127/32 nats); the others int16
PROBABILITY_BITS = 16
OWN_BUCKETS = np.array([0, 1, 2, 2, 3])  # prefix 0, 1, 2-3, 4+ (index min(prefix, 4))
RING_BUCKETS = np.array([0, 1, 2, 3, 3, 4, 4, 4, 4] + [5] * 8)  # 0, 1, 2, 3-4, 5-8, 9-16
COUNT_BUCKETS = np.array([0, 1, 2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6] + [7] * 20)  # 0,1,2,3,4-5,6-8,9-12,13+ (to 32)
WIDE_BUCKETS = np.array([0, 1, 2, 3, 3] + [4] * 4 + [5] * 8 + [6] * 16 + [7])  # 0,1,2,3-4,5-8,9-16,17-32,33+


def _wide(count: np.ndarray) -> np.ndarray:
    """Bucket of a count that may be large (up to C times a neighbourhood): WIDE_BUCKETS, 33 and above last."""
    return WIDE_BUCKETS[np.minimum(count, WIDE_BUCKETS.size - 1)]


def table_shapes(channels: int) -> dict[str, tuple[int, ...]]:
    """The shape of each weight table of a coder for `channels` channels, without the leading planes axis."""
    return {"own": (BATCHES, 4), "channel": (2, channels), "near": (2, 9), "ring": (2, 6), "across": (2, 8),
            "magnitude": (2, 8), "around": (2, 8), "plane_near": (2, PHASES, 9), "plane_across": (2, 8),
            "plane_around": (2, 8), "mix_sig": (channels, channels), "mix_bit": (channels, channels)}


def sigmoid_table() -> Tensor:
    """P(1) in 1/2**16, less 2**15 (so that it fits int16), for logits -CAP .. CAP nats in steps of 1 / UNIT, P(1)
    within [1, 2**16 - 1]. Computed once in float and stored with the weights: coding only indexes it."""
    steps = CAP * UNIT
    half = 1 << (PROBABILITY_BITS - 1)
    values = [min(max(round((1 << PROBABILITY_BITS) / (1 + math.exp(-k / UNIT))), 1), (1 << PROBABILITY_BITS) - 1)
              for k in range(-steps, steps + 1)]
    return torch.tensor(values, dtype=torch.int32).sub(half).to(torch.int16)


def batches(channels: int, height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The `BATCHES` batches of one plane in coding order, each as (its channels, its flat positions i * W + j):
    channel group g = c mod GROUPS, then checkerboard parity (i + j) mod 2. A batch's bits are taken channel by
    channel, each channel's in raster order. The batches partition the plane."""
    return [(np.arange(g, channels, GROUPS), np.flatnonzero(phase == k))
            for phase in [_phases(height, width)] for g in range(GROUPS) for k in range(PHASES)]


def _phases(height: int, width: int) -> np.ndarray:
    """The spatial phase of every flat position: 2x2 polyphase (0, 0), (1, 1), (0, 1), (1, 0) -> 0, 1, 2, 3 (with
    PHASES = 2, the checkerboard (i + j) mod 2)."""
    rows, cols = np.meshgrid(np.arange(height) % 2, np.arange(width) % 2, indexing="ij")
    if PHASES == 2:
        return ((rows + cols) % 2).ravel()
    return np.array([[0, 2], [3, 1]])[rows, cols].ravel()


@lru_cache(maxsize=8)
def _batch_map(channels: int, height: int, width: int) -> np.ndarray:
    """(C, H * W): the batch of every bit of a plane (read-only, cached per shape)."""
    index = np.zeros((channels, height * width), dtype=np.int64)
    for k, (chs, pos) in enumerate(batches(channels, height, width)):
        index[np.ix_(chs, pos)] = k
    index.setflags(write=False)
    return index


def batch_masks(channels: int, height: int, width: int) -> list[np.ndarray]:
    """The batches of `batches` as boolean (C, H, W) masks."""
    masks = []
    for chs, pos in batches(channels, height, width):
        mask = np.zeros((channels, height * width), dtype=bool)
        mask[np.ix_(chs, pos)] = True
        masks.append(mask.reshape(channels, height, width))
    return masks


def _neighbour_sum(volume: np.ndarray, offsets: list[tuple[int, int]]) -> np.ndarray:
    """Sum over `offsets` (di, dj) of the shifted (C, H, W) volume, zero outside."""
    _, h, w = volume.shape
    r = max(max(abs(di), abs(dj)) for di, dj in offsets)
    padded = np.pad(volume.astype(np.int32), ((0, 0), (r, r), (r, r)))
    total = np.zeros(volume.shape, dtype=np.int32)
    for di, dj in offsets:
        total += padded[:, r + di : r + di + h, r + dj : r + dj + w]
    return total


NEAR = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
RING = [(di, dj) for di in range(-2, 3) for dj in range(-2, 3) if max(abs(di), abs(dj)) == 2]


def _mix(weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """weights (n, C) @ inputs (C, m) of integers, exact: float64 products and sums of integers far below 2**53
    are exact whatever the order of summation. Through torch, which `walk` keeps on one thread (numpy's BLAS
    would start threads of its own: 100 times slower on busy cores)."""
    product = torch.from_numpy(weights.astype(np.float64)) @ torch.from_numpy(inputs.astype(np.float64))
    return product.numpy().astype(np.int64)


def _take(table: np.ndarray, row: np.ndarray, column: np.ndarray) -> np.ndarray:
    """table[row, column] of a 2D table, through one flat index (faster than two index arrays)."""
    return np.take(table.ravel(), row * table.shape[1] + column)


class PlaneFeatures:
    """The features of plane `plane` of a (C, H, W) volume: those that depend only on more significant planes,
    computed once for the whole plane, and those that read the plane's bits already coded (`dynamic`, per batch).
    Arrays are (C, H * W)."""

    def __init__(self, prefix: np.ndarray, plane: int) -> None:
        """prefix: (C, H, W) int64, each coefficient's value in planes 0 .. plane-1 (0 for plane 0)."""
        self.plane = plane
        self.shape = prefix.shape
        c, h, w = prefix.shape
        sig = (prefix > 0).astype(np.int64)
        self.sig = sig.reshape(c, -1)
        self.own = OWN_BUCKETS[np.minimum(prefix, 4)].reshape(c, -1)
        self.near = _neighbour_sum(sig, NEAR).reshape(c, -1)
        self.ring = RING_BUCKETS[_neighbour_sum(sig, RING)].reshape(c, -1)
        self.across = COUNT_BUCKETS[np.minimum(self.sig.sum(0, keepdims=True) - self.sig, 32)]
        self.magnitude = COUNT_BUCKETS[np.minimum(_neighbour_sum(np.minimum(prefix, 3), NEAR), 32)].reshape(c, -1)
        everywhere = sig.sum(0, keepdims=True)  # (1, H, W) significant coefficients of all channels
        self.around = np.broadcast_to(_wide(_neighbour_sum(everywhere, NEAR)).reshape(1, -1), self.sig.shape)
        self.channel = np.broadcast_to(np.arange(c)[:, None], self.sig.shape)
        self.phase = np.broadcast_to(_phases(h, w)[None], self.sig.shape)
        self.batch = _batch_map(c, h, w)

    def static(self, chs: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the bits of channels `chs` at flat positions `pos` (len(chs), len(pos)) that depend on
        earlier planes only."""
        take = np.ix_(chs, pos)
        return {"sig": self.sig[take], "own": self.own[take], "near": self.near[take], "ring": self.ring[take],
                "across": self.across[take], "magnitude": self.magnitude[take], "around": self.around[take],
                "channel": self.channel[take], "batch": self.batch[take]}

    def dynamic(self, bits: np.ndarray, chs: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the bits of channels `chs` at positions `pos` that read plane `plane`'s bits already coded:
        `bits` (C, H * W) holds them, and 0 wherever not yet coded (the caller's contract: what the decoder knows
        at this batch, nothing more)."""
        _, h, w = self.shape
        padded = np.pad(bits[chs].reshape(len(chs), h, w), ((0, 0), (1, 1), (1, 1))).reshape(len(chs), -1)
        centre = (pos // w + 1) * (w + 2) + pos % w + 1  # the positions in the padded planes
        near = sum(padded[:, centre + di * (w + 2) + dj] for di, dj in NEAR)
        everywhere = bits.sum(0).reshape(1, h, w)  # plane p's ones coded so far, all channels
        shape = (len(chs), len(pos))
        return {"phase": int(self.phase[chs[0], pos[0]]),  # one phase per batch
                "plane_near": near,
                "plane_across": np.broadcast_to(COUNT_BUCKETS[np.minimum(everywhere.reshape(-1)[pos], 32)], shape),
                "plane_around": np.broadcast_to(_wide(_neighbour_sum(everywhere, NEAR).reshape(-1)[pos]), shape)}


class BitplaneContext(nn.Module):
    """The integer logistic model of the bitplanes of `channels` channels of `planes` bits, and its coding.

    The weights are int16 / int8 buffers in 1/UNIT nats (saved with the codec's weights); `samples` / `float_logits` /
    `set_tables` serve fitting, `encode` / `decode` coding, `probabilities` the training pass's rate estimate (the
    exact probabilities the coder uses)."""

    def __init__(self, channels: int, planes: int) -> None:
        super().__init__()
        self.channels = channels
        self.planes = planes
        for name, shape in table_shapes(channels).items():
            dtype = torch.int8 if name in MIXES else torch.int16
            self.register_buffer(name, torch.zeros((planes, *shape), dtype=dtype))
        self.register_buffer("sigmoid", sigmoid_table())
        self._cache: dict[str, np.ndarray] | None = None

    def reset(self) -> None:
        """Forget the numpy copies of the tables (after they change)."""
        self._cache = None

    def _tables(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {name: getattr(self, name).numpy().astype(np.int64)
                           for name in (*table_shapes(self.channels), "sigmoid")}
            self._cache["sigmoid"] += 1 << (PROBABILITY_BITS - 1)
        return self._cache

    def static_logits(self, features: PlaneFeatures) -> np.ndarray:
        """(C, H * W) integer logits (1/UNIT nats) of a plane from the features of the earlier planes."""
        t = self._tables()
        p, f, s = features.plane, features, features.sig
        logit = _take(t["own"][p], f.batch, f.own) + _take(t["channel"][p], s, f.channel)
        for name in ("near", "ring", "across", "magnitude", "around"):
            logit += _take(t[name][p], s, getattr(f, name))
        return logit + _mix(t["mix_sig"][p], f.sig)

    def logits(self, features: PlaneFeatures, static: np.ndarray, bits: np.ndarray, chs: np.ndarray,
               pos: np.ndarray) -> np.ndarray:
        """(len(chs), len(pos)) integer logits of one batch: `static` (from `static_logits`) plus the terms that
        read the plane's bits already coded, `bits` (C, H * W), 0 where not yet coded."""
        t = self._tables()
        p = features.plane
        s = features.sig[np.ix_(chs, pos)]
        f = features.dynamic(bits, chs, pos)
        logit = (static[np.ix_(chs, pos)] + _take(t["plane_near"][p, :, f["phase"]], s, f["plane_near"])
                 + _take(t["plane_across"][p], s, f["plane_across"])
                 + _take(t["plane_around"][p], s, f["plane_around"]))
        return logit + _mix(t["mix_bit"][p, chs], bits[:, pos])

    def probability(self, logit: np.ndarray) -> np.ndarray:
        """P(1) in 1/2**16 (int64, within [1, 2**16 - 1]) of integer logits."""
        table = self._tables()["sigmoid"]
        steps = (len(table) - 1) // 2
        return table[np.clip(logit, -steps, steps) + steps]

    def walk(self, planes: int, shape: tuple[int, int, int], step, begin=None) -> np.ndarray:
        """Visit planes 0 .. planes-1 batch by batch in coding order; returns the (C, H, W) codes of those planes
        (their value as the top bits of a `self.planes`-bit code, the planes not coded zero).

        step(logits, p, chs, pos) returns the (len(chs), len(pos)) bits of plane p's batch (chs, pos) given their
        integer logits (`logits`, before the per-image offsets): the encoder reads them from its codes, the decoder
        decodes them. begin(p), when given, is called before plane p's first batch (the decoder reads the plane's
        offsets there)."""
        if not 1 <= planes <= self.planes or shape[0] != self.channels:
            raise ValueError(f"{planes} planes of {shape[0]} channels; the coder has {self.planes} of "
                             f"{self.channels}")
        with one_thread():
            return self._walk(planes, shape, step, begin)

    def _walk(self, planes: int, shape: tuple[int, int, int], step, begin) -> np.ndarray:
        c, h, w = shape
        prefix = np.zeros(shape, dtype=np.int64)
        order = batches(c, h, w)
        for p in range(planes):
            if begin is not None:
                begin(p)
            features = PlaneFeatures(prefix, p)
            static = self.static_logits(features)
            bits = np.zeros((c, h * w), dtype=np.int64)
            for chs, pos in order:
                logits = self.logits(features, static, bits, chs, pos)
                found = np.asarray(step(logits, p, chs, pos), dtype=np.int64).reshape(logits.shape)
                if found.size and (found.min() < 0 or found.max() > 1):
                    raise BitstreamError("a bitplane symbol is not a bit")
                bits[np.ix_(chs, pos)] = found
            prefix = prefix * 2 + bits.reshape(shape)
        return prefix << (self.planes - planes)

    def _plane_bits(self, codes: np.ndarray, p: int, chs: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return (codes.reshape(codes.shape[0], -1)[np.ix_(chs, pos)] >> (self.planes - 1 - p)) & 1

    # --- per-image offsets ---------------------------------------------------------------------------------------

    def _costs(self) -> tuple[np.ndarray, np.ndarray]:
        """Code lengths of a 0 and of a 1 at every entry of the sigmoid table, in 1/4096 bit (integers: the
        encoder's choice of offsets is the same on every machine; the decoder never needs them)."""
        t = self._tables()
        if "cost0" not in t:
            one = t["sigmoid"].astype(np.float64) / (1 << PROBABILITY_BITS)
            t["cost1"] = np.round(-np.log2(one) * 4096).astype(np.int64)
            t["cost0"] = np.round(-np.log2(1 - one) * 4096).astype(np.int64)
        return t["cost0"], t["cost1"]

    def choose_offsets(self, plane: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
        """The per-channel offsets (C,) in [-2**(OFFSET_BITS-1), 2**(OFFSET_BITS-1) - 1] units of OFFSET_UNIT that
        code one plane's batches [(chs, logits, bits)] in the fewest bits (ties: the smallest offset in magnitude),
        found exactly from integer histograms of the logits."""
        cost0, cost1 = self._costs()
        steps = (len(cost0) - 1) // 2
        reach = OFFSET_UNIT << (OFFSET_BITS - 1)
        width = 2 * (steps + reach) + 1
        counts = np.zeros((2, self.channels * width), dtype=np.int64)
        for chs, logits, bits in plane:
            index = np.clip(logits, -steps - reach, steps + reach) + steps + reach + (chs * width)[:, None]
            counts += np.stack([np.bincount(index[bits == b], minlength=counts.shape[1]) for b in (0, 1)])
        counts = counts.reshape(2, self.channels, width)
        grid = np.arange(width) - steps - reach
        best = np.zeros(self.channels, dtype=np.int64)
        best_cost = None
        half = 1 << (OFFSET_BITS - 1)
        for offset in sorted(range(-half, half), key=abs):
            entry = np.clip(grid + offset * OFFSET_UNIT, -steps, steps) + steps
            cost = counts[0] @ cost0[entry] + counts[1] @ cost1[entry]
            if best_cost is None:
                best_cost = cost
            better = cost < best_cost
            best[better], best_cost[better] = offset, cost[better]
        return best

    def _offset_symbols(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bits, probabilities) of a plane's offsets: OFFSET_BITS bits each, most significant first, at P = 1/2."""
        values = offsets + (1 << (OFFSET_BITS - 1))
        bits = (values[:, None] >> np.arange(OFFSET_BITS - 1, -1, -1)) & 1
        return bits.ravel(), np.full(bits.size, 1 << (PROBABILITY_BITS - 1))

    def _adjusted(self, logits: np.ndarray, offsets: np.ndarray, chs: np.ndarray) -> np.ndarray:
        return self.probability(logits + offsets[chs][:, None] * OFFSET_UNIT)

    def _plan(self, codes: np.ndarray, planes: int) -> list[tuple[np.ndarray, list]]:
        """The encoder's view: per plane, its offsets and batches [(chs, pos, logits, bits)]."""
        recorded: list[list] = [[] for _ in range(planes)]

        def step(logits: np.ndarray, p: int, chs: np.ndarray, pos: np.ndarray) -> np.ndarray:
            bits = self._plane_bits(codes, p, chs, pos)
            recorded[p].append((chs, pos, logits, bits))
            return bits

        self.walk(planes, codes.shape, step)
        return [(self.choose_offsets([(chs, logits, bits) for chs, _, logits, bits in plane]), plane)
                for plane in recorded]

    # --- coding --------------------------------------------------------------------------------------------------

    def encode(self, codes: Tensor, planes: int) -> bytes:
        """The top `planes` bitplanes of (C, H, W) integer `codes` (each below 2**self.planes) as one section:
        per plane, its per-channel offsets, then its batches."""
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        for offsets, plane in self._plan(codes.numpy().astype(np.int64), planes):
            chunks.append(self._offset_symbols(offsets))
            chunks += [(bits, self._adjusted(logits, offsets, chs)) for chs, _, logits, bits in plane]
        return coder.encode_binary_chunks(chunks)

    def decode(self, section: bytes, planes: int, shape: tuple[int, int, int]) -> Tensor:
        """The (C, H, W) codes of `encode`'s section (the planes not coded are zeros). Damaged data raises
        `BitstreamError`."""
        decoder = coder.BinaryDecoder(section)
        offsets = np.zeros(shape[0], dtype=np.int64)

        def begin(p: int) -> None:
            bits = decoder.decode(self._offset_symbols(offsets)[1]).reshape(-1, OFFSET_BITS)
            offsets[:] = (bits << np.arange(OFFSET_BITS - 1, -1, -1)).sum(1) - (1 << (OFFSET_BITS - 1))

        def step(logits: np.ndarray, p: int, chs: np.ndarray, pos: np.ndarray) -> np.ndarray:
            return decoder.decode(self._adjusted(logits, offsets, chs))

        codes = self.walk(planes, shape, step, begin)
        decoder.finish()
        return torch.from_numpy(codes)

    def probabilities(self, codes: Tensor, planes: int) -> tuple[Tensor, int]:
        """The probability the coder gives each bit of (C, H, W) `codes`: (C * self.planes, H, W) float64, each
        coefficient's bits consecutive, MSB first (as rippel2017's `bitplanes`), 1 in the planes not coded; and the
        number of bits of side information (the offsets, each at probability 1/2). The training pass's rate
        estimate: the file's bits, up to the coder's few bytes of overhead."""
        c, h, w = codes.shape
        out = np.ones((c, self.planes, h * w), dtype=np.float64)
        for p, (offsets, plane) in enumerate(self._plan(codes.numpy().astype(np.int64), planes)):
            for chs, pos, logits, bits in plane:
                one = self._adjusted(logits, offsets, chs)
                chosen = np.where(bits == 1, one, (1 << PROBABILITY_BITS) - one)
                out[chs[:, None], p, pos[None, :]] = chosen / float(1 << PROBABILITY_BITS)
        return torch.from_numpy(out.reshape(c * self.planes, h, w)), planes * c * OFFSET_BITS

    # --- fitting -------------------------------------------------------------------------------------------------

    def samples(self, codes: np.ndarray, plane: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every bit of plane `plane` of (C, H, W) `codes` with the features its batch sees (as the coder does):
        (features, flattened and concatenated over the batches, with the two channel-mix inputs "sig_in" and
        "bit_in" as (n, C) rows), bits (n,)."""
        c, h, w = codes.shape
        prefix = codes >> (self.planes - plane)
        plane_bits = ((codes >> (self.planes - 1 - plane)) & 1).reshape(c, -1)
        features = PlaneFeatures(prefix, plane)
        bits = np.zeros((c, h * w), dtype=np.int64)  # what the decoder knows: the earlier batches' bits
        parts: list[dict[str, np.ndarray]] = []
        targets = []
        for chs, pos in batches(c, h, w):
            f = {**features.static(chs, pos), **features.dynamic(bits, chs, pos)}
            f = {k: np.ascontiguousarray(np.broadcast_to(v, (len(chs), len(pos)))).ravel() for k, v in f.items()}
            f["sig_in"] = np.tile(features.sig[:, pos].T, (len(chs), 1))
            f["bit_in"] = np.tile(bits[:, pos].T, (len(chs), 1))
            parts.append(f)
            targets.append(plane_bits[np.ix_(chs, pos)].ravel())
            bits[np.ix_(chs, pos)] = plane_bits[np.ix_(chs, pos)]
        merged = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
        return merged, np.concatenate(targets)

    @staticmethod
    def float_logits(tables: dict[str, Tensor], f: dict[str, Tensor]) -> Tensor:
        """The logit of `logits` in float nats for one plane's `samples` (tables without the planes axis, in nats):
        the model that fitting optimizes, rounded to integers afterwards."""
        s = f["sig"]
        logit = (tables["own"][f["batch"], f["own"]] + tables["channel"][s, f["channel"]]
                 + tables["near"][s, f["near"]] + tables["ring"][s, f["ring"]] + tables["across"][s, f["across"]]
                 + tables["magnitude"][s, f["magnitude"]] + tables["around"][s, f["around"]]
                 + tables["plane_near"][s, f["phase"], f["plane_near"]] + tables["plane_across"][s, f["plane_across"]]
                 + tables["plane_around"][s, f["plane_around"]])
        channel = f["channel"].unsqueeze(1)
        mixed = ((f["sig_in"] @ tables["mix_sig"].T).gather(1, channel)
                 + (f["bit_in"] @ tables["mix_bit"].T).gather(1, channel))
        return logit + mixed.squeeze(1)

    def set_tables(self, plane: int, tables: dict[str, Tensor]) -> None:
        """Store plane `plane`'s fitted float tables (nats) as integers in 1/UNIT nats (clamped to their type)."""
        with torch.no_grad():
            for name, value in tables.items():
                target = getattr(self, name)
                limit = torch.iinfo(target.dtype).max
                target[plane] = torch.round(value.double() * UNIT).clamp(-limit, limit).to(target.dtype)
        self.reset()
