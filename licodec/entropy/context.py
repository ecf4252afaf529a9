"""Context models over the quantized latent: which decoded neighbours a symbol may see, and in what order the
decoder can visit the symbols.

- "causal": the masked 5x5 convolution of Minnen, Ballé & Toderici 2018 [23] (PixelCNN's mask A): a symbol sees
  the two rows above it and the two symbols to its left. Decoding is serial in principle; `schedule` visits it
  in wavefronts: symbol (i, j) depends only on symbols with a smaller 3i + j (for a k x k kernel,
  (k // 2 + 1) i + j), so every symbol of one wavefront is decoded at once, in H (k//2 + 1) + W steps instead of
  H W. This is the exact serial model, not an approximation.
- "checkerboard": He, Zheng, Sun, Wang & Qin, "Checkerboard context model for efficient learned image
  compression", CVPR 2021. Anchors ((i + j) even) are coded first from the hyperprior alone; the other half then
  sees the anchors around it. Two steps whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.entropy import coder
from licodec.errors import BitstreamError
from licodec.nn.integer import LIMIT

KINDS = ("causal", "checkerboard")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run a block on one thread: the wavefront loops are hundreds of small operations, which gain nothing from
    more threads and lose a lot when the cores are shared (ten times slower with two threads on two busy cores).
    Integer arithmetic: the results do not depend on it."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def context_mask(kind: str, kernel: int) -> Tensor:
    """The (kernel x kernel) 0/1 mask of visible neighbours; the centre (the symbol itself) is never visible."""
    if kind not in KINDS:
        raise ValueError(f"unknown context kind {kind!r}; expected one of {KINDS}")
    mask = torch.zeros(kernel, kernel)
    centre = kernel // 2
    if kind == "causal":
        mask[:centre] = 1
        mask[centre, :centre] = 1
    else:
        rows, cols = torch.meshgrid(torch.arange(kernel), torch.arange(kernel), indexing="ij")
        mask[(rows + cols) % 2 == 1] = 1
    return mask


class MaskedConv2d(nn.Conv2d):
    """A stride-1 "same" convolution whose kernel is multiplied by a fixed mask of visible neighbours.

    The checkerboard kind outputs zero at the anchors, which are coded without context."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 5, kind: str = "causal") -> None:
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        self.kind = kind
        self.register_buffer("mask", context_mask(kind, kernel).view(1, 1, kernel, kernel), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        out = F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)
        if self.kind == "checkerboard":
            out = out * (~anchors(*x.shape[-2:])).to(out)
        return out


def anchors(height: int, width: int) -> Tensor:
    """Boolean (height, width) map of the checkerboard's anchors, (i + j) even."""
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return (rows + cols) % 2 == 0


def schedule(kind: str, height: int, width: int, kernel: int = 5) -> list[tuple[Tensor, Tensor, bool]]:
    """The decoding order: a list of (rows, cols, sees_context) steps, each decoded at once, covering every
    position exactly once. `sees_context` is False for the checkerboard's anchors (their context is zero)."""
    if kind == "checkerboard":
        anchor = anchors(height, width)
        steps = []
        for positions, sees in ((anchor, False), (~anchor, True)):
            rows, cols = torch.nonzero(positions, as_tuple=True)
            if len(rows):
                steps.append((rows, cols, sees))
        return steps
    if kind != "causal":
        raise ValueError(f"unknown context kind {kind!r}; expected one of {KINDS}")
    slope = kernel // 2 + 1
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    front = (slope * rows + cols).flatten()
    order = torch.argsort(front, stable=True)
    counts = torch.bincount(front)
    steps = []
    for chunk in torch.split(order, counts[counts > 0].tolist()):
        steps.append((chunk // width, chunk % width, True))
    return steps


def causal_mask_3d(kernel: int, include_centre: bool) -> Tensor:
    """(kernel,)*3 mask of the voxels before the centre in raster order (depth, row, column); with
    `include_centre` the centre too (PixelCNN's mask B, for every layer after the first of a stack)."""
    centre = kernel // 2
    order = torch.arange(kernel**3).view(kernel, kernel, kernel)
    middle = int(order[centre, centre, centre])
    return ((order < middle) | ((order == middle) & include_centre)).float()


class MaskedConv3d(nn.Conv3d):
    """A stride-1 "same" 3D convolution over a (depth, height, width) volume with a causal mask (A or B): the 3D
    context model of Mentzer et al. 2018 [17]."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, include_centre: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel, padding=kernel // 2)
        mask = causal_mask_3d(kernel, include_centre).view(1, 1, kernel, kernel, kernel)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return F.conv3d(x, self.weight * self.mask, self.bias, padding=self.padding)


def schedule_3d(depth: int, height: int, width: int, kernel: int = 3) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Wavefronts of a stack of causal 3D convolutions: voxel (d, i, j) on front a d + b i + j with
    b = kernel // 2 + 1 and a = b**2, so that every tap of every layer points to an earlier front (or to the voxel
    itself, for mask B). Returns (depths, rows, cols) per front, in decoding order."""
    b = kernel // 2 + 1
    a = b * b
    d, i, j = torch.meshgrid(torch.arange(depth), torch.arange(height), torch.arange(width), indexing="ij")
    front = (a * d + b * i + j).flatten()
    order = torch.argsort(front, stable=True)
    counts = torch.bincount(front)
    plane = height * width
    return [(chunk // plane, (chunk % plane) // width, chunk % width)
            for chunk in torch.split(order, counts[counts > 0].tolist())]


class IntegerSoftmax(nn.Module):
    """Integer frequencies from fixed-point logits: the categorical distribution of a context model, computed the
    same way on every machine.

    freq_l = 1 + floor(w_l (2**16 - L) / sum(w)), with w_l = EXP[min((max - logit_l) in 1/16 units, 24 * 16)];
    EXP[d] = round(2**20 exp(-d / 16)) is a stored integer table (a buffer saved with the weights), so no float
    exp is evaluated at coding time. Logit differences are resolved to 1/16 and capped at 24 nats.
    """

    STEPS = 16
    CAP = 24

    def __init__(self) -> None:
        super().__init__()
        d = torch.arange(self.CAP * self.STEPS + 1, dtype=torch.float64)
        table = torch.clamp(torch.floor(torch.exp(-d / self.STEPS) * (1 << 20) + 0.5), min=1).long()
        self.register_buffer("exp_table", table)

    def forward(self, logits_fixed: Tensor, fraction_bits: int) -> Tensor:
        """(n, L) int64 logits with `fraction_bits` -> (n, L) int64 frequencies, each at least 1."""
        gap = logits_fixed.amax(dim=1, keepdim=True) - logits_fixed
        steps = torch.div(gap * self.STEPS, 1 << fraction_bits, rounding_mode="floor")
        weights = self.exp_table[torch.clamp(steps, max=self.CAP * self.STEPS)]
        alphabet = logits_fixed.shape[1]
        return 1 + torch.div(weights * ((1 << 16) - alphabet), weights.sum(dim=1, keepdim=True), rounding_mode="floor")


class VolumeContext(nn.Module):
    """A context model over a volume of symbols (depth, height, width) from a small alphabet: a stack of masked 3D
    convolutions (mask A, then mask B, ReLUs between) giving a categorical over the alphabet for every voxel from
    the voxels before it in raster order, optionally conditioned on a fully visible volume of the same size (the
    previous iteration's bits, for the recurrent codecs).

    `logits` serves training; `visit` serves coding: the same network as integers, walked in 3D wavefronts with
    every layer evaluated only at the current front, the categorical's integer frequencies from `IntegerSoftmax`.
    Used by mentzer2018-3dcnn [17] (symbols: learned centers) and toderici2017 [2] (symbols: bits).
    """

    def __init__(self, alphabet: int, filters: int = 24, layers: int = 4, conditioned: bool = False) -> None:
        super().__init__()
        sizes = [1] + [filters] * (layers - 1) + [alphabet]
        self.layers = nn.ModuleList(MaskedConv3d(a, b, 3, include_centre=k > 0)
                                    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))
        self.condition = nn.Conv3d(1, filters, 3, padding=1) if conditioned else None
        self.softmax = IntegerSoftmax()
        self._integer: list | None = None

    def logits(self, volume: Tensor, condition: Tensor | None = None) -> Tensor:
        """(N, alphabet, D, H, W) logits for a volume (N, D, H, W) of symbol values."""
        h = volume.unsqueeze(1)
        for k, layer in enumerate(self.layers):
            h = layer(h)
            if k == 0 and self.condition is not None:
                h = h + self.condition(condition.unsqueeze(1))
            if k < len(self.layers) - 1:
                h = torch.relu(h)
        return h

    def forward(self, volume: Tensor, condition: Tensor | None = None) -> Tensor:
        """`logits` (so that `torch.func.functional_call` can run the network with other weights)."""
        return self.logits(volume, condition)

    def reset(self) -> None:
        """Forget the integer networks (after the weights change)."""
        self._integer = None

    def _nets(self) -> list:
        from licodec.nn.integer import IntegerConvNet

        if self._integer is None:
            self._integer = [IntegerConvNet(layer) for layer in self.layers]
            if self.condition is not None:
                self._integer.append(IntegerConvNet(self.condition))
        return self._integer

    def visit(self, values: Tensor, coded: Tensor, step, condition: Tensor | None = None) -> Tensor:
        """Walk a volume in decoding order; returns its symbols (D, H, W), -1 where not coded.

        values: the value of each symbol of the alphabet (float). coded: bool (D, H, W), which voxels are coded
        (the others hold the value 0). condition: the conditioning volume (D, H, W), float, when conditioned.
        step(freqs, where) returns the symbols of the coded voxels `where` of one front given their integer
        frequencies (n, alphabet): the encoder looks them up, the decoder decodes them.
        """
        nets = self._nets()
        layers = nets[: len(self.layers)]
        fixed_values = layers[0].to_fixed(values).clamp(-LIMIT, LIMIT)
        shape = tuple(coded.shape)
        # Every layer's input, zero-padded once, channels last; fronts are written into the interior.
        activations = [net.pad(torch.zeros((1, layer.in_channels, *shape), dtype=torch.long))
                       for net, layer in zip(layers, self.layers)]
        conditioning = None
        if self.condition is not None:
            conditioning = nets[-1](layers[0].to_fixed(condition)[None, None])[0]  # (filters, D, H, W)
        with one_thread():
            return self._walk(layers, activations, conditioning, fixed_values, coded, step, len(values))

    def encode(self, values: Tensor, symbols: Tensor, coded: Tensor, condition: Tensor | None = None) -> bytes:
        """One section holding the coded voxels of `symbols` (D, H, W), in decoding order (see `visit`)."""
        chunks: list[tuple[np.ndarray, np.ndarray]] = []

        def step(freqs: np.ndarray, where: tuple[Tensor, ...]) -> Tensor:
            chunks.append((symbols[where].numpy(), freqs))
            return symbols[where]

        self.visit(values, coded, step, condition)
        return coder.encode_categorical_chunks(chunks)

    def decode(self, section: bytes, values: Tensor, coded: Tensor, condition: Tensor | None = None) -> Tensor:
        """The symbols (D, H, W) of `encode`'s section, -1 where not coded."""
        decoder = coder.CategoricalDecoder(section)
        return self.visit(values, coded, lambda freqs, where: decoder.decode(freqs), condition)

    def _walk(self, layers: list, activations: list, conditioning: Tensor | None, fixed_values: Tensor,
              coded: Tensor, step, alphabet: int) -> Tensor:
        shape = tuple(coded.shape)
        symbols = torch.full(shape, -1, dtype=torch.long)
        pd, pi, pj = layers[0].padding
        for d, i, j in schedule_3d(*shape):
            for k, net in enumerate(layers):
                out = net.at_padded(activations[k], d, i, j)
                if k == 0 and conditioning is not None:
                    out = out + conditioning[:, d, i, j].T
                if k < len(layers) - 1:
                    qd, qi, qj = layers[k + 1].padding
                    activations[k + 1][d + qd, i + qi, j + qj] = torch.clamp(out, 0, LIMIT)
            inside = coded[d, i, j]
            if not inside.any():
                continue
            where = (d[inside], i[inside], j[inside])
            freqs = self.softmax(out[inside], layers[-1].fraction_bits)
            found = torch.as_tensor(step(freqs.numpy(), where), dtype=torch.long)
            if found.numel() and (found.min() < 0 or found.max() >= alphabet):
                raise BitstreamError("symbol out of the context model's alphabet")
            symbols[where] = found
            activations[0][where[0] + pd, where[1] + pi, where[2] + pj, 0] = fixed_values[found]
        return symbols
