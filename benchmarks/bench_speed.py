"""Encode and decode time of licodec codecs side by side, in the same process on the same 768x512 image, with the
ratio of each to the first (the reference):

    python benchmarks/bench_speed.py --codecs balle2018-hyperprior,rippel2017 [--threads 2] [--repeat 3]
        [--quality Q] [--image PATH] [--weights NAME=PATH ...]

[6] (Rippel & Bourdev) claims real-time coding; issue 6 asks for its times beside our `balle2018-hyperprior`.
Each codec uses its shipped weights when the zoo has them (or a weights file given with --weights NAME=PATH),
random weights with its default configuration otherwise (said in the output). Times are medians of --repeat runs
after a warm-up, the entropy coding and the file's sections included.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_context import Ours  # noqa: E402
from bench_hyperprior import load_image, time_both  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default="balle2018-hyperprior,rippel2017")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quality", type=float, default=None, help="every codec's quality (default: 4 or its top)")
    parser.add_argument("--image", default=None)
    parser.add_argument("--weights", action="append", default=[], help="NAME=PATH of a weights file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = dict(item.split("=", 1) for item in args.weights)
    x = load_image(args.image)
    print(f"image {x.shape[-1]}x{x.shape[-2]}, {args.threads} threads, median of {args.repeat}")
    reference = None
    for name in (n.strip() for n in args.codecs.split(",") if n.strip()):
        impl = Ours(name, weights.get(name))
        if args.quality is not None:
            impl.quality = args.quality
        t = time_both(impl, x, args.repeat)
        reference = reference or t
        ratios = {k: t[k] / reference[k] for k in t}
        print(f"{impl.name:55s} q{impl.quality:g}  encode {t['encode_s']:7.3f} s ({ratios['encode_s']:.2f}x)   "
              f"decode {t['decode_s']:7.3f} s ({ratios['decode_s']:.2f}x)")


if __name__ == "__main__":
    main()
