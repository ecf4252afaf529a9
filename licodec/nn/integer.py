"""Fixed-point evaluation of a small convolutional network, identical on every machine.

Ballé, Johnston & Minnen, "Integer networks for data compression with latent-variable models" (ICLR 2019): the
decoder must pick the same probability table as the encoder, or decoding fails. Floating-point convolutions give
results that depend on the machine, the library and the thread count. Here the hyper-synthesis is evaluated with
integer weights (per output channel, `weight_bits` significant bits) on integer activations with `fraction_bits`
fractional bits. The products and sums are carried out in float64, where every intermediate value is an integer
below 2**53 and therefore exact whatever the order of summation; requantization between layers is integer
arithmetic (round half up by shifting). The result is a pure function of the stored weights and the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LIMIT = 1 << 26  # activations are clamped here: |x| * |w| * fan-in stays below 2**53
SLOPE_BITS = 16  # a LeakyReLU's negative slope is applied as an integer multiple of 2**-16, rounded half up


class IntegerConvNet:
    """Integer twin of an `nn.Sequential` made of Conv2d, ConvTranspose2d, ReLU and LeakyReLU layers."""

    def __init__(self, network: nn.Module, fraction_bits: int = 10, weight_bits: int = 12) -> None:
        self.fraction_bits = fraction_bits
        self.layers: list[tuple[str, object]] = []
        for layer in network if isinstance(network, nn.Sequential) else [network]:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Conv3d)):
                self.layers.append(("conv", self._quantize(layer, weight_bits)))
            elif isinstance(layer, nn.ReLU):
                self.layers.append(("relu", None))
            elif isinstance(layer, nn.LeakyReLU):  # the negative slope in 16 fractional bits
                self.layers.append(("leaky", int(round(layer.negative_slope * (1 << SLOPE_BITS)))))
            else:
                raise TypeError(f"IntegerConvNet cannot evaluate {type(layer).__name__}")

    def _quantize(self, layer: nn.Conv2d | nn.ConvTranspose2d | nn.Conv3d, weight_bits: int) -> dict:
        transposed = isinstance(layer, nn.ConvTranspose2d)
        weight = layer.weight.detach().double()
        if hasattr(layer, "mask"):  # masked convolutions of context models: the taps that may not look are zero
            weight = weight * layer.mask.double()
        out_dim = 1 if transposed else 0
        reduce_dims = [d for d in range(weight.dim()) if d != out_dim]
        peak = weight.abs().amax(dim=reduce_dims).clamp(min=2.0**-20)
        # shift[c]: weight c is stored as round(w * 2**shift[c]) with about `weight_bits` significant bits.
        shift = (weight_bits - 1 - torch.ceil(torch.log2(peak))).long()
        shape = [1] * weight.dim()
        shape[out_dim] = -1
        int_weight = torch.round(weight * torch.pow(2.0, shift.double()).view(shape))
        bias = layer.bias.detach().double() if layer.bias is not None else torch.zeros_like(peak)
        int_bias = torch.round(bias * torch.pow(2.0, (shift + self.fraction_bits).double()))
        return {
            "transposed": transposed,
            "weight": int_weight,
            "bias": int_bias.view(shape if transposed else [1, -1] + [1] * (weight.dim() - 2)),
            "shift": shift.view([1, -1] + [1] * (weight.dim() - 2)),
            "stride": layer.stride,
            "padding": layer.padding,
            "output_padding": getattr(layer, "output_padding", (0, 0)),
        }

    def to_fixed(self, x: Tensor) -> Tensor:
        """Float input -> fixed point (round half up), as int64."""
        return torch.floor(x.double() * (1 << self.fraction_bits) + 0.5).long()

    def __call__(self, x_fixed: Tensor) -> Tensor:
        """Evaluate on int64 fixed-point input; returns int64 fixed-point output with `fraction_bits`."""
        x = torch.clamp(x_fixed.long(), -LIMIT, LIMIT)
        for kind, p in self.layers:
            if kind == "relu":
                x = torch.clamp(x, min=0)
                continue
            if kind == "leaky":
                x = torch.where(x >= 0, x, torch.div(x * p + (1 << (SLOPE_BITS - 1)), 1 << SLOPE_BITS,
                                                     rounding_mode="floor"))
                continue
            value = x.double()
            if p["transposed"]:
                acc = F.conv_transpose2d(value, p["weight"], None, p["stride"], p["padding"], p["output_padding"])
            elif p["weight"].dim() == 5:
                acc = F.conv3d(value, p["weight"], None, p["stride"], p["padding"])
            else:
                acc = F.conv2d(value, p["weight"], None, p["stride"], p["padding"])
            x = _requantize(acc.long() + p["bias"].long(), p["shift"])
        return x

    def at(self, x_fixed: Tensor, *coords: Tensor) -> Tensor:
        """A one-layer stride-1 network evaluated at some output positions of one input only.

        `coords` are the position's indices along each spatial axis (rows, cols; or depth, rows, cols for a 3D
        convolution). Returns int64 (n, channels), equal to `self(x_fixed)[0, :, *coords].T`, at the cost of those
        positions: what an autoregressive decoder needs, one wavefront at a time. Only the kernel taps that are
        non-zero for some channel (a masked convolution's visible neighbours) are gathered.
        """
        return self.at_padded(self.pad(x_fixed), *coords)

    def _single(self) -> dict:
        (kind, p), = self.layers
        if kind != "conv" or p["transposed"] or set(p["stride"]) != {1}:
            raise TypeError("IntegerConvNet.at evaluates a single stride-1 convolution")
        return p

    @property
    def padding(self) -> tuple[int, ...]:
        """The zero padding of a single convolution, per spatial axis."""
        return tuple(self._single()["padding"])

    def pad(self, x_fixed: Tensor) -> Tensor:
        """One input (1, C, ...) clamped and zero-padded as `at_padded` reads it, channels last: (...padded, C),
        so that every tap gathers one contiguous vector."""
        pads = [amount for size in reversed(self.padding) for amount in (size, size)]
        padded = F.pad(torch.clamp(x_fixed[0].long(), -LIMIT, LIMIT), pads)
        return padded.movedim(0, -1).contiguous()

    def at_padded(self, padded: Tensor, *coords: Tensor) -> Tensor:
        """`at` on an input already padded by `pad` (a decoder keeps its activations that way and writes each
        front into them, values within +-2**26, instead of padding the whole volume at every front)."""
        p = self._single()
        weight = p["weight"]
        if len(coords) != weight.dim() - 2:
            raise ValueError(f"{weight.dim() - 2} coordinates expected")
        if "taps" not in p:
            taps = torch.nonzero(weight.abs().sum(dim=(0, 1)) > 0)
            p["taps"] = taps
            # (taps x C_in, C_out), in the order of the gathered patches' rows
            tapped = weight[(slice(None), slice(None), *taps.T)]  # (C_out, C_in, taps)
            p["tap_weight"] = tapped.permute(2, 1, 0).reshape(-1, weight.shape[0]).contiguous()
        # Positions and taps as offsets into the flattened (positions, C_in) input: one gather per front. The
        # taps' offsets depend only on the padded shape, so they are worked out once per shape, not per front.
        if p.get("offsets_for") != padded.shape:
            strides = [stride // padded.shape[-1] for stride in padded.stride()[:-1]]
            p["offsets_for"], p["strides"] = padded.shape, strides
            p["offsets"] = p["taps"] @ torch.tensor(strides)
        offsets = p["offsets"]
        base = sum(c * stride for c, stride in zip(coords, p["strides"]))
        patches = padded.view(-1, padded.shape[-1])[base[:, None] + offsets[None, :]]  # (n, taps, C_in)
        acc = patches.reshape(len(coords[0]), -1).double() @ p["tap_weight"]
        return _requantize(acc.long() + p["bias"].view(1, -1).long(), p["shift"].view(1, -1))


def _requantize(acc: Tensor, shift: Tensor) -> Tensor:
    """Divide by 2**shift rounding half up (a negative shift, for huge weights, multiplies), then clamp."""
    down = torch.clamp(shift, min=0)
    half = torch.where(down > 0, torch.bitwise_left_shift(torch.ones_like(down), down - 1), 0)
    acc = torch.div(acc + half, torch.bitwise_left_shift(torch.ones_like(down), down), rounding_mode="floor")
    acc = acc * torch.bitwise_left_shift(torch.ones_like(shift), torch.clamp(-shift, min=0))
    return torch.clamp(acc, -LIMIT, LIMIT)
