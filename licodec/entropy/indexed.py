"""Latents quantized to indices and coded with learned categoricals: the non-uniform scalar quantizer [12] and
soft-to-hard vector quantization [13] as latent codecs (`licodec.entropy.latent`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from licodec.entropy import coder
from licodec.entropy.categorical import CategoricalPriors
from licodec.entropy.latent import LIKELIHOOD_BOUND, LatentCodec, LatentOutput, nearest_level, nearest_levels
from licodec.errors import BitstreamError
from licodec.quant.nonuniform import NonUniformQuantizer
from licodec.quant.softhard import SoftToHard


class IndexedLatent(LatentCodec):
    """A latent quantized to indices (non-uniform levels [12] or vector centers [13]) and coded with a learned
    categorical per quality level and channel group. The training rate is the expected code length under the
    soft assignment, sum_l a_l (-log2 p_l), which is differentiable in the latent, as in [13].

    The categoricals start from the histogram of the indices of the first training batch (`before_step`): from
    equal logits they would need thousands of steps at the transforms' learning rate just to reach the latent's
    statistics.
    """

    def __init__(self, kind: str, levels: int, channels: int, options: dict) -> None:
        super().__init__()
        if kind == "nonuniform":
            self.quantizer = NonUniformQuantizer(channels, **options)
        else:
            self.quantizer = SoftToHard(options.get("centers", 16), options.get("dim", 2),
                                        options.get("sigma", 1.0), options.get("spread", 4.0))
        self.groups = channels // getattr(self.quantizer, "dim", 1)
        self.priors = CategoricalPriors(levels * self.groups, self.quantizer.alphabet)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def _table(self, level: Tensor) -> Tensor:
        """Table of each (sample, group): level * groups + group, shape (N, G)."""
        return level.view(-1, 1) * self.groups + torch.arange(self.groups, device=level.device).view(1, -1)

    def forward(self, y: Tensor, quality: Tensor) -> LatentOutput:
        """y_hat and the likelihood per group element, for training or evaluation."""
        quality = nearest_levels(quality)
        y_hat, indices = self.quantizer(y)
        log_p = torch.log_softmax(self.priors.logits[self._table(quality)], dim=2)  # (N, G, L)
        if self.training:
            expected = (self.quantizer.assignment(y) * log_p[..., None, None]).sum(2)
        else:
            expected = torch.gather(log_p[..., None, None].expand(*indices.shape[:2], -1, *indices.shape[2:]),
                                    2, indices.unsqueeze(2)).squeeze(2)
        return LatentOutput(y_hat, {"y": torch.exp(expected).clamp(min=LIKELIHOOD_BOUND)})

    @torch.no_grad()
    def before_step(self, latent: Callable[[], Tensor]) -> None:
        """Before a training step: the quantizer's refit when one is due (every `refit_every` steps of the
        non-uniform quantizer, which counts the step), then, before the first step only, the categoricals' start
        from the histogram of the latent's indices. `latent()` gives the step's latent; it runs only if needed."""
        quantizer = self.quantizer
        refit = hasattr(quantizer, "refit") and int(quantizer.steps) % quantizer.refit_every == 0
        y = latent() if refit or not bool(self.fitted) else None
        if hasattr(quantizer, "refit"):
            if refit:
                quantizer.refit(y)
            quantizer.steps += 1
        if not bool(self.fitted):
            self.fit(quantizer.indices(y))

    @torch.no_grad()
    def fit(self, indices: Tensor) -> None:
        """Set every level's categoricals to the smoothed histogram of `indices` (N, G, H, W), group by group."""
        alphabet = self.quantizer.alphabet
        counts = torch.zeros(self.groups, alphabet, device=indices.device)
        counts.scatter_add_(1, indices.transpose(0, 1).flatten(1), torch.ones_like(indices, dtype=counts.dtype)
                            .transpose(0, 1).flatten(1))
        logits = torch.log((counts + 1) / (counts + 1).sum(1, keepdim=True))
        self.priors.logits.copy_(logits.repeat(self.priors.logits.shape[0] // self.groups, 1))
        self.fitted.fill_(True)

    def update(self) -> None:
        """Freeze the categorical tables."""
        self.priors.update()

    @torch.no_grad()
    def encode(self, y: Tensor, level: float) -> tuple[list[bytes], Tensor]:
        """The indices of y (1, C, H, W), each group with its level's table."""
        indices = self.quantizer.indices(y)
        table = self._table(torch.tensor([nearest_level(level)])).numpy().reshape(1, -1, 1, 1)
        section = coder.encode(indices.numpy(), np.broadcast_to(table, indices.shape), self.priors.tables)
        return [section], self.quantizer.dequantize(indices).double()

    @torch.no_grad()
    def decode(self, sections: list[bytes], shape: tuple[int, ...], level: float) -> Tensor:
        """y_hat (1, C, H, W) from `encode`'s section."""
        n, _, h, w = shape
        table = self._table(torch.tensor([nearest_level(level)])).numpy().reshape(1, -1, 1, 1)
        indices = coder.decode(sections[0], np.broadcast_to(table, (n, self.groups, h, w)), self.priors.tables)
        if indices.size and (indices.min() < 0 or indices.max() >= self.quantizer.alphabet):
            raise BitstreamError("quantizer index out of range")
        return self.quantizer.dequantize(torch.from_numpy(indices)).double()
