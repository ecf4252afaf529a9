"""Mentzer, Agustsson, Tschannen, Timofte & Van Gool, "Conditional probability models for deep image
compression", CVPR 2018 [17].

    x --E--> (z, importance) --Q (learned centers)--> z_hat --mask--> z_masked --D--> x_hat
                                                                  |
                                      3D-CNN context model P(z_hat[v] | z_hat before v) over the (C, H, W) volume

- The quantizer has L learned centers (soft-to-hard, `licodec.quant.softhard`), so every latent element is one
  of L symbols.
- The encoder's last channels are importance maps, one per quality level: at each position a level's map says how
  many of the C channels are coded; the rest are masked to 0 and cost nothing. The map is coded first, with a
  learned categorical per level. (One map shared by the levels, shifted by a learned offset per level, was pulled
  shut by the lowest level's rate at every level.)
- Training can keep the map open for its first `open_steps` steps (every channel coded, the map untrained): from
  scratch the transforms learn slowly (about 20 dB after 500 steps with every channel open), and the rate term
  then closed all channels but one before the distortion could hold them, in runs started half or fully open.
- `target_bpp` (one rate per level) is the paper's rate target, made two-sided: the rate term becomes
  |R - target|, which holds each level's rate there from both sides (one-sided, a level whose map had closed had
  nothing pushing it open again).
- `explore` (a fraction of the training samples) shows the synthesis a random number of channels past the map's
  count in those samples, coded or not (nested dropout's truncation, Rippel et al. 2014), so that every channel is
  trained to carry something and opening one can lower the distortion. The rate and the map's own gradient are
  the map's. Without it, a channel the map closed was never trained again and the map never reopened it.
- P is a stack of masked 3D convolutions (mask A, then mask B) over the volume in raster order (channel, row,
  column), giving a categorical over the L centers for every coded element. As in the paper, P (and the counts'
  model) learn from their own cross-entropy, while the autoencoder sees the rate through them held fixed; the code
  length of a voxel's own symbol reaches the encoder through its soft assignment's expected code length
  (soft-to-hard [13]).

Coding is exact on any machine: P runs as an integer network, its logits become integer frequencies through a
stored exp table (`IntegerSoftmax`), and the decoder visits the volume in wavefronts (`schedule_3d`), every
layer evaluated only at the voxels of the current front.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.entropy.categorical import CategoricalPriors
from licodec.entropy.context import VolumeContext
from licodec.entropy.latent import LIKELIHOOD_BOUND
from licodec.errors import BitstreamError
from licodec.nn.blocks import Residual, conv, deconv
from licodec.quant.gain import DEFAULT_LMBDAS, GainUnit
from licodec.quant.softhard import SoftToHard
from licodec.registry import register
from licodec.taxonomy import Taxonomy


@register("mentzer2018-3dcnn")
class ConditionalProbability(Codec):
    """Learned-center quantizer, importance map, and a masked 3D-CNN context model driving the arithmetic coding."""

    taxonomy = Taxonomy(
        reference="[17] Mentzer, Agustsson, Tschannen, Timofte, Van Gool 2018",
        network="CNN with residual blocks; masked 3D-CNN context model",
        coding_unit="full image",
        spatial_tools="3D context over the latent volume; importance map masking channels spatially",
        rate_control="one model per target rate in the paper; here one model, gain vector and importance offset "
                     "per level",
        quality_range="about 0.1 to 1 bpp",
        refs=(17, 13),
    )
    fewest_bits_per_pixel = 2.8e-3  # measured: 1/32 of a flat image's at quality 1
    multiple = 8
    downsampling = 8

    def __init__(self, N: int = 128, M: int = 32, lmbdas: tuple[float, ...] = DEFAULT_LMBDAS, centers: int = 6,
                 blocks: int = 3, context_filters: int = 24, importance_init: float = 4.0,
                 open_steps: int = 0, target_bpp: list[float] | None = None, explore: float = 0.0) -> None:
        if target_bpp is not None and len(target_bpp) != len(lmbdas):
            raise ValueError(f"target_bpp needs one rate per level ({len(lmbdas)}), got {len(target_bpp)}")
        super().__init__(lmbdas, N=N, M=M, centers=centers, blocks=blocks, context_filters=context_filters,
                         importance_init=importance_init, open_steps=open_steps, target_bpp=target_bpp,
                         explore=explore)
        self.analysis = nn.Sequential(
            conv(3, N // 2), nn.ReLU(), conv(N // 2, N), nn.ReLU(),
            *[Residual(N, relu=True) for _ in range(blocks)], conv(N, M + len(lmbdas)),
        )
        self.synthesis = nn.Sequential(
            deconv(M, N), nn.ReLU(), *[Residual(N, relu=True) for _ in range(blocks)],
            deconv(N, N // 2), nn.ReLU(), deconv(N // 2, 3),
        )
        self.quantizer = SoftToHard(centers)
        self.gain = GainUnit(self.lmbdas, M)
        # The map starts open (sigmoid(4) = 0.98 of the channels): the soft mask's gradient reaches only the channel
        # at its edge, so channels closed early never reopen; started half closed, a training closed all but one.
        self.importance_offset = nn.Parameter(torch.full((self.qualities,), float(importance_init)))
        self.counts = CategoricalPriors(self.qualities, M + 1)
        self.context = VolumeContext(centers, context_filters)
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    # --- the pieces shared by training and coding -------------------------------------------------------------

    def importance(self, raw: Tensor, quality: Tensor) -> tuple[Tensor, Tensor]:
        """(soft count in [0, M], hard count ceil(soft) as int64) per position, shapes (N, H, W), from the encoder's
        output `raw` (N, M + levels, H, W): each sample's own level's map."""
        M = self.config["M"]
        index = (M + quality).view(-1, 1, 1, 1).expand(-1, 1, *raw.shape[-2:])
        chosen = torch.gather(raw, 1, index).squeeze(1)
        soft = torch.sigmoid(chosen + self.importance_offset[quality].view(-1, 1, 1)) * M
        return soft, torch.ceil(soft).long()

    def channel_mask(self, soft: Tensor, count: Tensor) -> Tensor:
        """Mask (N, M, H, W): 1 for the first `count` channels; the gradient of the soft ramp min(1, max(0, s - k))."""
        k = torch.arange(self.config["M"], device=soft.device).view(1, -1, 1, 1)
        ramp = torch.clamp(soft.unsqueeze(1) - k, 0, 1)
        hard = (k < count.unsqueeze(1)).to(ramp)
        return ramp + (hard - ramp).detach()

    def forward(self, x: Tensor, quality: Tensor | float | None = None) -> RDOutput:
        """Training pass: rate = cross-entropy of the coded symbols under the 3D context model + the counts' rate.

        In training the rate reaches the encoder and the map only; the context model and the counts' model learn
        from `aux["penalty"]`, their own cross-entropy (see below)."""
        level = self.level_tensor(quality, x.shape[0], x.device)
        M = self.config["M"]
        raw = self.transform(self.analysis, x)
        z = raw[:, :M] * self.gain.gain(level)
        soft, count = self.importance(raw, level)
        mask = self.channel_mask(soft, count)
        warming = self.training and int(self.steps) < self.config["open_steps"]
        if warming:  # every channel coded while the transforms learn (see `open_steps`)
            count = torch.full_like(count, M)
            mask = torch.ones_like(mask)
        z_hat, symbols = self.quantizer(z)
        volume = z_hat * mask
        # While warming up the map is not sent: the counts cost nothing.
        count_likelihood = torch.ones_like(soft) if warming else self.counts.likelihood(count, level)
        aux = {}
        if self.training:
            # P learns from its own cross-entropy on the volume as it is (the paper trains P and the autoencoder
            # each with its own loss); the autoencoder sees the rate through P's weights held fixed. With one loss
            # for both, a rate target pushing the rate up would teach P to predict badly. The counts are integers
            # (no gradient to the map through them): their bits count in the rate and train their own model. The
            # penalty (which the loss adds) is both models' cross-entropy, in bits per pixel.
            own, _ = self._log_chosen(self.context.logits(volume.detach()), symbols)
            own_bits = -(own * mask.detach()).flatten(1).sum(1) / math.log(2)
            count_bits = -torch.log2(count_likelihood).flatten(1).sum(1)
            aux["penalty"] = (own_bits + count_bits) / (x.shape[-2] * x.shape[-1])
            count_likelihood = count_likelihood.detach()
            fixed = {name: p.detach() for name, p in self.context.named_parameters()}
            log_chosen, log_probabilities = self._log_chosen(
                torch.func.functional_call(self.context, fixed, (volume,)), symbols)
            # The symbol's own code length has no gradient (an index): its expectation under the soft assignment
            # does (soft-to-hard [13]), so the encoder can move a value toward a cheaper center.
            expected = (self.quantizer.assignment(z) * log_probabilities.transpose(1, 2)).sum(2)
            log_chosen = log_chosen + expected - expected.detach()
        else:
            log_chosen, _ = self._log_chosen(self.context.logits(volume), symbols)
        # Masked elements are not coded: likelihood 1 (0 bits), reached smoothly through the soft mask.
        likelihood = torch.exp(log_chosen * mask)
        if self.training and not warming and self.config["explore"] > 0:
            volume = self._explore(z_hat, count, volume)
        x_hat = self.transform(self.synthesis, volume * self.gain.inverse_gain(level))
        if self.config["target_bpp"] is not None:  # each level's rate held at its target
            aux["rate_target"] = torch.tensor(self.config["target_bpp"], device=x.device)[level]
        return RDOutput(x_hat, {"y": likelihood, "counts": count_likelihood}, aux)

    @staticmethod
    def _log_chosen(logits: Tensor, symbols: Tensor) -> tuple[Tensor, Tensor]:
        """(log P(symbol) of every voxel, bounded below; the log-probabilities of every center) under the context
        model's logits."""
        log_probabilities = torch.log_softmax(logits.float(), dim=1)
        chosen = torch.gather(log_probabilities, 1, symbols.unsqueeze(1)).squeeze(1)
        return chosen.clamp(min=math.log(LIKELIHOOD_BOUND)), log_probabilities

    def _explore(self, z_hat: Tensor, count: Tensor, volume: Tensor) -> Tensor:
        """The volume the synthesis sees, with channels past the map's count opened in an `explore` fraction of the
        samples: one random fraction per sample of each position's closed channels (nested dropout's truncation)."""
        n, M = z_hat.shape[:2]
        chosen = (torch.rand(n, device=z_hat.device) < self.config["explore"]).view(-1, 1, 1)
        extra = torch.floor(torch.rand(n, 1, 1, device=z_hat.device) * (M - count + 1)).long()
        opened = torch.where(chosen, count + extra, count)
        k = torch.arange(M, device=z_hat.device).view(1, -1, 1, 1)
        return torch.where(chosen.unsqueeze(1), z_hat * (k < opened.unsqueeze(1)), volume)

    def after_step(self, output: RDOutput, terms: dict[str, Tensor]) -> None:
        """Count the training step (the `open_steps` warm-up)."""
        self.steps += 1

    def update(self) -> None:
        """Freeze the count tables of every level and forget the integer context network."""
        self.counts.update()
        self.context.reset()

    # --- coding ---------------------------------------------------------------------------------------------

    def _coded(self, count: Tensor) -> Tensor:
        """Which voxels (M, H, W) the importance map's channel counts (H, W) leave coded."""
        return torch.arange(self.config["M"]).view(-1, 1, 1) < count.unsqueeze(0)

    def _latent(self, symbols: Tensor, level: float) -> Tensor:
        """The masked latent (1, M, H, W) in float64 from the symbols (-1: masked), before the inverse gain."""
        centers = self.quantizer.centers.detach().double().flatten()
        values = centers[symbols.clamp(min=0)] * (symbols >= 0)
        return values.unsqueeze(0)

    @torch.no_grad()
    def compress(self, x: Tensor, quality: float) -> Encoded:
        """Code a 1x3xHxW image: the channel counts, then the symbols in wavefront order."""
        level = self.check_quality(quality)
        M = self.config["M"]
        raw = self.transform(self.analysis, self.layout(self.pad(x)))
        quality_index = torch.tensor([int(level + 0.5)])
        z = raw[:, :M] * self.gain.gain(torch.tensor([level]))
        _, count = self.importance(raw, quality_index)
        wanted = self.quantizer.indices(z)[0]
        centers = self.quantizer.centers.detach().flatten()
        symbols = self.context.encode(centers, wanted, self._coded(count[0]))
        return Encoded([self.counts.encode(count[0].numpy(), int(quality_index)), symbols],
                       x.shape[-2], x.shape[-1], quality)

    @torch.no_grad()
    def decompress(self, encoded: Encoded) -> Tensor:
        """Image from `compress`'s output, cropped to its size, in [0, 1]."""
        level = self.check_quality(encoded.quality)
        padded_h, padded_w = self.padded_size(encoded.height, encoded.width)
        shape = (padded_h // self.downsampling, padded_w // self.downsampling)
        counts = self.counts.decode(encoded.sections[0], int(level + 0.5), shape)
        if counts.min() < 0 or counts.max() > self.config["M"]:
            raise BitstreamError("channel count out of range")
        centers = self.quantizer.centers.detach().flatten()
        symbols = self.context.decode(encoded.sections[1], centers, self._coded(torch.from_numpy(counts)))
        return self.reconstruct(self._latent(symbols, level), level, encoded)
