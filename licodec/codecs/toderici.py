"""The recurrent codecs of Toderici et al.: "Variable rate image compression with recurrent neural networks",
ICLR 2016 [1], and "Full resolution image compression with recurrent neural networks", CVPR 2017 [2].

One network codes an image in iterations. Iteration t encodes the residual r_{t-1} = x - x_hat_{t-1} (r_0 = x)
into `bits` binary codes per 16x16 block; the decoder, whose recurrent state carries what it has seen, turns the
codes into a new reconstruction:

    one-shot:  x_hat_t = D_t(b_t)                   (the decoder predicts the whole image every iteration)
    additive:  x_hat_t = x_hat_{t-1} + D_t(b_t)     (the decoder predicts the residual)

Training minimises the mean absolute residual over all iterations. The rate is the number of iterations: the
quality of a file is how many it holds, and every iteration adds `bits` / 256 bits per pixel before entropy
coding. Files are progressive: iteration t is section t of the .lic file, and any prefix of iterations decodes.

- toderici2016 [1]: 32x32 patches coded independently, with the convolutional LSTM network (or the fully
  connected LSTM as an option); the codes are stored as they are, one bit each, as in the paper.
- toderici2017 [2]: the full-resolution network (LSTM or GRU cells, one-shot or additive reconstruction), codes
  entropy coded with a context model over the binary code volume of each iteration (a masked 3D-CNN over
  (bit, row, column), conditioned on the previous iteration's codes: the role of the paper's BinaryRNN),
  evaluated as an integer network so that decoding is exact on any machine.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy.context import VolumeContext
from licodec.entropy.latent import LIKELIHOOD_BOUND
from licodec.errors import BitstreamError, CodecError
from licodec.nn.rnn import CELLS, Binarizer
from licodec.registry import register
from licodec.taxonomy import Taxonomy


def run_cells(cells: nn.ModuleList, h: Tensor, states: list, between=None) -> tuple[Tensor, list]:
    """One step of a stack of recurrent cells: each cell's output feeds the next (through `between`, when given,
    such as a depth-to-space); returns the last output and the new states."""
    new_states = []
    for cell, state in zip(cells, states):
        h, state = cell(h, state)
        new_states.append(state)
        if between is not None:
            h = between(h)
    return h, new_states


class RecurrentEncoder(nn.Module):
    """conv 3x3 stride 2, three recurrent cells of stride 2, binarizer: `bits` codes per 16x16 block."""

    def __init__(self, widths: tuple[int, ...], bits: int, cell: str) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, widths[0], 3, 2, 1)
        self.cells = nn.ModuleList(CELLS[cell](a, b, 3, 2) for a, b in zip(widths[:-1], widths[1:]))
        self.binarizer = Binarizer(widths[-1], bits)

    def initial(self, x: Tensor) -> list:
        """Zero states for an input like `x`."""
        states, h = [], self.stem(x)
        for cell in self.cells:
            states.append(cell.initial(h))
            h = torch.zeros((h.shape[0], cell.hidden, *states[-1][0].shape[-2:]), device=x.device)
        return states

    def forward(self, residual: Tensor, states: list) -> tuple[Tensor, list]:  # noqa: D102
        h, states = run_cells(self.cells, self.stem(residual), states)
        return self.binarizer(h), states


class RecurrentDecoder(nn.Module):
    """conv 1x1, four recurrent cells each followed by depth-to-space x2, conv 1x1 to RGB (in [-1, 1] / 2)."""

    def __init__(self, widths: tuple[int, ...], bits: int, cell: str) -> None:
        super().__init__()
        self.stem = nn.Conv2d(bits, widths[0], 1)
        inputs = [widths[0]] + [w // 4 for w in widths[:-1]]
        self.cells = nn.ModuleList(CELLS[cell](a, b, 3, 1) for a, b in zip(inputs, widths))
        self.out = nn.Conv2d(widths[-1] // 4, 3, 1)

    def initial(self, codes: Tensor) -> list:
        """Zero states for codes like `codes`."""
        states, h = [], self.stem(codes)
        for cell in self.cells:
            state = cell.initial(h)
            states.append(state)
            h = F.pixel_shuffle(torch.zeros_like(state[0]), 2)
        return states

    def forward(self, codes: Tensor, states: list) -> tuple[Tensor, list]:  # noqa: D102
        h, states = run_cells(self.cells, self.stem(codes), states, lambda h: F.pixel_shuffle(h, 2))
        return torch.tanh(self.out(h)) / 2, states


class DenseEncoder(nn.Module):
    """[1]'s fully connected LSTM encoder for 32x32 patches: a patch is one 3072-vector (1x1 convolutions on a
    1x1 map are fully connected layers), two LSTM layers, a binarizer to `bits` codes per patch."""

    def __init__(self, width: int, bits: int, cell: str) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3 * 32 * 32, width, 1)
        self.cells = nn.ModuleList(CELLS[cell](width, width, 1, 1) for _ in range(2))
        self.binarizer = Binarizer(width, bits)

    def initial(self, x: Tensor) -> list:
        flat = x.reshape(x.shape[0], -1, 1, 1)
        return [cell.initial(self.stem(flat)) for cell in self.cells]

    def forward(self, residual: Tensor, states: list) -> tuple[Tensor, list]:  # noqa: D102
        h, states = run_cells(self.cells, self.stem(residual.reshape(residual.shape[0], -1, 1, 1)), states)
        return self.binarizer(h), states


class DenseDecoder(nn.Module):
    """The fully connected decoder: codes -> two LSTM layers -> a 32x32 RGB patch."""

    def __init__(self, width: int, bits: int, cell: str) -> None:
        super().__init__()
        self.stem = nn.Conv2d(bits, width, 1)
        self.cells = nn.ModuleList(CELLS[cell](width, width, 1, 1) for _ in range(2))
        self.out = nn.Conv2d(width, 3 * 32 * 32, 1)

    def initial(self, codes: Tensor) -> list:
        return [cell.initial(self.stem(codes)) for cell in self.cells]

    def forward(self, codes: Tensor, states: list) -> tuple[Tensor, list]:  # noqa: D102
        h, states = run_cells(self.cells, self.stem(codes), states)
        return torch.tanh(self.out(h)).view(-1, 3, 32, 32) / 2, states


class RecurrentCodec(Codec):
    """What both recurrent codecs share: the iterations, the objective, progressive sections."""

    multiple = 16
    downsampling = 16
    progressive = True
    quality_unit = "iterations"
    objective = "residual"

    def __init__(self, iterations: int = 16, bits: int = 32, cell: str = "lstm", reconstruction: str = "one-shot",
                 encoder_widths: tuple[int, ...] = (64, 256, 512, 512),
                 decoder_widths: tuple[int, ...] = (512, 512, 256, 128), **config) -> None:
        if cell not in CELLS:
            raise CodecError(f"unknown cell {cell!r}; expected one of {', '.join(CELLS)}")
        if reconstruction not in ("one-shot", "additive"):
            raise CodecError(f"unknown reconstruction {reconstruction!r}; expected one-shot or additive")
        # Quality q means q iterations; the lambdas only give the training loop one entry per quality.
        super().__init__(qualities=iterations, iterations=iterations, bits=bits, cell=cell,
                         reconstruction=reconstruction, encoder_widths=list(encoder_widths),
                         decoder_widths=list(decoder_widths), **config)
        self.encoder = RecurrentEncoder(tuple(encoder_widths), bits, cell)
        self.decoder = RecurrentDecoder(tuple(decoder_widths), bits, cell)

    def iterate(self, x: Tensor, iterations: int) -> tuple[list[Tensor], list[Tensor]]:
        """Run `iterations` encoder/decoder steps on x in [0, 1]: the codes and reconstructions of each."""
        target = x - 0.5
        residual = target
        encoder_states = self.encoder.initial(residual)
        decoder_states = None
        reconstruction = torch.zeros_like(target)
        codes, outputs = [], []
        for _ in range(iterations):
            b, encoder_states = self.encoder(residual, encoder_states)
            if decoder_states is None:
                decoder_states = self.decoder.initial(b)
            prediction, decoder_states = self.decoder(b, decoder_states)
            reconstruction = prediction if self.config["reconstruction"] == "one-shot" else reconstruction + prediction
            residual = target - reconstruction
            codes.append(b)
            outputs.append(reconstruction + 0.5)
        return codes, outputs

    def reconstructions(self, codes: Iterable[Tensor]) -> Iterator[Tensor]:
        """The decoder alone: the reconstruction (in [0, 1]) after each iteration's codes, as they come."""
        states = None
        reconstruction = None
        for b in codes:
            if states is None:
                states = self.decoder.initial(b)
            prediction, states = self.decoder(b, states)
            if reconstruction is None or self.config["reconstruction"] == "one-shot":
                reconstruction = prediction
            else:
                reconstruction = reconstruction + prediction
            yield reconstruction + 0.5

    def decompress_each(self, encoded: Encoded) -> Iterator[Tensor]:
        """The image after each iteration of the file, in order: iteration k's image is what a file of its
        first k iterations decodes to, at the cost of decoding that file (progressive decoding)."""
        raise NotImplementedError

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """The image from the iterations present (any prefix), cropped to its size, in [0, 1]."""
        last = deque(self.decompress_each(encoded), maxlen=1)
        if not last:
            raise BitstreamError("no iteration to decode")
        return last[0]

    def update(self) -> None:  # noqa: D102
        pass

    @property
    def iterations(self) -> int:
        """The largest number of iterations a file can hold."""
        return self.config["iterations"]


@register("toderici2017")
class FullResolution(RecurrentCodec):
    """[2]: full-resolution conv-RNN, entropy-coded binary codes, progressive."""

    taxonomy = Taxonomy(
        reference="[2] Toderici, Vincent, Johnston, Hwang, Minnen, Shor, Covell 2017",
        network="convolutional RNN (LSTM or GRU), iterative residual coding",
        coding_unit="full image",
        spatial_tools="context model over the binary codes (spatial and across iterations)",
        rate_control="number of iterations of one model (progressive bitstream)",
        quality_range="0.125 bpp per iteration before entropy coding, 16 iterations",
        refs=(2,),
    )
    fewest_bits_per_pixel = 2.2e-4  # measured: 1/32 of a flat image's at quality 1

    def __init__(self, iterations: int = 16, bits: int = 32, cell: str = "gru", reconstruction: str = "additive",
                 encoder_widths: tuple[int, ...] = (64, 256, 512, 512),
                 decoder_widths: tuple[int, ...] = (512, 512, 256, 128), context_filters: int = 16) -> None:
        super().__init__(iterations, bits, cell, reconstruction, encoder_widths, decoder_widths,
                         context_filters=context_filters)
        self.context = VolumeContext(2, context_filters, conditioned=True)

    def train(self, mode: bool = True) -> FullResolution:
        """With the recurrent network frozen (`licodec train --only context`), it runs as it codes: the binarizer
        gives its signs, not its training samples, so the context model learns the bits the coder will code."""
        super().train(mode)
        network = [*self.encoder.parameters(), *self.decoder.parameters()]
        if mode and not any(parameter.requires_grad for parameter in network):
            self.encoder.eval()
            self.decoder.eval()
        return self

    def _code_likelihood(self, codes: list[Tensor]) -> Tensor:
        """Likelihood of every bit of every iteration under the context model, (N, T * bits, h, w)."""
        likelihoods = []
        previous = torch.zeros_like(codes[0])
        for b in codes:
            b = b.detach()
            logits = self.context.logits(b, previous)  # (N, 2, bits, h, w)
            symbols = ((b + 1) / 2).long()
            probabilities = torch.softmax(logits.float(), dim=1)
            chosen = torch.gather(probabilities, 1, symbols.unsqueeze(1)).squeeze(1)
            likelihoods.append(chosen.clamp(min=LIKELIHOOD_BOUND))
            previous = b
        return torch.cat(likelihoods, dim=1)

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training pass over all iterations (the quality index is not used: every iteration is trained)."""
        self.level_tensor(quality, x.shape[0], x.device)  # checked only: every iteration is trained
        codes, outputs = self.iterate(x, self.iterations)
        residual = torch.stack([(x - out).abs().flatten(1).mean(1) for out in outputs]).sum(0)
        return RDOutput(outputs[-1], {"codes": self._code_likelihood(codes)}, {"residual": residual})

    def update(self) -> None:
        """Forget the integer context network."""
        self.context.reset()

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code a 1x3xHxW image with `quality` iterations, one entropy-coded section each."""
        iterations = int(self.check_quality(quality)) + 1
        codes, _ = self.iterate(self.pad(x), iterations)
        sections, previous = [], torch.zeros_like(codes[0][0])
        for b in codes:
            symbols = ((b[0] + 1) / 2).long()
            sections.append(self.context.encode(torch.tensor([-1.0, 1.0]), symbols,
                                                torch.ones_like(symbols, dtype=torch.bool), previous))
            previous = b[0]
        return Encoded(sections, x.shape[-2], x.shape[-1], iterations)

    @torch.no_grad()
    def decompress_each(self, encoded: Encoded) -> Iterator[Tensor]:
        """The image after each iteration: each section's codes decoded with the context model (given the
        previous iteration's), then one decoder step."""
        padded_h, padded_w = self.padded_size(encoded.height, encoded.width)
        shape = (self.config["bits"], padded_h // self.downsampling, padded_w // self.downsampling)

        def codes() -> Iterator[Tensor]:
            previous = torch.zeros(shape)
            for section in encoded.sections:
                symbols = self.context.decode(section, torch.tensor([-1.0, 1.0]), torch.ones(shape, dtype=torch.bool),
                                              previous)
                previous = symbols.float() * 2 - 1
                yield previous.unsqueeze(0)

        for image in self.reconstructions(codes()):
            yield image[..., : encoded.height, : encoded.width].clamp(0, 1)


@register("toderici2016")
class PatchRecurrent(RecurrentCodec):
    """[1]: 32x32 patches coded independently by a conv-LSTM network (or a fully connected LSTM), codes stored
    as plain bits."""

    taxonomy = Taxonomy(
        reference="[1] Toderici, O'Malley, Hwang, Vincent, Minnen, Baluja, Covell, Sukthankar 2016",
        network="convolutional (or fully connected) LSTM, iterative residual coding",
        coding_unit="32x32 patches",
        spatial_tools="none (patches coded independently, no entropy coding)",
        rate_control="number of iterations of one model (progressive bitstream)",
        quality_range="0.125 bpp per iteration, 16 iterations",
        refs=(1,),
    )
    fewest_bits_per_pixel = 0.125  # plain bits: 32 per 16x16 block and iteration
    patch = 32

    def __init__(self, iterations: int = 16, bits: int = 32, cell: str = "lstm", reconstruction: str = "one-shot",
                 encoder_widths: tuple[int, ...] = (64, 256, 512, 512),
                 decoder_widths: tuple[int, ...] = (512, 512, 256, 128), network: str = "conv") -> None:
        if network not in ("conv", "dense"):
            raise CodecError(f"unknown network {network!r}; expected conv or dense")
        super().__init__(iterations, bits, cell, reconstruction, encoder_widths, decoder_widths, network=network)
        if network == "dense":  # [1]'s fully connected LSTM: 4 * bits codes per patch, as the conv network
            self.encoder = DenseEncoder(encoder_widths[-1], 4 * bits, cell)
            self.decoder = DenseDecoder(decoder_widths[0], 4 * bits, cell)

    def patches(self, x: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """(N * rows * cols, 3, 32, 32) patches of the padded images, image by image in raster order, and the
        grid (rows, cols)."""
        x = F.pad(x, (0, (-x.shape[-1]) % self.patch, 0, (-x.shape[-2]) % self.patch), mode="replicate")
        rows, cols = x.shape[-2] // self.patch, x.shape[-1] // self.patch
        tiles = x.unfold(2, self.patch, self.patch).unfold(3, self.patch, self.patch)  # (N, 3, r, c, 32, 32)
        return tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, self.patch, self.patch), (rows, cols)

    @staticmethod
    def assemble(tiles: Tensor, grid: tuple[int, int]) -> Tensor:
        """Inverse of `patches`: (N * rows * cols, 3, 32, 32) -> (N, 3, rows * 32, cols * 32)."""
        rows, cols = grid
        size = tiles.shape[-1]
        images = tiles.view(-1, rows, cols, 3, size, size).permute(0, 3, 1, 4, 2, 5)
        return images.reshape(-1, 3, rows * size, cols * size)

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training pass: every image cut into 32x32 patches, all iterations trained."""
        self.level_tensor(quality, x.shape[0], x.device)  # checked only: every iteration is trained
        tiles, grid = self.patches(x)
        codes, outputs = self.iterate(tiles, self.iterations)
        residual = torch.stack([(tiles - out).abs().flatten(1).mean(1) for out in outputs]).sum(0)
        residual = residual.view(x.shape[0], -1).mean(1)
        # Fixed-length codes: each bit costs exactly one bit, which is what the file stores.
        bits = torch.full((x.shape[0], len(codes) * codes[0][0].numel() * grid[0] * grid[1]), 0.5)
        x_hat = self.assemble(outputs[-1], grid)[..., : x.shape[-2], : x.shape[-1]]
        return RDOutput(x_hat, {"codes": bits}, {"residual": residual})

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code a 1x3xHxW image with `quality` iterations; section t holds every patch's bits of iteration t."""
        iterations = int(self.check_quality(quality)) + 1
        tiles, _ = self.patches(x)
        codes, _ = self.iterate(tiles, iterations)
        sections = [np.packbits((b > 0).numpy().astype(np.uint8).ravel()).tobytes() for b in codes]
        return Encoded(sections, x.shape[-2], x.shape[-1], iterations)

    @torch.no_grad()
    def decompress_each(self, encoded: Encoded) -> Iterator[Tensor]:
        """The image after each iteration, cropped to its size, in [0, 1]."""
        rows = -(-encoded.height // self.patch)
        cols = -(-encoded.width // self.patch)
        if self.config.get("network", "conv") == "dense":
            shape = (rows * cols, 4 * self.config["bits"], 1, 1)
        else:
            shape = (rows * cols, self.config["bits"], self.patch // self.downsampling, self.patch // self.downsampling)
        count = int(np.prod(shape))
        for section in encoded.sections:
            if len(section) != (count + 7) // 8:
                raise BitstreamError(f"an iteration holds {len(section)} bytes, expected {(count + 7) // 8}")

        def codes() -> Iterator[Tensor]:
            for section in encoded.sections:
                bits = np.unpackbits(np.frombuffer(section, dtype=np.uint8))[:count].reshape(shape)
                yield torch.from_numpy(bits.astype(np.float32)) * 2 - 1

        for tiles in self.reconstructions(codes()):
            yield self.assemble(tiles, (rows, cols))[..., : encoded.height, : encoded.width].clamp(0, 1)
