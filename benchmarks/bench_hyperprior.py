"""Encode/decode time and peak memory of licodec's balle2018-hyperprior beside CompressAI's bmshj2018-hyperprior.

Same architecture (N=128, M=192), same 768x512 image, same thread count, same process for the timings; peak
memory is measured in a fresh subprocess per (codec, operation). CompressAI runs with random weights (enough for
timing; its entropy coder still codes every symbol). Prints the times and the ratios ours / theirs.

CompressAI is an optional dev dependency. In licodec's environment:

    pip install --no-deps compressai==1.2.8 torch-geometric==2.6.1
    pip install einops pandas requests xxhash psutil

PyPI's torchvision does not import beside the CPU build of torch 2.13 that licodec pins, and CompressAI imports it
only to register transform names; when it is missing, this script registers an empty stand-in module first.

    python benchmarks/bench_hyperprior.py [--threads 2] [--repeat 5] [--image PATH]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak" / "kodim04.png"


def _import_compressai():
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001  (a broken torchvision raises RuntimeError, a missing one ImportError)
        for name in ("torchvision", "torchvision.transforms"):
            module = types.ModuleType(name)
            module.__path__ = []
            sys.modules[name] = module
        sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
    import compressai
    from compressai.models import ScaleHyperprior

    compressai.set_entropy_coder("ans")
    return ScaleHyperprior


def load_image(path: str | None) -> torch.Tensor:
    from licodec.io import read_image

    if path:
        return read_image(path)[0]
    if KODAK.exists():
        return read_image(KODAK)[0]
    from PIL import Image

    sample = Image.open(ROOT / "licodec" / "samples" / "kodim23-crop.png").resize((768, 512), Image.BICUBIC)
    return read_image(sample)[0]


class Ours:
    def __init__(self, precision: str = "fp32") -> None:
        import licodec

        self.codec = licodec.load("balle2018-hyperprior")
        self.quality = 4
        self.precision = precision
        self.name = f"licodec balle2018-hyperprior {precision}"

    def encode(self, x: torch.Tensor):
        from licodec.api import compress_tensor

        return compress_tensor(x, 3, self.codec, self.quality, self.precision)

    def decode(self, data) -> torch.Tensor:
        from licodec.api import decompress_tensor

        return decompress_tensor(data, self.precision)[0]


class Theirs:
    name = "CompressAI bmshj2018-hyperprior"

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.net = _import_compressai()(128, 192).eval()
        self.net.update(force=True)

    def encode(self, x: torch.Tensor):
        # CompressAI needs sides that are multiples of 64: pad like its own evaluation script does.
        height, width = x.shape[-2:]
        pad = (0, (-width) % 64, 0, (-height) % 64)
        with torch.no_grad():
            out = self.net.compress(torch.nn.functional.pad(x, pad))
        return out["strings"], out["shape"], (height, width)

    def decode(self, data) -> torch.Tensor:
        strings, shape, (height, width) = data
        with torch.no_grad():
            x_hat = self.net.decompress(strings, shape)["x_hat"]
        return x_hat[..., :height, :width].clamp(0, 1)


def time_both(impl, x: torch.Tensor, repeat: int) -> dict:
    data = impl.encode(x)  # warm-up
    impl.decode(data)
    encode, decode = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        data = impl.encode(x)
        encode.append(time.perf_counter() - start)
        start = time.perf_counter()
        impl.decode(data)
        decode.append(time.perf_counter() - start)
    return {"encode_s": statistics.median(encode), "decode_s": statistics.median(decode)}


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def worker(which: str, operation: str, threads: int, image: str | None, blob: str) -> None:
    """Peak resident memory added by one operation, in a process of its own."""
    torch.set_num_threads(threads)
    impl = Theirs() if which == "theirs" else Ours(which.split("-")[1])
    x = load_image(image)
    data = impl.encode(x) if operation == "decode" else None
    import gc

    gc.collect()
    before = _rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if operation == "encode":
        impl.encode(x)
    else:
        impl.decode(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(blob).write_text(json.dumps({"peak_mib": max(peak, peak_before) - before,
                                      "setup_peak_exceeded": peak <= peak_before}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--image", default=None)
    parser.add_argument("--worker", nargs=3, metavar=("WHICH", "OPERATION", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], args.threads, args.image, args.worker[2])
        return
    torch.set_num_threads(args.threads)
    x = load_image(args.image)
    print(f"image {x.shape[-1]}x{x.shape[-2]} (width x height), {args.threads} threads, "
          f"median of {args.repeat} runs, torch {torch.__version__}")
    impls = {"ours-fp32": Ours("fp32"), "ours-bf16": Ours("bf16"), "theirs": Theirs()}
    results = {key: time_both(impl, x, args.repeat) for key, impl in impls.items()}
    for key in impls:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            for operation in ("encode", "decode"):
                command = [sys.executable, __file__, "--threads", str(args.threads), "--worker", key, operation,
                           out.name]
                if args.image:
                    command += ["--image", args.image]
                subprocess.run(command, check=True)
                results[key][f"{operation}_peak_mib"] = json.loads(Path(out.name).read_text())["peak_mib"]
    print(f"{'':38} {'encode s':>9} {'decode s':>9} {'enc MiB':>8} {'dec MiB':>8}")
    for key, impl in impls.items():
        r = results[key]
        print(f"{impl.name:38} {r['encode_s']:9.3f} {r['decode_s']:9.3f} {r['encode_peak_mib']:8.0f} "
              f"{r['decode_peak_mib']:8.0f}")
    theirs = results["theirs"]
    for key in ("ours-fp32", "ours-bf16"):
        ours = results[key]
        print(f"{'ratio ' + key + ' / theirs':38} {ours['encode_s'] / theirs['encode_s']:9.2f} "
              f"{ours['decode_s'] / theirs['decode_s']:9.2f} "
              f"{ours['encode_peak_mib'] / max(theirs['encode_peak_mib'], 1e-9):8.2f} "
              f"{ours['decode_peak_mib'] / max(theirs['decode_peak_mib'], 1e-9):8.2f}")


if __name__ == "__main__":
    main()
