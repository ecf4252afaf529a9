"""Shipped weights: fp16 safetensors with their integer CDF tables, one file per codec.

`save` rounds the weights to fp16 first and freezes the tables from the rounded weights, so the tables describe
exactly the model that `load` rebuilds. The file's SHA-256 identifies the weights in every bitstream header.
A masked convolution stores only its visible taps (`visible.` keys): the rest are zero by construction and were
about half of a context model's kernel bytes.

A file may name a base: another installed weights file (by codec name and hash) whose tensors it shares. It then
stores only the tensors that differ from the base's, and loading takes the rest from the base, refusing a base
whose hash is not the one recorded. toderici2017 is toderici2016's recurrent network plus a context model over its
codes: its file holds the context model alone.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes
from safetensors.torch import save as save_bytes

from licodec.bitstream import HASH_BYTES
from licodec.codecs.base import Codec
from licodec.entropy.gaussian import GaussianConditional
from licodec.entropy.tables import CdfTables
from licodec.errors import CodecError, WeightsError
from licodec.registry import codec_class
from licodec.train.hardware import describe

ZOO = Path(__file__).parent
SIDE_NETWORKS = ("hyper_analysis", "hyper_synthesis", "entropy_parameters")  # what `set_leaky_relu` changes

def weights_path(name: str) -> Path:
    """Where the shipped weights of codec `name` live."""
    return ZOO / f"{name}.safetensors"

def _table_owners(codec: Codec) -> dict[str, torch.nn.Module]:
    return {name: module for name, module in codec.named_modules() if hasattr(module, "tables")}

def _masked(codec: Codec) -> dict[str, torch.nn.Module]:
    """The masked convolutions of `codec` (modules with a fixed `mask` buffer over their kernel)."""
    return {name: module for name, module in codec.named_modules()
            if isinstance(getattr(module, "mask", None), torch.Tensor) and hasattr(module, "weight")}


def _visible(module: torch.nn.Module) -> torch.Tensor:
    """Boolean map of the kernel taps that the mask keeps, shape of the kernel's spatial dimensions."""
    return module.mask.reshape(module.mask.shape[2:]) != 0


def to_bytes(codec: Codec, provenance: dict, base: str | None = None, half: bool = True) -> bytes:
    """Round `codec` to fp16, freeze its tables and serialize it (see the module docstring); with `base` (an
    installed codec's name), only the tensors that differ from that file's are stored. `half=False` keeps the
    parameters in fp32 (imported weights, kept as their toolkit trained them)."""
    if half:
        with torch.no_grad():
            for parameter in codec.parameters():
                parameter.copy_(parameter.half().float())
    codec.update()
    tensors = {}
    for key, value in codec.state_dict().items():
        is_parameter = key in dict(codec.named_parameters())
        tensors[f"model.{key}"] = value.half() if is_parameter and half else value
    for name, module in _masked(codec).items():
        tensors[f"visible.{name}.weight"] = tensors.pop(f"model.{name}.weight")[:, :, _visible(module)]
    for name, module in _table_owners(codec).items():
        tensors.update(module.tables.to_tensors(f"tables.{name}"))
    metadata = {
        "codec": codec.name,
        "config": json.dumps(codec.config),
        "provenance": json.dumps(provenance),
    }
    if base is not None:
        base_data = weights_path(base).read_bytes()
        shared = load_bytes(base_data)
        tensors = {k: v for k, v in tensors.items()
                   if not (k in shared and shared[k].dtype == v.dtype and torch.equal(shared[k], v))}
        metadata.update(base=base, base_hash=digest(base_data))
    return save_bytes({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)

def save(codec: Codec, path: str | Path, provenance: dict, base: str | None = None) -> str:
    """Write `codec` as a weights file (sharing `base`'s tensors, when given); returns its hash."""
    data = to_bytes(codec, provenance, base)
    Path(path).write_bytes(data)
    return digest(data)

def digest(data: bytes) -> str:
    """The weights hash that bitstream headers record."""
    return hashlib.sha256(data).digest()[:HASH_BYTES].hex()

def from_bytes(data: bytes) -> Codec:
    """Rebuild a codec, tables included, from the bytes of a weights file."""
    if data[:4] == b"PK\x03\x04":
        raise WeightsError("a PyTorch checkpoint, not a licodec weights file (a CompressAI one: `licodec import "
                           "compressai`; a licodec training checkpoint: `licodec export`)")
    try:
        tensors = load_bytes(data)
        metadata = _metadata(data)
        config = json.loads(metadata["config"]) if "config" in metadata else None
    except (SafetensorError, ValueError, json.JSONDecodeError, AttributeError) as error:
        raise WeightsError(f"weights file is damaged ({error})") from None
    if not isinstance(metadata.get("codec"), str) or not isinstance(config, dict):
        raise WeightsError("not a licodec weights file (its metadata names no codec and configuration)")
    try:
        cls = codec_class(metadata["codec"])
    except CodecError:
        raise WeightsError(f"weights of codec {metadata['codec']!r}, which this licodec does not know") from None
    if "base" in metadata:
        tensors = {**_base_tensors(metadata["base"], metadata.get("base_hash", "")), **tensors}
    try:
        codec = build(cls, config)
    except (TypeError, ValueError, CodecError) as error:
        raise WeightsError(f"weights file does not match codec {metadata['codec']!r} ({error})") from None
    tensors = renamed(tensors, codec)
    state = {k[len("model."):]: v.float() if v.is_floating_point() and v.dtype == torch.float16 else v
             for k, v in tensors.items() if k.startswith("model.")}
    try:
        for name, module in _masked(codec).items():
            if f"{name}.weight" in state:  # a file written before visible-tap storage
                continue
            full = torch.zeros_like(module.weight)
            full[:, :, _visible(module)] = tensors[f"visible.{name}.weight"].float()
            state[f"{name}.weight"] = full
        codec.load_state_dict(state)
    except (KeyError, RuntimeError) as error:
        raise WeightsError(f"weights file does not match codec {metadata['codec']!r} ({error})") from None
    for name, module in _table_owners(codec).items():
        module.tables = CdfTables.from_tensors(tensors, f"tables.{name}")
    codec.prepare()
    codec.weights_hash = digest(data)
    codec.provenance = json.loads(metadata.get("provenance", "{}"))
    return codec

def build(cls: type[Codec], config: dict) -> Codec:
    """A codec of class `cls` from a weights file's configuration: its constructor's arguments, plus the entropy
    model options that `set_density_filters` and `set_scale_levels` record (imported weights)."""
    config = dict(config)
    filters = config.pop("density_filters", None)
    scale_levels = config.pop("scale_levels", None)
    scale_rounding = config.pop("scale_rounding", "nearest")
    leaky_slope = config.pop("leaky_relu", None)
    codec = cls(**config)
    if leaky_slope is not None:
        set_leaky_relu(codec, float(leaky_slope))
    if filters is not None:
        set_density_filters(codec, tuple(filters))
    if scale_levels is not None:
        set_scale_levels(codec, int(scale_levels), scale_rounding)
    return codec


def set_leaky_relu(codec: Codec, slope: float) -> None:
    """Make the ReLUs of `codec`'s side networks (modules named hyper_analysis, hyper_synthesis or
    entropy_parameters) LeakyReLUs of this negative slope, as CompressAI's mean-scale and joint models have them;
    recorded in its config as `leaky_relu`."""
    for name, module in list(codec.named_modules()):
        if name.rpartition(".")[2] in SIDE_NETWORKS and isinstance(module, torch.nn.Sequential):
            for index, layer in enumerate(module):
                if isinstance(layer, torch.nn.ReLU):
                    module[index] = torch.nn.LeakyReLU(slope)
    codec.config["leaky_relu"] = slope


def set_density_filters(codec: Codec, filters: tuple[int, ...]) -> None:
    """Give every factorized density of `codec` hidden layers of these widths (licodec's own have (3, 3, 3);
    CompressAI's entropy bottleneck (3, 3, 3, 3)), recorded in its config as `density_filters`."""
    from licodec.entropy.factorized import FactorizedDensity

    for name, module in list(codec.named_modules()):
        if isinstance(module, FactorizedDensity):
            parent, _, child = name.rpartition(".")
            replacement = FactorizedDensity(module.channels, filters=tuple(filters), tail_mass=module.tail_mass,
                                            integer_grid=module.integer_grid)
            setattr(codec.get_submodule(parent) if parent else codec, child, replacement)
    codec.config["density_filters"] = list(filters)


def set_scale_levels(codec: Codec, levels: int, rounding: str = "nearest") -> None:
    """Give every Gaussian conditional of `codec` a table of `levels` scales over the same range (licodec's have
    128; CompressAI's 64), recorded in its config as `scale_levels`. `rounding="up"` (`scale_rounding`) takes
    the first table scale at or above each predicted scale, as CompressAI does, instead of the nearest."""
    if rounding not in ("nearest", "up"):
        raise WeightsError(f"unknown scale rounding {rounding!r}")
    kind = GaussianConditional if rounding == "nearest" else _ScalesRoundedUp
    for name, module in list(codec.named_modules()):
        if isinstance(module, GaussianConditional):
            parent, _, child = name.rpartition(".")
            replacement = kind(module.scale_min, float(module.scale_table[-1]), levels, module.tail_mass)
            setattr(codec.get_submodule(parent) if parent else codec, child, replacement)
    codec.config["scale_levels"] = levels
    if rounding != "nearest":
        codec.config["scale_rounding"] = rounding


class _ScalesRoundedUp(GaussianConditional):
    """A Gaussian conditional that codes each element with the first table scale at or above its own."""

    def index_thresholds(self, fraction_bits: int) -> torch.Tensor:
        """Fixed-point boundaries: a scale s takes table entry i when table[i-1] < s <= table[i]."""
        table = self.scale_table.double()[:-1]
        return torch.floor(table * (1 << fraction_bits)).long() + 1


def renamed(tensors: dict[str, torch.Tensor], codec: Codec) -> dict[str, torch.Tensor]:
    """`tensors` of a weights file with the module names in their keys ("model.<module>...",
    "visible.<module>...", "tables.<module>...") as `codec` names them today (`Codec.renamed_modules`)."""
    if not codec.renamed_modules:
        return tensors
    out = {}
    for key, value in tensors.items():
        kind, _, name = key.partition(".")
        out[f"{kind}.{codec.current_name(name)}"] = value
    return out


def _base_tensors(name: str, expected: str) -> dict[str, torch.Tensor]:
    """The tensors of the weights file a derived file builds on, checked against its recorded hash: the shipped
    file of `name`, or the store's file with that hash (a retired base)."""
    from licodec import store

    path = weights_path(name)
    data = path.read_bytes() if path.exists() else b""
    if digest(data) != expected:
        entry = store.find(expected, name) if expected else None
        data = entry.path.read_bytes() if entry is not None else b""
    if digest(data) != expected:
        raise WeightsError(f"these weights build on {name!r} weights {expected[:12]}, which are not installed "
                           f"({store.HOW_TO_GET})")
    return load_bytes(data)


def _metadata(data: bytes) -> dict[str, str]:
    header_length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + header_length]).get("__metadata__") or {}

def installed() -> list[str]:
    """Names of the codecs that have shipped weights."""
    return sorted(p.stem for p in ZOO.glob("*.safetensors"))

@lru_cache(maxsize=8)
def _load_cached(name: str) -> Codec:
    path = weights_path(name)
    if not path.exists():
        codec_class(name)  # an unknown name gets the "unknown codec" error instead
        raise WeightsError(f"no trained weights for {name!r} are installed (have: {', '.join(installed()) or 'none'})")
    return from_bytes(path.read_bytes())

def load(name: str) -> Codec:
    """The shipped codec `name`, ready to code (eval mode, tables loaded). Cached per process."""
    return _load_cached(name)

def index() -> dict:
    """The zoo's index: per codec, its qualities, lambdas, size and training provenance."""
    entries = {}
    for name in installed():
        path = weights_path(name)
        data = path.read_bytes()
        metadata = _metadata(data)
        config = json.loads(metadata["config"])
        provenance = json.loads(metadata.get("provenance", "{}"))
        entries[name] = {
            "file": path.name,
            "bytes": len(data),
            "hash": digest(data),
            "qualities": build(codec_class(metadata["codec"]), config).qualities,  # lambdas, bottlenecks, iterations
            "lmbdas": config.get("lmbdas", []),
            "config": config,
            "provenance": provenance,
            "training_hardware": describe(provenance),  # CPU and steps/s, or "not recorded"
        }
    return entries
