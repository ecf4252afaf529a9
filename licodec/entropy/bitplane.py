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
- The probability of a one is `SIGMOID[clamp(logit)]`, a stored integer table (16-bit fixed point, within
  [1, 2**16 - 1]); encoder and decoder index the same table with the same integer, so they agree on every machine
  and thread count. The bits go through `licodec.entropy.coder.encode_binary_chunks`, one chunk per batch.

The table entries are fitted offline on the bitplanes of a trained model (`benchmarks/fit_rippel2017_coder.py`,
float logistic regression with the same features, `float_logits`, then rounded to integers), never at coding time.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.errors import BitstreamError

GROUPS = 3  # channel groups c mod 3
BATCHES = 2 * GROUPS  # (group, checkerboard parity), in that order
UNIT = 64  # logits in 1/64 nats
SIGMOID_STEP = 2  # the probability table has one entry per 2/64 = 1/32 nat
CAP = 12  # logits beyond +-12 nats read as +-12
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
    """P(1) in 1/2**16 for logits -CAP .. CAP nats in steps of SIGMOID_STEP / UNIT, within [1, 2**16 - 1]. Computed
    once in float and stored with the weights: coding only indexes it."""
    steps = CAP * UNIT // SIGMOID_STEP
    values = [min(max(round((1 << PROBABILITY_BITS) / (1 + math.exp(-k * SIGMOID_STEP / UNIT))), 1),
                  (1 << PROBABILITY_BITS) - 1) for k in range(-steps, steps + 1)]
    return torch.tensor(values, dtype=torch.int32)


def batch_masks(channels: int, height: int, width: int) -> list[np.ndarray]:
    """Boolean (C, H, W) masks of the `BATCHES` batches of one plane, in coding order; they partition the plane."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    parity = (rows + cols) % 2
    group = np.arange(channels) % GROUPS
    return [(group[:, None, None] == g) & (parity[None] == par) for g in range(GROUPS) for par in (0, 1)]


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


class PlaneFeatures:
    """The features of plane `plane` that depend only on more significant planes (computed once per plane), and
    those that depend on the plane's bits already coded (`batch`)."""

    def __init__(self, prefix: np.ndarray, plane: int) -> None:
        """prefix: (C, H, W) int64, each coefficient's value in planes 0 .. plane-1 (0 for plane 0)."""
        self.plane = plane
        sig = (prefix > 0).astype(np.int64)
        self.shape = prefix.shape
        self.sig = sig
        self.own = OWN_BUCKETS[np.minimum(prefix, 4)]
        self.near = _neighbour_sum(sig, NEAR)
        self.ring = RING_BUCKETS[_neighbour_sum(sig, RING)]
        self.across = COUNT_BUCKETS[np.minimum(sig.sum(0, keepdims=True) - sig, 32)]
        c = self.shape[0]
        self.channel = np.broadcast_to(np.arange(c)[:, None, None], self.shape)
        self.batch = np.zeros(self.shape, dtype=np.int64)
        for k, mask in enumerate(batch_masks(*self.shape)):
            self.batch[mask] = k

    def static(self, where: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the bits at boolean (C, H, W) `where` that depend on earlier planes only (raster order)."""
        return {"sig": self.sig[where], "own": self.own[where], "near": self.near[where], "ring": self.ring[where],
                "across": self.across[where], "channel": self.channel[where], "batch": self.batch[where]}

    def dynamic(self, bits: np.ndarray, where: np.ndarray) -> dict[str, np.ndarray]:
        """Features of the bits at `where` that read plane `plane`'s bits already coded: `bits` (C, H, W) holds them,
        and 0 wherever not yet coded (the caller's contract: what the decoder knows at this batch, nothing more)."""
        bits = bits.astype(np.int64)
        return {"plane4": _neighbour_sum(bits, CROSS)[where],
                "plane_across": COUNT_BUCKETS[np.minimum(np.broadcast_to(bits.sum(0, keepdims=True), bits.shape)[where], 32)]}


def _channel_mix(weights: np.ndarray, volume: np.ndarray, where: np.ndarray) -> np.ndarray:
    """sum_c' weights[c, c'] volume[c', i, j] at the (c, i, j) of `where`, exact (integers far below 2**53)."""
    c = volume.shape[0]
    mixed = weights.astype(np.float64) @ volume.reshape(c, -1).astype(np.float64)
    return mixed.reshape(volume.shape)[where].astype(np.int64)


class BitplaneContext(nn.Module):
    """The integer logistic model of the bitplanes of `channels` channels of `planes` bits, and its coding.

    The weights are int32 buffers (saved with the codec's weights); `fit_tables` / `float_logits` serve fitting,
    `encode` / `decode` coding, `probabilities` the training pass's rate estimate (the exact probabilities the
    coder uses)."""

    def __init__(self, channels: int, planes: int) -> None:
        super().__init__()
        self.channels = channels
        self.planes = planes
        for name, shape in table_shapes(channels).items():
            self.register_buffer(name, torch.zeros((planes, *shape), dtype=torch.int32))
        self.register_buffer("sigmoid", sigmoid_table())
        self._cache: dict[str, np.ndarray] | None = None

    def reset(self) -> None:
        """Forget the numpy copies of the tables (after they change)."""
        self._cache = None

    def _tables(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {name: getattr(self, name).numpy().astype(np.int64)
                           for name in (*table_shapes(self.channels), "sigmoid")}
        return self._cache

    def logits(self, features: PlaneFeatures, bits: np.ndarray, where: np.ndarray) -> np.ndarray:
        """Integer logits (1/UNIT nats) of the plane-`features.plane` bits at boolean (C, H, W) `where` (raster
        order), given that plane's bits already coded in `bits` (0 elsewhere)."""
        t = self._tables()
        p = features.plane
        f = {**features.static(where), **features.dynamic(bits, where)}
        s = f["sig"]
        logit = (t["own"][p, f["batch"], f["own"]] + t["channel"][p, s, f["channel"]] + t["near"][p, s, f["near"]]
                 + t["ring"][p, s, f["ring"]] + t["across"][p, s, f["across"]] + t["plane4"][p, s, f["plane4"]]
                 + t["plane_across"][p, s, f["plane_across"]])
        logit = logit + _channel_mix(t["mix_sig"][p], features.sig, where)
        return logit + _channel_mix(t["mix_bit"][p], bits, where)

    def probability(self, logit: np.ndarray) -> np.ndarray:
        """P(1) in 1/2**16 (int64, within [1, 2**16 - 1]) of integer logits."""
        table = self._tables()["sigmoid"]
        steps = (len(table) - 1) // 2
        return table[np.clip(np.floor_divide(logit, SIGMOID_STEP), -steps, steps) + steps]

    def walk(self, planes: int, shape: tuple[int, int, int], step) -> np.ndarray:
        """Visit planes 0 .. planes-1 batch by batch in coding order; returns the (C, H, W) codes of those planes
        (value of the coded planes, as the top bits of a `self.planes`-bit code).

        step(probabilities, where) returns the bits (int) of the batch at boolean `where` given their integer P(1):
        the encoder reads them from its codes, the decoder decodes them."""
        if planes > self.planes:
            raise ValueError(f"{planes} planes, but the coder has {self.planes}")
        prefix = np.zeros(shape, dtype=np.int64)
        masks = batch_masks(*shape)
        for p in range(planes):
            features = PlaneFeatures(prefix, p)
            bits = np.zeros(shape, dtype=np.int64)
            for where in masks:
                found = np.asarray(step(self.probability(self.logits(features, bits, where)), where, p), np.int64)
                if found.size and (found.min() < 0 or found.max() > 1):
                    raise BitstreamError("a bitplane symbol is not a bit")
                bits[where] = found
            prefix = prefix * 2 + bits
        return prefix << (self.planes - planes)

    def encode(self, codes: Tensor, planes: int) -> bytes:
        """The top `planes` bitplanes of (C, H, W) integer `codes` (each below 2**self.planes) as one section."""
        codes = codes.numpy().astype(np.int64)
        chunks: list[tuple[np.ndarray, np.ndarray]] = []

        def step(probabilities: np.ndarray, where: np.ndarray, p: int) -> np.ndarray:
            bits = (codes[where] >> (self.planes - 1 - p)) & 1
            chunks.append((bits, probabilities))
            return bits

        self.walk(planes, codes.shape, step)
        return coder.encode_binary_chunks(chunks)

    def decode(self, section: bytes, planes: int, shape: tuple[int, int, int]) -> Tensor:
        """The (C, H, W) codes of `encode`'s section (the planes not coded are zeros). Damaged data raises
        `BitstreamError`."""
        decoder = coder.BinaryDecoder(section)
        codes = self.walk(planes, shape, lambda probabilities, where, p: decoder.decode(probabilities))
        decoder.finish()
        return torch.from_numpy(codes)

    def probabilities(self, codes: Tensor, planes: int) -> Tensor:
        """(C * self.planes, H, W) float64 probability the coder gives each bit of (C, H, W) `codes`, each
        coefficient's bits consecutive, MSB first (as rippel2017's `bitplanes`); 1 in the planes not coded. The
        training pass's rate estimate: the file's bits, up to the coder's few bytes of overhead."""
        codes = codes.numpy().astype(np.int64)
        c, h, w = codes.shape
        out = np.ones((c, self.planes, h, w), dtype=np.float64)

        def step(probabilities: np.ndarray, where: np.ndarray, p: int) -> np.ndarray:
            bits = (codes[where] >> (self.planes - 1 - p)) & 1
            chosen = np.where(bits == 1, probabilities, (1 << PROBABILITY_BITS) - probabilities)
            out[:, p][where] = chosen / float(1 << PROBABILITY_BITS)
            return bits

        self.walk(planes, codes.shape, step)
        return torch.from_numpy(out.reshape(c * self.planes, h, w))

    # --- fitting -------------------------------------------------------------------------------------------------

    def samples(self, codes: np.ndarray, plane: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every bit of plane `plane` of (C, H, W) `codes` with the features its batch sees (as the coder does):
        (features concatenated over the batches, with the two channel-mix inputs "sig_in" / "bit_in" as (n, C)
        rows), bits (n,)."""
        prefix = codes >> (self.planes - plane)
        plane_bits = (codes >> (self.planes - 1 - plane)) & 1
        features = PlaneFeatures(prefix, plane)
        known = np.zeros(codes.shape, dtype=bool)
        parts: list[dict[str, np.ndarray]] = []
        targets = []
        c = codes.shape[0]
        for where in batch_masks(*codes.shape):
            bits = np.where(known, plane_bits, 0)
            f = {**features.static(where), **features.dynamic(bits, where)}
            positions = np.nonzero(where)
            f["sig_in"] = features.sig.reshape(c, -1)[:, positions[1] * codes.shape[2] + positions[2]].T
            f["bit_in"] = bits.reshape(c, -1)[:, positions[1] * codes.shape[2] + positions[2]].T
            parts.append(f)
            targets.append(plane_bits[where])
            known |= where
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
        mix_sig = (tables["mix_sig"][f["channel"]] * f["sig_in"]).sum(1)
        return logit + mix_sig + (tables["mix_bit"][f["channel"]] * f["bit_in"]).sum(1)

    def set_tables(self, plane: int, tables: dict[str, Tensor]) -> None:
        """Store plane `plane`'s fitted float tables (nats) as integers in 1/UNIT nats."""
        with torch.no_grad():
            for name, value in tables.items():
                limit = (1 << 15) - 1
                getattr(self, name)[plane] = torch.round(value.double() * UNIT).clamp(-limit, limit).int()
        self.reset()
