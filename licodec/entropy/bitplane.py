"""A fast, exact bitplane coder: integer logistic contexts over whole batches of bits (Rippel & Bourdev 2017 [6]).

[6] codes its bitplanes with an adaptive arithmetic coder whose contexts are a few features of the bits already
coded, not a deep network per bit. This module is that design, vectorized:

- The planes of C coefficient channels (H x W each, B bits per coefficient) are coded plane by plane, most
  significant first. Plane p of every coefficient is coded in `BATCHES` batches: channel group g = c mod `GROUPS`
  (0, 1, 2) and checkerboard parity (i + j) mod 2 (0 then 1), in the order (g, parity). A batch's contexts read
  only bits of earlier planes (all of them: the whole neighbourhood, not only the causal half) and the bits of
  earlier batches of the same plane, so the decoder computes every context of a batch at once.
- The context of a bit is a small logistic model in integer arithmetic. Its logit, in 1/`UNIT` nats, is a sum of
  integer table entries selected by integer features, plus two channel-mixing products:

      logit = own[p, batch, bucket(prefix)] + channel[p, s, c] + near[p, s, n8] + ring[p, s, n16]
            + across[p, s, bucket(m)] + plane4[p, s, o4] + plane_across[p, s, bucket(o)]
            + sum_c' mix_sig[p, c, c'] sig[c'] + sum_c' mix_bit[p, c, c'] bit[c']

  with prefix the coefficient's more significant bits (the value of planes 0 .. p-1), s = prefix > 0 (the
  coefficient is already significant), n8 / n16 the significant coefficients of the same channel among the 8
  neighbours / the 16 of the 5x5 ring, m the significant coefficients of the other channels at the same position,
  o4 the ones of plane p among the 4 neighbours of the same channel already coded, o the ones of plane p at the same
  position in the channels already coded, sig[c'] / bit[c'] channel c''s significance / plane-p bit at the same
  position (bit[c'] = 0 where not yet coded). Every product and sum is an exact integer (the mixing products are
  evaluated as float64 matrix products of integers below 2**53, which are exact whatever the order of summation).
- The probability of a one is `SIGMOID[clamp(logit, -CAP, CAP)]`, a stored integer table (16-bit fixed point,
  within [1, 2**16 - 1], one entry per 1/32 nat); encoder and decoder index the same table with the same
  integer, so they agree on every machine and thread count. The bits go through
  `licodec.entropy.coder.encode_binary_chunks`, one chunk per batch.

The table entries are fitted offline on the bitplanes of a trained model (`benchmarks/fit_rippel2017_coder.py`,
float logistic regression with the same features, `float_logits`, then rounded to 1/32 nat), never at coding time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.entropy.context import one_thread
from licodec.errors import BitstreamError

GROUPS = 3  # channel groups c mod 3
BATCHES = 2 * GROUPS  # (group, checkerboard parity), in that order
UNIT = 32  # weights and logits in 1/32 nats
CAP = 12  # logits beyond +-12 nats read as +-12
MIXES = ("mix_sig", "mix_bit")  # the channel-mixing tables, stored as int8 (within +-127/32 nats); the others int16
PROBABILITY_BITS = 16
OWN_BUCKETS = np.array([0, 1, 2, 2, 3])  # prefix 0, 1, 2-3, 4+ (index min(prefix, 4))
RING_BUCKETS = np.array([0, 1, 2, 3, 3, 4, 4, 4, 4] + [5] * 8)  # 0, 1, 2, 3-4, 5-8, 9-16
COUNT_BUCKETS = np.array([0, 1, 2, 3, 4, 4, 5, 5, 5, 6, 6, 6, 6] + [7] * 20)  # 0,1,2,3,4-5,6-8,9-12,13+ (to 32)


def table_shapes(channels: int) -> dict[str, tuple[int, ...]]:
    """The shape of each weight table of a coder for `channels` channels, without the leading planes axis."""
    return {"own": (BATCHES, 4), "channel": (2, channels), "near": (2, 9), "ring": (2, 6),
            "across": (2, 8), "plane4": (2, 5), "plane_across": (2, 8),
            "mix_sig": (channels, channels), "mix_bit": (channels, channels)}


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
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    parity = ((rows + cols) % 2).ravel()
    return [(np.arange(g, channels, GROUPS), np.flatnonzero(parity == par)) for g in range(GROUPS) for par in (0, 1)]


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
    padded = np.pad(volume, ((0, 0), (r, r), (r, r)))
    total = np.zeros(volume.shape, dtype=np.int64)
    for di, dj in offsets:
        total += padded[:, r + di : r + di + h, r + dj : r + dj + w]
    return total


NEAR = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
RING = [(di, dj) for di in range(-2, 3) for dj in range(-2, 3) if max(abs(di), abs(dj)) == 2]
CROSS = [(-1, 0), (1, 0), (0, -1), (0, 1)]


def _mix(weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """weights (n, C) @ inputs (C, m) of integers, exact: float64 products and sums of integers far below 2**53
    are exact whatever the order of summation. Through torch, which `walk` keeps on one thread (numpy's BLAS
    would start threads of its own: 100 times slower on busy cores)."""
    product = torch.from_numpy(weights.astype(np.float64)) @ torch.from_numpy(inputs.astype(np.float64))
    return product.numpy().astype(np.int64)


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
        self.channel = np.broadcast_to(np.arange(c)[:, None], self.sig.shape)
        self.batch = np.zeros(self.sig.shape, dtype=np.int64)
        for k, (chs, pos) in enumerate(batches(c, h, w)):
            self.batch[np.ix_(chs, pos)] = k

    def static(self, chs: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the bits of channels `chs` at flat positions `pos` (len(chs), len(pos)) that depend on
        earlier planes only."""
        take = np.ix_(chs, pos)
        return {"sig": self.sig[take], "own": self.own[take], "near": self.near[take], "ring": self.ring[take],
                "across": self.across[take], "channel": self.channel[take], "batch": self.batch[take]}

    def dynamic(self, bits: np.ndarray, chs: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the bits of channels `chs` at positions `pos` that read plane `plane`'s bits already coded:
        `bits` (C, H * W) holds them, and 0 wherever not yet coded (the caller's contract: what the decoder knows
        at this batch, nothing more)."""
        _, h, w = self.shape
        own = bits[chs].reshape(len(chs), h, w)
        return {"plane4": _neighbour_sum(own, CROSS).reshape(len(chs), -1)[:, pos],
                "plane_across": np.broadcast_to(COUNT_BUCKETS[np.minimum(bits[:, pos].sum(0), 32)],
                                                (len(chs), len(pos)))}


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
        logit = (t["own"][p, f.batch, f.own] + t["channel"][p, s, f.channel] + t["near"][p, s, f.near]
                 + t["ring"][p, s, f.ring] + t["across"][p, s, f.across])
        return logit + _mix(t["mix_sig"][p], f.sig)

    def logits(self, features: PlaneFeatures, static: np.ndarray, bits: np.ndarray, chs: np.ndarray,
               pos: np.ndarray) -> np.ndarray:
        """(len(chs), len(pos)) integer logits of one batch: `static` (from `static_logits`) plus the terms that
        read the plane's bits already coded, `bits` (C, H * W), 0 where not yet coded."""
        t = self._tables()
        p = features.plane
        s = features.sig[np.ix_(chs, pos)]
        f = features.dynamic(bits, chs, pos)
        logit = static[np.ix_(chs, pos)] + t["plane4"][p, s, f["plane4"]] + t["plane_across"][p, s, f["plane_across"]]
        return logit + _mix(t["mix_bit"][p, chs], bits[:, pos])

    def probability(self, logit: np.ndarray) -> np.ndarray:
        """P(1) in 1/2**16 (int64, within [1, 2**16 - 1]) of integer logits."""
        table = self._tables()["sigmoid"]
        steps = (len(table) - 1) // 2
        return table[np.clip(logit, -steps, steps) + steps]

    def walk(self, planes: int, shape: tuple[int, int, int], step) -> np.ndarray:
        """Visit planes 0 .. planes-1 batch by batch in coding order; returns the (C, H, W) codes of those planes
        (their value as the top bits of a `self.planes`-bit code, the planes not coded zero).

        step(probabilities, p, chs, pos) returns the (len(chs), len(pos)) bits of plane p's batch (chs, pos) given
        their integer P(1), same shape: the encoder reads them from its codes, the decoder decodes them."""
        if not 1 <= planes <= self.planes or shape[0] != self.channels:
            raise ValueError(f"{planes} planes of {shape[0]} channels; the coder has {self.planes} of "
                             f"{self.channels}")
        with one_thread():
            return self._walk(planes, shape, step)

    def _walk(self, planes: int, shape: tuple[int, int, int], step) -> np.ndarray:
        c, h, w = shape
        prefix = np.zeros(shape, dtype=np.int64)
        order = batches(c, h, w)
        for p in range(planes):
            features = PlaneFeatures(prefix, p)
            static = self.static_logits(features)
            bits = np.zeros((c, h * w), dtype=np.int64)
            for chs, pos in order:
                probabilities = self.probability(self.logits(features, static, bits, chs, pos))
                found = np.asarray(step(probabilities, p, chs, pos), dtype=np.int64).reshape(probabilities.shape)
                if found.size and (found.min() < 0 or found.max() > 1):
                    raise BitstreamError("a bitplane symbol is not a bit")
                bits[np.ix_(chs, pos)] = found
            prefix = prefix * 2 + bits.reshape(shape)
        return prefix << (self.planes - planes)

    def _plane_bits(self, codes: np.ndarray, p: int, chs: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return (codes.reshape(codes.shape[0], -1)[np.ix_(chs, pos)] >> (self.planes - 1 - p)) & 1

    def encode(self, codes: Tensor, planes: int) -> bytes:
        """The top `planes` bitplanes of (C, H, W) integer `codes` (each below 2**self.planes) as one section."""
        codes = codes.numpy().astype(np.int64)
        chunks: list[tuple[np.ndarray, np.ndarray]] = []

        def step(probabilities: np.ndarray, p: int, chs: np.ndarray, pos: np.ndarray) -> np.ndarray:
            bits = self._plane_bits(codes, p, chs, pos)
            chunks.append((bits, probabilities))
            return bits

        self.walk(planes, codes.shape, step)
        return coder.encode_binary_chunks(chunks)

    def decode(self, section: bytes, planes: int, shape: tuple[int, int, int]) -> Tensor:
        """The (C, H, W) codes of `encode`'s section (the planes not coded are zeros). Damaged data raises
        `BitstreamError`."""
        decoder = coder.BinaryDecoder(section)
        codes = self.walk(planes, shape, lambda probabilities, p, chs, pos: decoder.decode(probabilities))
        decoder.finish()
        return torch.from_numpy(codes)

    def probabilities(self, codes: Tensor, planes: int) -> Tensor:
        """(C * self.planes, H, W) float64 probability the coder gives each bit of (C, H, W) `codes`, each
        coefficient's bits consecutive, MSB first (as rippel2017's `bitplanes`); 1 in the planes not coded. The
        training pass's rate estimate: the file's bits, up to the coder's few bytes of overhead."""
        codes = codes.numpy().astype(np.int64)
        c, h, w = codes.shape
        out = np.ones((c, self.planes, h * w), dtype=np.float64)

        def step(probabilities: np.ndarray, p: int, chs: np.ndarray, pos: np.ndarray) -> np.ndarray:
            bits = self._plane_bits(codes, p, chs, pos)
            chosen = np.where(bits == 1, probabilities, (1 << PROBABILITY_BITS) - probabilities)
            out[chs[:, None], p, pos[None, :]] = chosen / float(1 << PROBABILITY_BITS)
            return bits

        self.walk(planes, codes.shape, step)
        return torch.from_numpy(out.reshape(c * self.planes, h, w))

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
            f = {k: np.ascontiguousarray(v).ravel() for k, v in f.items()}
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
                 + tables["plane4"][s, f["plane4"]] + tables["plane_across"][s, f["plane_across"]])
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
