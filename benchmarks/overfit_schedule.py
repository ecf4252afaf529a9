"""One encode of ladune2023-coolchic with some of its schedule's constants changed, for comparing schedules:

    OMP_NUM_THREADS=1 python benchmarks/overfit_schedule.py --image kodim23.png --crop 256 --quality 4 \
        --iterations 2000 --set LATENT_LR_FACTOR=15.0 --set "SOFT_TEMPERATURE=(0.5, 0.2)"

Prints one JSON line: the sections' bpp, the decoded PSNR, J = MSE + lambda bpp at that quality's lambda (what
the encoder minimises; lower is better), the encode time and the CPU, and the training pass's (bpp, PSNR) every
100 iterations.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import time

import torch

from licodec.codecs import ladune2023 as cc
from licodec.eval.metrics import psnr
from licodec.io import read_image
from licodec.train.hardware import cpu_name


def main() -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--crop", type=int, default=256, help="centre SIZE x SIZE crop (0: the whole image)")
    parser.add_argument("--quality", type=float, default=4)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE: a constant of ladune2023")
    args = parser.parse_args()
    for item in args.set:
        name, value = item.split("=", 1)
        if not hasattr(cc, name):
            raise SystemExit(f"ladune2023 has no constant {name}")
        setattr(cc, name, ast.literal_eval(value))
    x = read_image(args.image)[0]
    if args.crop:
        height, width = x.shape[-2:]
        top, left = (height - args.crop) // 2, (width - args.crop) // 2
        x = x[..., top : top + args.crop, left : left + args.crop].contiguous()
    pixels = x.shape[-2] * x.shape[-1]
    codec = cc.CoolChic()
    codec.progress = False
    trace, calls, rd_pass = [], [0], cc.rd_pass

    def traced(*a):
        loss, bits, mse = rd_pass(*a)
        calls[0] += 1
        if calls[0] % 100 == 0:
            trace.append((calls[0], round(float(bits) / pixels, 4), round(-10 * math.log10(float(mse)), 2)))
        return loss, bits, mse

    cc.rd_pass = traced
    start = time.perf_counter()
    encoded = codec.compress(x, args.quality, iterations=args.iterations)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        value = psnr(x, codec.decompress(encoded))
    bpp = 8 * sum(map(len, encoded.sections)) / pixels
    j = 10 ** (-value / 10) + codec.lmbda(args.quality - 1) * bpp
    print(json.dumps({"set": args.set, "quality": args.quality, "iterations": args.iterations, "bpp": round(bpp, 4),
                      "psnr": round(value, 3), "J": float(f"{j:.4e}"), "encode_s": round(seconds),
                      "cpu": cpu_name(), "threads": torch.get_num_threads(), "trace": trace}))


if __name__ == "__main__":
    main()
