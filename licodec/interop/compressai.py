"""CompressAI checkpoints as licodec weights files (`licodec import compressai`).

CompressAI (InterDigital) ships one state dict per quality. Two of its architectures are licodec codecs layer for
layer, so their weights carry over unchanged:

| CompressAI `--arch`  | licodec codec        | what maps                                               |
|---|---|---|
| bmshj2018-factorized | balle2017-factorized | g_a, g_s (GDN beta and gamma alike), entropy bottleneck |
| bmshj2018-hyperprior | balle2018-hyperprior | the same, plus h_a and h_s                              |
| mbt2018-mean         | balle2018-mean-scale | the same, with h_a and h_s's LeakyReLUs (`leaky_relu`)    |
| mbt2018              | minnen2018-joint     | the same, plus context_prediction and entropy_parameters  |

GDN's beta and gamma are stored as sqrt(value + pedestal) by both toolkits, so they carry over as they are.
Each checkpoint becomes a model of one quality level (several of them: one `stacked` file, a level each). Its gain
is 1, and its density is the checkpoint's entropy bottleneck (CompressAI's has four hidden layers, licodec's
three: the file records `density_filters`).
The hyperprior keeps CompressAI's 64 scales (`scale_levels`; licodec's own models have 128) and, by default, its
rule of coding with the first table scale at or above the predicted one (`scale_rounding`; licodec's own models
take the nearest, which makes files about 3 % smaller on the models measured here). licodec then builds its own
integer CDF tables from those weights, and, for the hyperprior, its integer hyper-synthesis. So the files decode
bit-exactly on any machine. Their sizes differ slightly from CompressAI's strings: licodec quantizes the
probabilities its own way, and picks the scales with an integer h_s.

licodec's integer networks evaluate those LeakyReLUs exactly (the slope in 16 fractional bits).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from licodec.codecs.base import Codec
from licodec.errors import WeightsError

ARCHITECTURES = {"bmshj2018-factorized": "balle2017-factorized", "bmshj2018-hyperprior": "balle2018-hyperprior",
                 "mbt2018-mean": "balle2018-mean-scale", "mbt2018": "minnen2018-joint"}
REFUSED: dict[str, str] = {}  # architectures CompressAI has and licodec cannot import, with the reason
#: CompressAI's side networks of mbt2018-mean and mbt2018 use nn.LeakyReLU with its default slope.
LEAKY_SLOPE = 0.01
#: The MSE lambdas of CompressAI's bmshj2018 zoo, by quality (its checkpoints are named <arch>-<quality>-<hash>).
ZOO_LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}
#: CompressAI's Gaussian conditional: 64 scales from 0.11 to 256, log-spaced (licodec's own tables have 128).
SCALE_LEVELS = 64
_CONVOLUTIONS = (0, 2, 4, 6)
_GDNS = (1, 3, 5)


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict in a CompressAI checkpoint: a plain state dict (its zoo's files) or a training
    checkpoint holding one under "state_dict" (its example trainer), DataParallel's "module." prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such checkpoint")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (torch raises many kinds for a file that is not a checkpoint)
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({type(error).__name__})") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"{path}: holds no state dict of tensors")
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def quality_of(path: str | Path) -> int | None:
    """The quality in a CompressAI zoo file name (bmshj2018-hyperprior-3-5c6f152b.pth.tar -> 3), or None."""
    match = re.search(r"bmshj2018-[a-z-]+?-(\d)-[0-9a-f]{8}", Path(path).name)
    return int(match.group(1)) if match else None


def _bottleneck(state: dict[str, torch.Tensor], prefix: str = "entropy_bottleneck.") -> dict[str, torch.Tensor]:
    """The entropy bottleneck's parameters under licodec's names (matrices.K, biases.K, factors.K, quantiles),
    from any of CompressAI's spellings (matrices.K in 1.2, _matrixK and _matrices.K before)."""
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        match = re.fullmatch(r"_?(matri|bias|factor)(?:ces|es|s|x)?\.?(\d+)", name)
        if match:
            kind = {"matri": "matrices", "bias": "biases", "factor": "factors"}[match.group(1)]
            out[f"{kind}.{match.group(2)}"] = value
        elif name == "quantiles":
            out["quantiles"] = value
    if "quantiles" not in out or "matrices.0" not in out:
        raise WeightsError("the checkpoint has no entropy bottleneck (entropy_bottleneck.quantiles, .matrices.0)")
    return out


def _filters(bottleneck: dict[str, torch.Tensor]) -> tuple[int, ...]:
    count = sum(1 for key in bottleneck if key.startswith("matrices."))
    return tuple(int(bottleneck[f"matrices.{k}"].shape[1]) for k in range(count - 1))


def check_architecture(arch: str) -> None:
    """`WeightsError` in one line unless licodec imports CompressAI's `arch`."""
    if arch in REFUSED:
        raise WeightsError(f"CompressAI's {arch} cannot be imported: {REFUSED[arch]}")
    if arch not in ARCHITECTURES:
        raise WeightsError(f"unknown CompressAI architecture {arch!r}; licodec imports "
                           f"{', '.join(ARCHITECTURES)}")


def convert(arch: str, state: dict[str, torch.Tensor], lmbda: float, scale_rounding: str = "up") -> Codec:
    """A licodec codec (one quality level, trained at `lmbda`) with the weights of a CompressAI state dict of
    `arch`, tables frozen. The hyperprior takes the first of CompressAI's 64 scales at or above each predicted
    scale, as CompressAI does (`scale_rounding="up"`), or the nearest one, as licodec does ("nearest": smaller
    files, about 3 % on the models measured here)."""
    from licodec import zoo
    from licodec.registry import codec_class

    check_architecture(arch)
    try:
        N, M = int(state["g_a.0.weight"].shape[0]), int(state["g_a.6.weight"].shape[0])
    except KeyError:
        raise WeightsError(f"not a CompressAI {arch} state dict (no g_a.0.weight / g_a.6.weight)") from None
    codec = codec_class(ARCHITECTURES[arch])(N=N, M=M, lmbdas=(float(lmbda),))
    bottleneck = _bottleneck(state)
    zoo.set_density_filters(codec, _filters(bottleneck))
    if arch != "bmshj2018-factorized":
        zoo.set_scale_levels(codec, SCALE_LEVELS, scale_rounding)
    if arch in ("mbt2018-mean", "mbt2018"):
        zoo.set_leaky_relu(codec, LEAKY_SLOPE)
    mapped = {}
    for theirs, ours in (("g_a", "analysis"), ("g_s", "synthesis")):
        for k in _CONVOLUTIONS:
            for part in ("weight", "bias"):
                mapped[f"{ours}.{k}.{part}"] = state.get(f"{theirs}.{k}.{part}")
        for k in _GDNS:  # CompressAI stores sqrt(value + pedestal), as licodec's NonNegativeParameter does
            for part in ("beta", "gamma"):
                mapped[f"{ours}.{k}.{part}.raw"] = state.get(f"{theirs}.{k}.{part}")
    density = "densities.levels.0"
    if arch != "bmshj2018-factorized":
        density = "hyper_densities.levels.0"
        for theirs, ours in (("h_a", "hyper_analysis"), ("h_s", "hyper_synthesis")):
            for k in (0, 2, 4):
                for part in ("weight", "bias"):
                    mapped[f"{ours}.{k}.{part}"] = state.get(f"{theirs}.{k}.{part}")
    if arch == "mbt2018":
        for part in ("weight", "bias"):
            mapped[f"context.{part}"] = state.get(f"context_prediction.{part}")
            for k in (0, 2, 4):
                mapped[f"entropy_parameters.{k}.{part}"] = state.get(f"entropy_parameters.{k}.{part}")
    mapped.update({f"{density}.{key}": value for key, value in bottleneck.items()})
    mapped = {codec.current_name(key): value for key, value in mapped.items()}  # the codec's names of today
    missing = sorted(key for key, value in mapped.items() if value is None)
    if missing:
        raise WeightsError(f"not a CompressAI {arch} state dict: no tensor for licodec's {missing[0]}")
    own = codec.state_dict()
    for key, value in mapped.items():
        if key not in own or tuple(own[key].shape) != tuple(value.shape):
            raise WeightsError(f"not a CompressAI {arch} state dict of N={N}, M={M}: {key} has shape "
                               f"{tuple(value.shape)}")
    state_dict = dict(own)
    state_dict.update({key: value.float() for key, value in mapped.items()})
    state_dict["gain.log_gain"] = torch.zeros_like(own["gain.log_gain"])  # gain 1: the checkpoint's own latents
    state_dict["gain.log_inverse_gain"] = torch.zeros_like(own["gain.log_inverse_gain"])
    codec.load_state_dict(state_dict)
    codec.update()
    return codec.prepare()


def import_checkpoints(arch: str, paths: list[str | Path], lmbdas: list[float] | None = None,
                       scale_rounding: str = "up") -> list[Codec]:
    """One codec per checkpoint file (see `convert`); each lambda from `lmbdas`, else from the zoo file name's
    quality."""
    check_architecture(arch)
    codecs = []
    for k, path in enumerate(paths):
        state = read_checkpoint(path)
        if lmbdas:
            lmbda = lmbdas[k]
        else:
            quality = quality_of(path)
            if quality is None:
                raise WeightsError(f"{path}: give --lmbda (the name is not a CompressAI zoo file's, "
                                   f"<arch>-<quality>-<hash>.pth.tar)")
            lmbda = ZOO_LAMBDAS[quality]
        if not (isinstance(lmbda, float) and math.isfinite(lmbda) and lmbda > 0):
            raise WeightsError(f"lambda must be a positive number, got {lmbda!r}")
        try:
            codecs.append(convert(arch, state, lmbda, scale_rounding))
        except WeightsError as error:
            raise WeightsError(str(error) if str(error).startswith(str(path)) else f"{path}: {error}") from None
    return codecs
