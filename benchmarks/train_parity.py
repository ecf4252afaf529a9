"""licodec's training against CompressAI 1.2.8's reference recipe: the same scale hyperprior, data and budget.

For each lambda, the scale hyperprior (N=128, M=192) is trained twice on the same images (`--data`, never Kodak),
with the same crop size, batch, number of steps and threads, on the CPU, in this one run:

- **licodec**: `licodec train --codec balle2018-hyperprior --lmbda L --channels 128,192 ... --export F` (licodec's
  own loop, `licodec/train/`, with its defaults unless `--ours-args` adds options such as
  "--precision bf16 --lr 3e-4"), in a subprocess; its time per step is the one `licodec train` measures and records
  in the weights file (`trained_on`: the optimizer steps alone, without loading or checkpoint writes).
- **CompressAI**: its `compressai.models.ScaleHyperprior(128, 192)`, `RateDistortionLoss(lmbda)`
  (lambda * 255^2 * MSE + bpp), `net_aux_optimizer` (Adam 1e-4 on the network, Adam 1e-3 on the quantiles' aux
  loss), gradient clip 1.0 on all parameters, in the order of its `examples/train.py` (zero both optimizers, RD loss
  backward, clip, step; aux loss backward, aux step), on random crops (no flips: `RandomCrop` + `ToTensor`) of an
  image each, epochs in shuffled order, full batches. The learning rate stays 1e-4: the recipe's
  `ReduceLROnPlateau` steps on a validation loss once per epoch with a patience of 10 epochs, and the benchmark
  has no validation split (at the default settings 2 000 steps are about 27 epochs of 600 images, the loss still
  falling). Its time per step is the same span: batch cropping from images in memory to the aux step.

Then both code Kodak (`--kodak`, `--limit` images) into real files: licodec's through `licodec.compress` and
`licodec.decompress` (.lic files), CompressAI's through its own `update(force=True)`, `compress` and `decompress`
on the image padded to a multiple of 64, in a file laid out as its `examples/codec.py` writes one (2-byte model
code, height, width, bit depth, latent shape, string count and lengths: 31 bytes besides its two strings; the JSON
also keeps the bytes of the strings alone, as its `compressai.utils.eval_model` counts them). PSNR is on 8-bit RGB
for both (`licodec.eval.metrics.psnr`), averaged over the images with the bpp, as both toolkits' evaluations do.

It prints the points, the BD-rate (PSNR, `licodec.eval.bdrate.bd_rate`, the `bjontegaard` package, cubic) of
licodec against CompressAI, each recipe's time per step, the CPU, and last:

    licodec vs CompressAI after N steps: BD-rate X %, time per step Y x

where Y is licodec's seconds per step over CompressAI's (below 1: licodec faster). A BD-rate needs four points a
curve: with fewer lambdas it is nan. One model per lambda for both, so that each lambda gets the same steps under
both recipes (licodec's variable-rate model would split its steps among its levels).

`--out DIR` keeps checkpoints, models, files and `results.json`. A run is resumable: a finished (recipe, lambda)
model is reused, an interrupted one resumes from its checkpoint; `--report` prints the summary of DIR's JSON alone.

CompressAI 1.2.8 in its own environment (its wheel pins numpy < 2; `--no-deps` skips that and its heavy extras):

    python3 -m venv /work/cai-venv
    /work/cai-venv/bin/pip install torch==2.13.0            # the CPU build licodec's environment has
    pip download compressai==1.2.8 --no-deps -d /tmp/cai
    /work/cai-venv/bin/pip install /tmp/cai/compressai-1.2.8-*.whl --no-deps
    /work/cai-venv/bin/pip install einops scipy pytorch-msssim pandas requests numpy==2.4.6
    /work/cai-venv/bin/pip install -e .
    OMP_NUM_THREADS=1 PYTHONPATH=$PWD /work/cai-venv/bin/python benchmarks/train_parity.py --out runs/parity

CompressAI imports torchvision and torch_geometric when it is imported, only to list their transforms in a
registry (and for its point-cloud transforms); neither is used here. Where they are missing or do not load (PyPI's
torchvision beside a CPU build of torch), empty stand-ins take their names for this process, and it says so.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import math
import os
import shlex
import struct
import subprocess
import sys
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_LAMBDAS = "0.0018,0.0035,0.0067,0.013"  # CompressAI's qualities 1-4 of bmshj2018-hyperprior
RECIPES = ("licodec", "compressai")
#: Settings that define the trained models: a --out folder holds models of one combination of them.
MODEL_SETTINGS = ("steps", "crop", "batch", "seed", "data", "ours_args", "checkpoint_every")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per model (default 2000)")
    parser.add_argument("--crop", type=int, default=128, help="crop size of both (default 128; CompressAI's "
                                                             "examples use 256)")
    parser.add_argument("--batch", type=int, default=8, help="batch of both (default 8; CompressAI's examples "
                                                             "use 16)")
    parser.add_argument("--lambdas", default=DEFAULT_LAMBDAS, help=f"comma-separated (default {DEFAULT_LAMBDAS})")
    parser.add_argument("--threads", type=int, default=0, help="torch threads of both (0: PyTorch's default)")
    parser.add_argument("--limit", type=int, default=24, help="first N Kodak images (default all 24)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=500)
    parser.add_argument("--data", default=str(SHARED / "train"), help="training images")
    parser.add_argument("--kodak", default=str(SHARED / "kodak"), help="evaluation images")
    parser.add_argument("--ours-args", default="", help='more `licodec train` options, e.g. "--precision bf16"')
    parser.add_argument("--out", default="runs/train_parity", help="checkpoints, models, files and results.json")
    parser.add_argument("--report", action="store_true", help="print the summary of --out's results.json only")
    args = parser.parse_args(argv)
    try:
        args.lambda_list = [float(v) for v in args.lambdas.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--lambdas {args.lambdas!r}: expected comma-separated numbers")
    if not args.lambda_list or min(args.lambda_list) <= 0:
        parser.error("--lambdas: expected positive numbers")
    if min(args.steps, args.crop, args.batch, args.limit, args.checkpoint_every) <= 0:
        parser.error("--steps, --crop, --batch, --limit and --checkpoint-every must be positive")
    if args.crop % 64:
        parser.error("--crop must be a multiple of 64 (both models downsample by 64)")
    return args


# ---------------------------------------------------------------------------------------------------- CompressAI

class _StandIns:
    """Finds every module under the given top-level names as an empty package (see the module docstring)."""

    def __init__(self, roots: set[str]) -> None:
        self.roots = roots

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):  # noqa: D102
        module = _StandInModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module) -> None:  # noqa: D102
        pass


class _StandInModule(types.ModuleType):
    """Any public name is a placeholder class: subclassed, called or used as a decorator at import time, and
    doing nothing (CompressAI's registry and point-cloud transforms only name these at import)."""

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        placeholder = type(name, (), {"__init__": lambda self, *a, **k: None,
                                      "__call__": lambda self, obj=None, *a, **k: obj})
        setattr(self, name, placeholder)
        return placeholder


def import_compressai():
    """CompressAI's package, with stand-ins for torchvision and torch_geometric where those do not import; exits
    with a clear line (non-zero status) when CompressAI itself is not importable."""
    import importlib.util

    if importlib.util.find_spec("compressai") is None:
        sys.exit("train_parity: CompressAI is not installed here (No module named 'compressai'); install "
                 "compressai==1.2.8 as this script's docstring says")
    missing = set()
    for name in ("torchvision", "torch_geometric"):
        try:
            __import__(name)
        except Exception:  # missing, or PyPI's torchvision against a CPU torch ("torchvision::nms does not exist")
            missing.add(name)
            for loaded in [m for m in sys.modules if m.split(".")[0] == name]:
                del sys.modules[loaded]
    if missing:
        # Only for this benchmark (never in licodec): CompressAI's registry lists their transforms at import time.
        sys.meta_path.insert(0, _StandIns(missing))
        print(f"note: {' and '.join(sorted(missing))} not importable here: empty stand-ins installed for this "
              f"process (CompressAI only lists their transforms at import)", flush=True)
    try:
        import compressai
        import compressai.losses
        import compressai.models
        import compressai.optimizers
    except Exception as error:  # noqa: BLE001 - any failure means the same: no CompressAI to compare with
        sys.exit(f"train_parity: CompressAI is not importable here ({type(error).__name__}: {error}); install "
                 f"compressai==1.2.8 as this script's docstring says")
    if compressai.__version__ != "1.2.8":
        print(f"warning: CompressAI {compressai.__version__}, not the 1.2.8 this benchmark describes", flush=True)
    return compressai


class Crops:
    """CompressAI's training data: epochs of the images in shuffled order, a random crop (no flip) of each, as
    `ImageFolder` + `RandomCrop` + `ToTensor` in a shuffled `DataLoader` give them; images under the crop size are
    left out (licodec's sampler leaves them out too; `RandomCrop` would fail on them)."""

    def __init__(self, folder: str, size: int, seed: int) -> None:
        import numpy as np
        from PIL import Image

        from licodec.data.folder import list_images

        self.size, self.rng = size, np.random.default_rng(seed)
        self.images = []
        for path in list_images(folder):
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"))
            if min(array.shape[:2]) >= size:
                self.images.append(array)
        if not self.images:
            sys.exit(f"train_parity: no image of at least {size}x{size} pixels in {folder}")
        self.order: list[int] = []

    def batch(self, count: int):
        import numpy as np
        import torch

        crops = np.empty((count, self.size, self.size, 3), dtype=np.uint8)
        for i in range(count):
            if not self.order:
                self.order = list(self.rng.permutation(len(self.images)))
            image = self.images[self.order.pop()]
            top = self.rng.integers(image.shape[0] - self.size + 1)
            left = self.rng.integers(image.shape[1] - self.size + 1)
            crops[i] = image[top : top + self.size, left : left + self.size]
        return torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "order": [int(i) for i in self.order]}

    def restore(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.order = list(state["order"])


def train_compressai(compressai, args: argparse.Namespace, lmbda: float, folder: Path) -> dict:
    """Train (or resume, or reuse) CompressAI's model for `lmbda`; returns its entry (file, steps, seconds)."""
    import torch
    from tqdm import tqdm

    final, checkpoint = folder / f"compressai-{lmbda:g}.pth", folder / f"compressai-{lmbda:g}.ckpt"
    if final.exists():
        return torch.load(final, map_location="cpu", weights_only=False)["entry"]
    torch.manual_seed(args.seed)
    net = compressai.models.ScaleHyperprior(N=128, M=192)
    optimizers = compressai.optimizers.net_aux_optimizer(
        net, {"net": {"type": "Adam", "lr": 1e-4}, "aux": {"type": "Adam", "lr": 1e-3}})
    optimizer, aux_optimizer = optimizers["net"], optimizers["aux"]
    criterion = compressai.losses.RateDistortionLoss(lmbda=lmbda)
    crops = Crops(args.data, args.crop, args.seed + 1)
    step, seconds = 0, 0.0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        net.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        crops.restore(state["crops"])
        torch.set_rng_state(state["torch_rng"])
        step, seconds = state["step"], state["seconds"]
    net.train()
    bar = tqdm(total=args.steps, initial=step, desc=f"compressai {lmbda:g}")
    while step < args.steps:
        started = time.perf_counter()
        x = crops.batch(args.batch)
        optimizer.zero_grad()
        aux_optimizer.zero_grad()
        out = criterion(net(x), x)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        aux_loss = net.aux_loss()
        aux_loss.backward()
        aux_optimizer.step()
        seconds += time.perf_counter() - started
        step += 1
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{out['loss'].item():.3f}", bpp=f"{out['bpp_loss'].item():.3f}",
                            aux=f"{aux_loss.item():.1f}")
        if step % args.checkpoint_every == 0 and step < args.steps:
            _save(checkpoint, {"state_dict": net.state_dict(), "optimizer": optimizer.state_dict(),
                               "aux_optimizer": aux_optimizer.state_dict(), "crops": crops.state(),
                               "torch_rng": torch.get_rng_state(), "step": step, "seconds": seconds})
    bar.close()
    entry = {"file": final.name, "steps": step, "seconds": seconds, "threads": torch.get_num_threads(),
             "precision": "fp32"}
    _save(final, {"state_dict": net.state_dict(), "entry": entry})
    checkpoint.unlink(missing_ok=True)
    return entry


def _save(path: Path, state: dict) -> None:
    import torch

    temporary = path.with_name(path.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, path)


def write_compressai_file(path: Path, height: int, width: int, out: dict) -> int:
    """CompressAI's strings in the layout of its examples/codec.py (model code, size, bit depth, latent shape,
    strings with their lengths); returns the file's size."""
    shape, strings = out["shape"], out["strings"]
    body = struct.pack(">2B", 0, 0) + struct.pack(">2I", height, width) + struct.pack(">B", 8)
    body += struct.pack(">3I", shape[0], shape[1], len(strings))
    for s in strings:
        body += struct.pack(">I", len(s[0])) + s[0]
    path.write_bytes(body)
    return len(body)


def read_compressai_file(path: Path) -> tuple[int, int, list, tuple]:
    data = path.read_bytes()
    height, width = struct.unpack_from(">2I", data, 2)
    shape0, shape1, count = struct.unpack_from(">3I", data, 11)
    offset, strings = 23, []
    for _ in range(count):
        (length,) = struct.unpack_from(">I", data, offset)
        strings.append([data[offset + 4 : offset + 4 + length]])
        offset += 4 + length
    return height, width, strings, (shape0, shape1)


def eval_compressai(compressai, model_file: Path, images: list[Path], files: Path) -> dict:
    import torch
    import torch.nn.functional as F
    from compressai.ops import compute_padding

    from licodec.eval.metrics import psnr
    from licodec.io import read_image

    net = compressai.models.ScaleHyperprior(N=128, M=192)
    net.load_state_dict(torch.load(model_file, map_location="cpu", weights_only=False)["state_dict"])
    net.eval()
    net.update(force=True)
    files.mkdir(parents=True, exist_ok=True)
    points = []
    with torch.no_grad():
        for path in images:
            x, _ = read_image(path)
            height, width = x.shape[-2:]
            pad, unpad = compute_padding(height, width, min_div=64)
            out = net.compress(F.pad(x, pad, mode="constant", value=0))
            file = files / f"{path.stem}.bin"
            size = write_compressai_file(file, height, width, out)
            read_height, read_width, strings, shape = read_compressai_file(file)
            x_hat = net.decompress(strings, shape)["x_hat"]
            _, unpad = compute_padding(read_height, read_width, out_h=x_hat.shape[-2], out_w=x_hat.shape[-1])
            x_hat = F.pad(x_hat, unpad).clamp(0, 1)
            points.append({"image": path.stem, "bytes": size, "string_bytes": sum(len(s[0]) for s in strings),
                           "bpp": 8 * size / (height * width), "psnr": psnr(x, x_hat)})
    return _mean(points)


# ---------------------------------------------------------------------------------------------------- licodec

def train_licodec(args: argparse.Namespace, lmbda: float, folder: Path) -> dict:
    """`licodec train` for `lmbda` (resumed from its checkpoint, or reused when exported); returns its entry."""
    from licodec import zoo

    final, checkpoint = folder / f"licodec-{lmbda:g}.safetensors", folder / f"licodec-{lmbda:g}.ckpt"
    if not final.exists():
        command = [sys.executable, "-m", "licodec.cli", "train", "--codec", "balle2018-hyperprior",
                   "--data", args.data, "--checkpoint", str(checkpoint), "--lmbda", f"{lmbda:g}",
                   "--channels", "128,192", "--steps", str(args.steps), "--batch-size", str(args.batch),
                   "--crop", str(args.crop), "--seed", str(args.seed), "--jobs", str(args.threads),
                   "--checkpoint-every", str(args.checkpoint_every), "--export", str(final),
                   *shlex.split(args.ours_args)]
        if checkpoint.exists():
            command.append("--resume")
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        if subprocess.run(command, env=environment).returncode != 0:
            sys.exit(f"train_parity: licodec train failed for lambda {lmbda:g}: {shlex.join(command)}")
        checkpoint.unlink(missing_ok=True)  # the exported file is what is reused (a checkpoint is 60 MB)
    provenance = zoo.from_bytes(final.read_bytes()).provenance
    segments = provenance.get("trained_on", [])
    steps, seconds = sum(s["steps"] for s in segments), sum(s["seconds"] for s in segments)
    if steps != args.steps:
        sys.exit(f"train_parity: {final} records {steps} timed steps, not {args.steps}")
    return {"file": final.name, "steps": steps, "seconds": seconds,
            "threads": segments[-1]["threads"], "precision": segments[-1]["precision"]}


def eval_licodec(model_file: Path, images: list[Path], files: Path) -> dict:
    import licodec
    from licodec.api import decompress_tensor
    from licodec.eval.metrics import psnr
    from licodec.io import read_image

    codec = licodec.load(str(model_file))
    files.mkdir(parents=True, exist_ok=True)
    points = []
    for path in images:
        x, _ = read_image(path)
        file = files / f"{path.stem}.lic"
        file.write_bytes(licodec.compress(x, weights=str(model_file), quality=1))
        data = file.read_bytes()
        x_hat, _ = decompress_tensor(data, weights=codec)
        points.append({"image": path.stem, "bytes": len(data), "bpp": 8 * len(data) / (x.shape[-2] * x.shape[-1]),
                       "psnr": psnr(x, x_hat)})
    return _mean(points)


def _mean(points: list[dict]) -> dict:
    return {"bpp": sum(p["bpp"] for p in points) / len(points), "psnr": sum(p["psnr"] for p in points) / len(points),
            "images": points}


# ---------------------------------------------------------------------------------------------------- the run

def cpu() -> str:
    from licodec.train.hardware import cpu_flags, cpu_name

    flags = cpu_flags()
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs" + (f", {' '.join(flags)})" if flags else ")")


def summary(results: dict) -> list[str]:
    """The report's lines from a results JSON; the last is the one-line verdict."""
    from licodec.eval.bdrate import bd_rate

    config, models = results["config"], results["models"]
    lambdas = sorted({float(key.split("/")[1]) for key in models})
    lines = [f"CPU: {results.get('cpu', 'not recorded')}; threads {config.get('threads') or 'default'}; "
             f"load average at the start {results.get('load', 'not recorded')} (a shared machine)",
             f"{config['steps']} steps, crops {config['crop']}, batch {config['batch']}, Kodak images "
             f"{config.get('limit')}; licodec options: {config.get('ours_args') or '(licodec train defaults)'}",
             f"{'lambda':>8} {'licodec bpp':>12} {'PSNR':>7} {'s/step':>7}   {'CompressAI bpp':>14} {'PSNR':>7} "
             f"{'s/step':>7}"]
    curves: dict[str, tuple[list[float], list[float]]] = {r: ([], []) for r in RECIPES}
    seconds = {r: 0.0 for r in RECIPES}
    steps = {r: 0 for r in RECIPES}
    for lmbda in lambdas:
        row = f"{lmbda:>8g}"
        for recipe in RECIPES:
            entry = models.get(f"{recipe}/{lmbda:g}")
            if entry is None or "eval" not in entry:
                row += f" {'(missing)':>28}   "
                continue
            curves[recipe][0].append(entry["eval"]["bpp"])
            curves[recipe][1].append(entry["eval"]["psnr"])
            seconds[recipe] += entry["seconds"]
            steps[recipe] += entry["steps"]
            width = 12 if recipe == "licodec" else 14
            row += (f" {entry['eval']['bpp']:>{width}.4f} {entry['eval']['psnr']:>7.3f} "
                    f"{entry['seconds'] / entry['steps']:>7.3f}   ")
        lines.append(row.rstrip())
    bd = bd_rate(curves["compressai"], curves["licodec"])
    per_step = {r: seconds[r] / steps[r] if steps[r] else math.nan for r in RECIPES}
    ratio = per_step["licodec"] / per_step["compressai"] if per_step["compressai"] else math.nan
    lines.append(f"BD-rate (PSNR, cubic) of licodec against CompressAI: {bd:+.2f} %"
                 + ("" if math.isfinite(bd) else " (needs four points a curve that overlap in PSNR)"))
    lines.append(f"time per step: licodec {per_step['licodec']:.3f} s, CompressAI {per_step['compressai']:.3f} s "
                 f"(the optimizer steps alone, on the CPU above)")
    lines.append(f"licodec vs CompressAI after {config['steps']} steps: BD-rate {bd:.2f} %, "
                 f"time per step {ratio:.3f} x")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    out = Path(args.out)
    results_path = out / "results.json"
    if args.report:
        if not results_path.exists():
            sys.exit(f"train_parity: no {results_path} to report")
        print("\n".join(summary(json.loads(results_path.read_text()))))
        return
    settings = {k: getattr(args, k) for k in MODEL_SETTINGS}
    results = json.loads(results_path.read_text()) if results_path.exists() else {"config": settings, "models": {}}
    differing = [k for k in MODEL_SETTINGS if results["config"].get(k) != settings[k]]
    if differing:
        sys.exit(f"train_parity: {out} holds models trained with other settings ("
                 + ", ".join(f"{k} {results['config'].get(k)!r}" for k in differing) + "): use another --out")
    compressai = import_compressai()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    results["config"] = {**settings, "threads": args.threads, "limit": args.limit, "lambdas": args.lambda_list}
    results["cpu"], results["load"] = cpu(), " ".join(f"{v:.2f}" for v in os.getloadavg())
    images = sorted(Path(args.kodak).glob("*.png"))[: args.limit]
    if not images:
        sys.exit(f"train_parity: no PNG images in {args.kodak}")
    out.mkdir(parents=True, exist_ok=True)
    print(f"CPU: {results['cpu']}; CompressAI {compressai.__version__}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", flush=True)
    for lmbda in args.lambda_list:  # the recipes alternate, so that a change of load falls on both
        for recipe in RECIPES:
            key = f"{recipe}/{lmbda:g}"
            entry = results["models"].get(key, {})
            if "eval" in entry and entry.get("limit") == args.limit:
                continue
            if recipe == "licodec":
                entry = train_licodec(args, lmbda, out)
                entry["eval"] = eval_licodec(out / entry["file"], images, out / "files" / key.replace("/", "-"))
            else:
                entry = train_compressai(compressai, args, lmbda, out)
                entry["eval"] = eval_compressai(compressai, out / entry["file"], images,
                                                out / "files" / key.replace("/", "-"))
            entry["limit"] = args.limit
            results["models"][key] = entry
            temporary = results_path.with_name("results.json.tmp")
            temporary.write_text(json.dumps(results, indent=1))
            os.replace(temporary, results_path)
            print(f"{key}: {entry['eval']['bpp']:.4f} bpp, {entry['eval']['psnr']:.3f} dB, "
                  f"{entry['seconds'] / entry['steps']:.3f} s/step", flush=True)
    results["models"] = {k: v for k, v in results["models"].items() if float(k.split("/")[1]) in args.lambda_list}
    print("\n".join(summary(results)))


if __name__ == "__main__":
    main()
