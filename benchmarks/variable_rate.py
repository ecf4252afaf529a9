"""One model for every rate [10] against per-rate models, on Kodak.

    python benchmarks/variable_rate.py licodec/zoo/balle2018-hyperprior.safetensors runs/pr-q1.safetensors ... \
        [--root ../shared/data/kodak] [--limit 0] [--threads 1]

The first argument is the variable-rate model (gain vectors, one level per lambda); the others are per-rate models
of the same codec, one lambda each (`licodec train --lmbda L --init VARIABLE ...` starts one from that level of the
variable-rate model). Every point is a real encode and decode. Prints the RD points and the BD-rate of the
variable-rate model against the per-rate models' curve (PSNR and MS-SSIM dB), over the rates both cover; the bar
of [10] is at most +2 %.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from quantizers import ROOT, curve, evaluate

from licodec import zoo
from licodec.data.folder import list_images
from licodec.eval.bdrate import bd_rate
from licodec.io import read_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variable", help="the variable-rate weights file")
    parser.add_argument("per_rate", nargs="+", help="per-rate weights files, one lambda each")
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = [read_image(path)[0] for path in list_images(args.root)[: args.limit or None]]
    variable = zoo.from_bytes(Path(args.variable).read_bytes()).eval()
    variable_points = evaluate(variable, images, False)  # levels in lambda order
    rows = [(f"variable, lambda {lmbda}", p) for lmbda, p in zip(variable.lmbdas, variable_points)]
    per_rate = []
    for name in args.per_rate:
        codec = zoo.from_bytes(Path(name).read_bytes()).eval()
        if codec.name != variable.name or len(codec.lmbdas) != 1:
            raise SystemExit(f"{name}: not a one-lambda {variable.name} model")
        point = evaluate(codec, images, False)[0]
        per_rate.append((codec.lmbdas[0], point))
        rows.append((f"per-rate, lambda {codec.lmbdas[0]}", point))
    per_rate_points = [p for _, p in sorted(per_rate, key=lambda item: item[0])]
    print(f"{variable.name} on {len(images)} images of {args.root}, real files")
    print("| model | bpp | PSNR (dB) | MS-SSIM |")
    print("|---|---:|---:|---:|")
    for label, p in rows:
        print(f"| {label} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} |")
    print("\n| BD-rate of the variable-rate model vs per-rate | PSNR | MS-SSIM dB |")
    print("|---|---:|---:|")
    print(f"| {len(variable_points)} levels vs {len(per_rate_points)} models "
          f"| {bd_rate(curve(per_rate_points, 'psnr'), curve(variable_points, 'psnr')):+.2f} % "
          f"| {bd_rate(curve(per_rate_points, 'ms_ssim'), curve(variable_points, 'ms_ssim')):+.2f} % |")


if __name__ == "__main__":
    main()
