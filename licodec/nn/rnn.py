"""Convolutional recurrent cells and the binarizer of Toderici et al.'s recurrent codecs [1], [2].

A cell keeps a hidden state (and, for the LSTM, a cell state) across the iterations of one image; the input
convolution may stride (encoder) and the hidden-to-hidden convolution keeps the state's size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM (Shi et al. 2015) as in [1], [2]: i, f, o, g gates from conv(x) + conv(h)."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3, stride: int = 1,
                 hidden_kernel: int = 1) -> None:
        super().__init__()
        self.hidden = hidden
        self.input = nn.Conv2d(in_channels, 4 * hidden, kernel, stride, kernel // 2)
        self.recurrent = nn.Conv2d(hidden, 4 * hidden, hidden_kernel, 1, hidden_kernel // 2, bias=False)

    def initial(self, x: Tensor) -> State:
        """Zero states for the output size of input `x`."""
        gates = self.input(x[:1, :, :, :].detach() * 0)
        shape = (x.shape[0], self.hidden, *gates.shape[-2:])
        return torch.zeros(shape, device=x.device), torch.zeros(shape, device=x.device)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:  # noqa: D102
        hidden, cell = state
        i, f, o, g = (self.input(x) + self.recurrent(hidden)).chunk(4, dim=1)
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        hidden = torch.sigmoid(o) * torch.tanh(cell)
        return hidden, (hidden, cell)


class ConvGRUCell(nn.Module):
    """Convolutional GRU (the GRU variant of [2]): update z, reset r, candidate from conv(x) + conv(r * h)."""

    def __init__(self, in_channels: int, hidden: int, kernel: int = 3, stride: int = 1,
                 hidden_kernel: int = 1) -> None:
        super().__init__()
        self.hidden = hidden
        self.input = nn.Conv2d(in_channels, 3 * hidden, kernel, stride, kernel // 2)
        self.gates = nn.Conv2d(hidden, 2 * hidden, hidden_kernel, 1, hidden_kernel // 2, bias=False)
        self.candidate = nn.Conv2d(hidden, hidden, hidden_kernel, 1, hidden_kernel // 2, bias=False)

    def initial(self, x: Tensor) -> State:
        """A zero state for the output size of input `x`."""
        out = self.input(x[:1, :, :, :].detach() * 0)
        return (torch.zeros((x.shape[0], self.hidden, *out.shape[-2:]), device=x.device),)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:  # noqa: D102
        (hidden,) = state
        xz, xr, xn = self.input(x).chunk(3, dim=1)
        hz, hr = self.gates(hidden).chunk(2, dim=1)
        update = torch.sigmoid(xz + hz)
        reset = torch.sigmoid(xr + hr)
        candidate = torch.tanh(xn + self.candidate(reset * hidden))
        hidden = (1 - update) * hidden + update * candidate
        return hidden, (hidden,)


CELLS = {"lstm": ConvLSTMCell, "gru": ConvGRUCell}


class Binarizer(nn.Module):
    """A 1x1 convolution, tanh, and binarization to {-1, 1} ([1], section 2.1).

    Training: stochastic, b = 1 with probability (1 + x) / 2 (unbiased, E[b] = x), gradient straight through.
    Test: sign(x), with sign(0) = 1.
    """

    def __init__(self, in_channels: int, bits: int) -> None:
        super().__init__()
        self.project = nn.Conv2d(in_channels, bits, 1)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        x = torch.tanh(self.project(x))
        if self.training:
            sample = torch.where(torch.rand_like(x) < (1 + x) / 2, 1.0, -1.0)
            return x + (sample - x).detach()
        return torch.where(x >= 0, 1.0, -1.0)
