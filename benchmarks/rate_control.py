"""Rate control on Kodak: for each target bpp / PSNR, how close every image gets and what the search costs.

    python benchmarks/rate_control.py [--codec balle2018-hyperprior] [--bpp 0.25,0.5,1.0] [--psnr 30,33,36]
                                      [--root ../shared/data/kodak] [--threads 2]

bpp counts the whole .lic file. Prints, per target, the worst and mean deviation over the images, the number of
encodes and the time per image, and the images where the target lies outside the codec's range.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

import licodec
from licodec.api import compress_to_target
from licodec.data.folder import list_images
from licodec.errors import CodecError
from licodec.io import read_image

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codec", default="balle2018-hyperprior")
    parser.add_argument("--bpp", default="0.25,0.5,1.0")
    parser.add_argument("--psnr", default="30,33,36")
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    codec = licodec.load(args.codec)
    images = [(path.name, read_image(path)[0]) for path in list_images(args.root)]
    print(f"{args.codec} on {len(images)} images of {args.root}")
    print("| target | images reached | worst deviation | mean deviation | encodes per image | seconds per image |")
    print("|---|---|---|---|---|---|")
    targets = [("bpp", float(t)) for t in args.bpp.split(",") if t] + [
        ("psnr", float(t)) for t in args.psnr.split(",") if t]
    for metric, target in targets:
        deviations, evaluations, seconds, outside = [], [], [], []
        for name, x in images:
            try:
                data, reached = compress_to_target(x, 3, codec, metric, target)
            except CodecError:
                outside.append(name)
                continue
            if metric == "bpp":
                if reached.quality == codec.qualities:
                    outside.append(name)  # the top quality stays under the budget: nothing to reach
                    continue
                deviations.append(100 * (target - reached.value) / target)
            else:
                if reached.quality == 1:
                    outside.append(name)
                    continue
                deviations.append(reached.value - target)
            evaluations.append(reached.evaluations)
            seconds.append(reached.seconds)
        unit = "% below" if metric == "bpp" else "dB above"
        label = f"{target:g} {'bpp' if metric == 'bpp' else 'dB'}"
        if deviations:
            print(f"| {label} | {len(deviations)}/{len(images)} | {max(deviations):.2f} {unit} | "
                  f"{statistics.mean(deviations):.2f} {unit} | {statistics.mean(evaluations):.1f} | "
                  f"{statistics.mean(seconds):.2f} |")
        if outside:
            print(f"|   outside the range for {label}: {', '.join(outside)} | | | | | |")


if __name__ == "__main__":
    main()
