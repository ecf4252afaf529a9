"""Decode speed of the context models: licodec's minnen2018-joint (serial, wavefront decoder) and
minnen2018-checkerboard beside CompressAI's mbt2018 (JointAutoregressiveHierarchicalPriors, which decodes with a
Python loop over every latent position) and beside licodec's balle2018-hyperprior.

Same N/M (128/192), same 768x512 image, same thread count, same process. Each licodec codec uses its shipped
weights when the zoo has them (or a weights file given with --weights NAME=PATH), random weights otherwise (said
in the output); CompressAI runs with random weights. Prints the times and the ratios the targets are stated in:

    python benchmarks/bench_context.py [--threads 2] [--repeat 3] [--image PATH] [--weights NAME=PATH ...]

CompressAI is an optional dev dependency: see benchmarks/bench_hyperprior.py for its installation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hyperprior import Theirs as BaseTheirs  # noqa: E402
from bench_hyperprior import _import_compressai, load_image, time_both  # noqa: E402

NAMES = ("minnen2018-joint", "minnen2018-checkerboard", "balle2018-hyperprior")


class Ours:
    def __init__(self, name: str, weights: str | None) -> None:
        from licodec import zoo
        from licodec.registry import codec_class

        if weights:
            self.codec, origin = zoo.from_bytes(Path(weights).read_bytes()), weights
        elif zoo.weights_path(name).exists():
            self.codec, origin = zoo.load(name), "shipped weights"
        else:
            torch.manual_seed(0)
            self.codec, origin = codec_class(name)(), "random weights"  # the defaults: N=128, M=192 here
            self.codec.update()
            self.codec.prepare()
            self.codec.weights_hash = "00" * 8
        self.name = f"licodec {name} ({origin})"
        self.quality = min(4, self.codec.qualities)

    def encode(self, x: torch.Tensor):
        return self.codec.compress(x, self.quality)

    def decode(self, data) -> torch.Tensor:
        return self.codec.decompress(data)


class Theirs(BaseTheirs):
    """CompressAI's mbt2018 with the same N/M, coded the way bench_hyperprior codes its hyperprior."""

    name = "CompressAI mbt2018 (random weights)"

    def __init__(self) -> None:
        _import_compressai()
        from compressai.models import JointAutoregressiveHierarchicalPriors

        torch.manual_seed(0)
        self.net = JointAutoregressiveHierarchicalPriors(128, 192).eval()
        self.net.update(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", default=None)
    parser.add_argument("--weights", action="append", default=[], help="NAME=PATH of a weights file")
    parser.add_argument("--skip-compressai", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = dict(item.split("=", 1) for item in args.weights)
    x = load_image(args.image)
    print(f"image {x.shape[-1]}x{x.shape[-2]}, {args.threads} threads, median of {args.repeat}")
    times = {}
    impls = [Ours(name, weights.get(name)) for name in NAMES]
    if not args.skip_compressai:
        impls.append(Theirs())
    for impl in impls:
        times[impl.name] = t = time_both(impl, x, args.repeat)
        print(f"{impl.name:60s} encode {t['encode_s']:7.3f} s   decode {t['decode_s']:7.3f} s")
    joint, board, hyper = (times[impl.name] for impl in impls[:3])
    print(f"checkerboard decode / hyperprior decode: {board['decode_s'] / hyper['decode_s']:.2f} (target <= 2)")
    if not args.skip_compressai:
        theirs = times[impls[3].name]
        print(f"CompressAI mbt2018 / our joint: encode {theirs['encode_s'] / joint['encode_s']:.1f}x, "
              f"decode {theirs['decode_s'] / joint['decode_s']:.1f}x (target >= 5x for decode)")


if __name__ == "__main__":
    main()
