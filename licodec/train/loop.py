"""The training loop: random crops, a random quality level per sample, R + lambda * D, Adam, checkpoints.

Runs on the CPU or on CUDA, in one process or several (`torchrun`; gradients are averaged over processes with
torch.distributed, gloo on the CPU, NCCL on CUDA).
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from licodec.codecs.base import Codec
from licodec.data.folder import CropSampler, list_images
from licodec.registry import codec_class
from licodec.train.hardware import add_time, machine
from licodec.train.losses import METRICS, MIN_MS_SSIM_CROP, discriminator_loss, objective

# A module per quality level (the hyperprior's z densities) is named "<head>.levels.<level>.<rest>".
PER_LEVEL = re.compile(r"(?P<head>.+)\.levels\.(?P<level>\d+)\.(?P<rest>.+)")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in every checkpoint)."""

    codec: str
    data: str
    checkpoint: str
    steps: int = 20000
    batch_size: int = 8
    crop: int = 128
    lr: float = 1e-4
    final_lr: float = 1e-5
    aux_lr: float = 1e-3
    density_lr_scale: float = 10.0
    clip: float = 1.0
    metric: str = "mse"
    seed: int = 0
    checkpoint_every: int = 500
    device: str = "cpu"
    precision: str = "fp32"  # or "bf16": the transforms in bfloat16 autocast (fast with AMX or tensor cores)
    init: str = ""  # a checkpoint or weights file to start from (weights only; fresh optimizer and schedule)
    codec_kwargs: dict = field(default_factory=dict)
    only: str = ""  # comma-separated parameter-name prefixes: train only these (fine-tuning part of a model)
    qualities: str = ""  # comma-separated 1-based levels to sample (empty: all), e.g. to train a level added

    @classmethod
    def saved(cls, record: dict, **changes) -> TrainConfig:
        """The configuration a checkpoint saved (fields this version no longer has are ignored, new ones take
        their defaults), with `changes` applied."""
        known = {f.name for f in fields(cls)}
        return cls(**{**{k: v for k, v in record.items() if k in known}, **changes})


def learning_rate(config: TrainConfig, step: int) -> float:
    """Cosine decay from `lr` to `final_lr` over the run."""
    progress = min(step / max(config.steps, 1), 1.0)
    return config.final_lr + 0.5 * (config.lr - config.final_lr) * (1 + math.cos(math.pi * progress))


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients(parameters: list[torch.nn.Parameter], world: int) -> None:
    """Sum the gradients of all processes in one all-reduce and divide by their number."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in parameters]
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p, g in zip(parameters, grads):
        p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
        offset += g.numel()


def build(config: TrainConfig) -> Codec:
    """A fresh codec of the configured kind."""
    return codec_class(config.codec)(**config.codec_kwargs)


def fit(config: TrainConfig, resume: bool = False, progress: bool = True, stop_at: int | None = None) -> Codec:
    """Train `config.codec` and return it (tables not yet frozen: call `update()` before coding). The codec's
    `train_config` is the configuration the run used (on resume, the checkpoint's, with this call's steps).

    The codec brings its side of the contract (`licodec.codecs.base.Codec`): its objective
    (`licodec.train.losses.OBJECTIVES`), its parameter groups, and `before_step` / `after_step`.
    `stop_at` ends this run early at that step, with a checkpoint, so a long schedule can run in resumable chunks.
    The codec's `train_timing` is the run's timing segments (`licodec.train.hardware`: the CPU, threads, precision,
    steps and seconds of the optimizer steps alone), the checkpoint's earlier ones included.
    """
    _check(config)
    rank, world = _world()
    torch.manual_seed(config.seed + rank)
    device = torch.device(config.device)
    state = torch.load(config.checkpoint, map_location="cpu", weights_only=False) if resume else None
    if state is not None:
        config = TrainConfig.saved(state["train_config"], steps=config.steps, checkpoint=config.checkpoint)
    codec = _prepare(config, device, state is None, progress and rank == 0)
    paths = list_images(config.data)
    if not paths:
        raise ValueError(f"no images found under {config.data}")
    sampler = CropSampler(paths, config.crop, seed=config.seed + 1000 * rank, progress=progress and rank == 0)
    run = _Run(codec, config, device, sampler, world)
    step = run.restore(state) if state is not None else 0
    codec.train()
    bar = tqdm(total=config.steps, initial=step, disable=not progress or rank != 0, desc=config.codec)
    last = config.steps if stop_at is None else min(stop_at, config.steps)
    while step < last:
        started = time.perf_counter()
        terms = run.step(step)
        run.timed(time.perf_counter() - started)
        step += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix({k: f"{v.item():.3f}" for k, v in terms.items()
                             if k in ("loss", "bpp", "psnr", "aux", "g", "d")})
        if step % config.checkpoint_every == 0 or step == last:
            run.save(Path(config.checkpoint), step, rank)
    bar.close()
    codec.train_config = config
    codec.train_timing = run.timing
    return codec


def _check(config: TrainConfig) -> None:
    if config.metric not in METRICS:
        raise ValueError(f"unknown metric {config.metric!r}; expected one of {METRICS}")
    if config.metric == "ms-ssim" and config.crop < MIN_MS_SSIM_CROP:
        raise ValueError(f"MS-SSIM training needs crops of at least {MIN_MS_SSIM_CROP} pixels")
    if config.precision not in ("fp32", "bf16"):
        raise ValueError(f"unknown precision {config.precision!r}; expected fp32 or bf16")


def _prepare(config: TrainConfig, device: torch.device, fresh_run: bool, verbose: bool) -> Codec:
    """The codec to train: built, started from `config.init` (a fresh run only), in the run's precision, with
    everything outside `config.only` frozen."""
    codec = build(config).to(device)
    prefixes = tuple(codec.current_name(p.strip()) for p in config.only.split(",") if p.strip())
    if config.init and fresh_run:
        fresh = _initialize(codec, config.init)
        frozen = [name for name in fresh if prefixes and not name.startswith(prefixes)]
        if frozen:
            # Most often a codec option of the saved model left out (its widths differ): frozen, they would stay
            # random for the whole run.
            raise ValueError(f"{len(frozen)} tensors outside --only are not in {config.init} (are its codec options "
                             f"the same?): {', '.join(frozen[:4])}")
        if fresh and verbose:
            tqdm.write(f"{len(fresh)} tensors not in {config.init} start fresh: {', '.join(fresh[:6])}"
                       + (", ..." if len(fresh) > 6 else ""))
    if config.precision == "bf16":
        codec.transform_dtype = torch.bfloat16
        codec.channels_last()
    for name, parameter in codec.named_parameters():
        if prefixes and not name.startswith(prefixes):
            parameter.requires_grad_(False)
    return codec


class _Run:
    """One training run's optimizers, objective, levels and adversary, and its step."""

    def __init__(self, codec: Codec, config: TrainConfig, device: torch.device, sampler: CropSampler,
                 world: int) -> None:
        self.codec, self.config, self.device, self.sampler, self.world = codec, config, device, sampler, world
        groups = {k: [p for p in v if p.requires_grad] for k, v in codec.parameter_groups().items()}
        if not groups["main"] + groups["density"]:
            raise ValueError(f"no parameter of {config.codec} starts with {config.only!r}")
        self.main = groups["main"] + groups["density"]
        # The factorized densities start wide (Ballé 2018, init_scale 10); at the transforms' learning rate they
        # take thousands of steps just to narrow, so they learn `density_lr_scale` times faster.
        self.optimizer = torch.optim.Adam([{"params": groups["main"], "scale": 1.0},
                                           {"params": groups["density"], "scale": config.density_lr_scale}],
                                          lr=config.lr)
        # A frozen density's quantiles stay too, so that its coding tables do not change; codecs without
        # quantiles have no aux optimizer.
        self.quantiles = groups["quantiles"]
        self.aux_optimizer = torch.optim.Adam(self.quantiles, lr=config.aux_lr) if self.quantiles else None
        self.objective = objective(codec)
        # None where the levels are not lambdas (iterations, bitplanes, bottlenecks)
        self.lmbdas = torch.tensor(codec.lmbdas, device=device) if codec.lmbdas else None
        self.levels = _levels(config.qualities, codec.qualities, device)
        # Adversarial codecs bring a discriminator for training only; it lives in the checkpoint, not the weights.
        self.adversary = _Adversary(codec, config, device) if codec.adversarial else None
        gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
        self.machine = machine(torch.get_num_threads(), config.device, config.precision, world, gpu)
        self.timing: list[dict] = []  # the checkpoint's segments, then this process's steps

    def timed(self, seconds: float) -> None:
        """Count one step that took `seconds` (the step alone: not the checkpoint written after it)."""
        self.timing = add_time(self.timing, self.machine, 1, seconds)

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """One optimizer step on a fresh batch; returns the objective's terms (plus "aux", and "d" for GANs)."""
        codec, config = self.codec, self.config
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(config, step) * group["scale"]
        x = self.sampler.batch(config.batch_size).to(self.device)
        if config.precision == "bf16":
            x = x.contiguous(memory_format=torch.channels_last)
        level = self.levels[torch.randint(len(self.levels), (x.shape[0],), device=self.device)]
        codec.before_step(step, x, level)
        output = codec(x, level + 1)
        discriminator = self.adversary.discriminator if self.adversary is not None else None
        lmbda = None if self.lmbdas is None else self.lmbdas[level]
        terms = self.objective(codec, output, x, lmbda, config.metric, discriminator)
        aux = codec.aux_loss()
        self.optimizer.zero_grad(set_to_none=True)
        if self.aux_optimizer is not None:
            self.aux_optimizer.zero_grad(set_to_none=True)
        (terms["loss"] + aux).backward()
        if self.world > 1:
            _average_gradients(self.main + self.quantiles, self.world)
        torch.nn.utils.clip_grad_norm_(self.main, config.clip)
        self.optimizer.step()
        if self.aux_optimizer is not None:
            self.aux_optimizer.step()
        if self.adversary is not None:
            terms["d"] = self.adversary.step(x, output.x_hat, self.world)
        codec.after_step(output, terms)
        return {**terms, "aux": aux}

    def restore(self, state: dict) -> int:
        """Resume from a checkpoint; returns its step. A checkpoint of an older module layout (`renamed_modules`)
        restores the weights under today's names and restarts the optimizers' moments."""
        codec = self.codec
        codec.load_state_dict({codec.current_name(k): v for k, v in state["model"].items()})
        names = [n for n, _ in codec.named_parameters()]
        if state.get("parameter_names", names) == names:
            _load_optimizer(self.optimizer, state["optimizer"], codec)
            if self.aux_optimizer is not None:
                self.aux_optimizer.load_state_dict(state["aux_optimizer"])
        else:
            tqdm.write("the checkpoint's parameters are in an older layout: the optimizers start afresh")
        rank = _world()[0]
        self.sampler.restore(state["sampler"][rank] if rank < len(state["sampler"]) else state["sampler"][0])
        torch.set_rng_state(state["torch_rng"])
        if self.adversary is not None:
            self.adversary.load(state["adversary"])
        self.timing = list(state.get("timing", []))  # none in checkpoints of older versions
        return state["step"]

    def save(self, path: Path, step: int, rank: int) -> None:
        """A resumable checkpoint of the run at `step`."""
        _save(path, self.codec, self.optimizer, self.aux_optimizer, self.sampler, self.config, step, rank,
              self.world, self.adversary.state() if self.adversary is not None else None, self.timing)


def _levels(qualities: str, count: int, device: torch.device) -> torch.Tensor:
    """The 0-based levels training samples from: the 1-based `qualities` listed, or all `count` levels."""
    try:
        chosen = [int(q) for q in qualities.split(",") if q.strip()] or list(range(1, count + 1))
    except ValueError:
        raise ValueError(f"qualities {qualities!r}: expected comma-separated integers") from None
    if any(not 1 <= q <= count for q in chosen):
        raise ValueError(f"qualities {qualities!r}: this codec has levels 1 to {count}")
    return torch.tensor(sorted(set(chosen)), device=device) - 1


def fit_quantiles(codec: Codec, steps: int = 3000, lr: float = 1e-2) -> float:
    """Finish training the factorized densities' quantiles (their aux loss alone), as `update()` reads them.

    During training they trail the densities they describe; this needs no data and takes seconds.
    Returns the final aux loss.
    """
    quantiles = [p for n, p in codec.named_parameters() if n.endswith("quantiles") and p.requires_grad]
    if not quantiles:
        return 0.0
    optimizer = torch.optim.Adam(quantiles, lr=lr)
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        loss = codec.aux_loss()
        loss.backward()
        optimizer.step()
    return float(codec.aux_loss().detach())


def _initialize(codec: Codec, source: str) -> list[str]:
    """Copy the weights of a checkpoint (or a zoo weights file) into `codec`: every tensor whose name and shape
    match, so that a model can start from a related one (a context model from a hyperprior). Levels are matched by
    lambda: a per-rate model starts from its level of a variable-rate one, a level added to a variable-rate model
    from its nearest neighbour. Returns the names of `codec`'s tensors that kept their fresh initialization."""
    if source.endswith(".safetensors"):
        from licodec import zoo

        model = zoo.from_bytes(Path(source).read_bytes())
        saved, saved_lmbdas = model.state_dict(), getattr(model, "lmbdas", None)
    else:
        checkpoint = torch.load(source, map_location="cpu", weights_only=False)
        saved, saved_lmbdas = checkpoint["model"], checkpoint.get("codec_config", {}).get("lmbdas")
        saved = {codec.current_name(k): v for k, v in saved.items()}  # a checkpoint of an older layout
    own = codec.state_dict()
    sources = _level_sources(getattr(codec, "lmbdas", None), saved_lmbdas)
    if sources is not None:
        saved = _per_level(saved, own, sources, len(saved_lmbdas))
    matching = {k: v for k, v in saved.items() if k in own and own[k].shape == v.shape}
    if not matching:
        raise ValueError(f"{source} shares no weights with {codec.name}")
    codec.load_state_dict(matching, strict=False)
    return sorted(set(own) - set(matching))


def _level_sources(own: list[float] | None, saved: list[float] | None) -> list[int] | None:
    """For each of this codec's lambdas, the saved model's level it starts from: the one with that lambda, or else
    the nearest (in log lambda; a level added to a variable-rate model starts from its neighbour). None when the
    levels are the same."""
    if not own or not saved or list(own) == list(saved) or min(*own, *saved) <= 0:
        return None  # the same levels, or "levels" that are not lambdas (rippel2017's are zeros)
    return [min(range(len(saved)), key=lambda i: abs(math.log(saved[i] / lmbda))) for lmbda in own]


def _per_level(saved: dict, own: dict, sources: list[int], levels: int) -> dict:
    """The saved tensors laid out on this codec's levels. Per-level tensors come two ways: rows of one tensor
    (the gain vectors: leading dimension = levels) and one module per level (`...levels.<i>...`, the hyperprior's
    factorized densities)."""
    laid_out = {}
    for key, value in saved.items():
        if (key in own and value.ndim and value.shape[0] == levels and own[key].shape[0] == len(sources)
                and own[key].shape[1:] == value.shape[1:]):
            laid_out[key] = value[sources]
        elif not PER_LEVEL.match(key):
            laid_out[key] = value
    for key in own:
        match = PER_LEVEL.match(key)
        if match and int(match["level"]) < len(sources):
            source = f"{match['head']}.levels.{sources[int(match['level'])]}.{match['rest']}"
            if source in saved:
                laid_out[key] = saved[source]
    return laid_out


def _load_optimizer(optimizer: torch.optim.Optimizer, saved: dict, codec: Codec) -> None:
    """Restore Adam's moments, also from a checkpoint written with all parameters in one group."""
    if len(saved["param_groups"]) == len(optimizer.param_groups):
        optimizer.load_state_dict(saved)
        return
    # One group, in named_parameters() order without the quantiles: map its moments onto today's groups by name.
    old_order = [n for n, _ in codec.named_parameters() if not n.endswith("quantiles")]
    saved_ids = saved["param_groups"][0]["params"]
    by_name = {name: saved["state"].get(i) for name, i in zip(old_order, saved_ids)}
    parameters = dict(codec.named_parameters())
    for name, moments in by_name.items():
        if moments is not None:
            optimizer.state[parameters[name]] = {k: v.clone() for k, v in moments.items()}


class _Adversary:
    """The discriminator of an adversarial codec and its optimizer: one least-squares step per generator step."""

    def __init__(self, codec: Codec, config: TrainConfig, device: torch.device) -> None:
        self.discriminator = codec.build_discriminator().to(device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr)

    def step(self, x: torch.Tensor, x_hat: torch.Tensor, world: int) -> torch.Tensor:
        """Train D on real x against the generated x_hat; returns D's loss."""
        self.optimizer.zero_grad(set_to_none=True)  # drops what the generator's loss left in D
        loss = discriminator_loss(x, x_hat, self.discriminator)
        loss.backward()
        if world > 1:
            _average_gradients(list(self.discriminator.parameters()), world)
        self.optimizer.step()
        return loss.detach()

    def state(self) -> dict:
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load(self, state: dict) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


def _save(path: Path, codec: Codec, optimizer, aux_optimizer, sampler: CropSampler, config: TrainConfig,
          step: int, rank: int, world: int, adversary: dict | None = None, timing: list | None = None) -> None:
    """Write a resumable checkpoint atomically (rank 0 only; every rank's sampler state is gathered)."""
    samplers = [sampler.state()]
    if world > 1:
        samplers = [None] * world
        dist.all_gather_object(samplers, sampler.state())
    if rank != 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "codec": config.codec,
        "codec_config": codec.config,
        "model": codec.state_dict(),
        "parameter_names": [n for n, _ in codec.named_parameters()],
        "optimizer": optimizer.state_dict(),
        "aux_optimizer": aux_optimizer.state_dict() if aux_optimizer is not None else None,
        "sampler": samplers,
        "torch_rng": torch.get_rng_state(),
        "step": step,
        "train_config": asdict(config),
        "adversary": adversary,
        "timing": timing or [],
    }
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(state, temporary)
    os.replace(temporary, path)
