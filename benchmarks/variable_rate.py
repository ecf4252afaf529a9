"""One model for every rate [10] against per-rate models, on Kodak.

    python benchmarks/variable_rate.py --variable licodec/zoo/balle2018-hyperprior.safetensors[,OTHER...] \
        runs/pr-q1.safetensors ... [--root ../shared/data/kodak] [--limit 0] [--threads 1]

`--variable` names one or more variable-rate models (gain vectors, one level per lambda), each compared with the
same per-rate curve; the arguments are the per-rate models of the same codec, one lambda each
(`licodec train --lmbda L --init VARIABLE ...` starts one from that level of a variable-rate model). Every point
is a real encode and decode. Prints the RD points and each variable-rate model's BD-rate against the per-rate
models' curve (PSNR and MS-SSIM dB), over the rates both cover; the bar of [10] is at most +2 %.
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
    parser.add_argument("--variable", required=True, help="variable-rate weights files, comma-separated")
    parser.add_argument("per_rate", nargs="+", help="per-rate weights files, one lambda each")
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = [read_image(path)[0] for path in list_images(args.root)[: args.limit or None]]
    variables = {name: zoo.from_bytes(Path(name).read_bytes()).eval() for name in args.variable.split(",")}
    codec_name = next(iter(variables.values())).name
    rows, curves = [], {}
    for name, variable in variables.items():
        curves[name] = evaluate(variable, images, False)  # levels in lambda order
        rows += [(f"variable {Path(name).name}, lambda {lmbda}", p) for lmbda, p in zip(variable.lmbdas, curves[name])]
    per_rate = []
    for name in args.per_rate:
        codec = zoo.from_bytes(Path(name).read_bytes()).eval()
        if codec.name != codec_name or len(codec.lmbdas) != 1:
            raise SystemExit(f"{name}: not a one-lambda {codec_name} model")
        point = evaluate(codec, images, False)[0]
        per_rate.append((codec.lmbdas[0], point))
        rows.append((f"per-rate {Path(name).name}, lambda {codec.lmbdas[0]}", point))
    per_rate_points = [p for _, p in sorted(per_rate, key=lambda item: item[0])]
    print(f"{codec_name} on {len(images)} images of {args.root}, real files")
    print("| model | bpp | PSNR (dB) | MS-SSIM |")
    print("|---|---:|---:|---:|")
    for label, p in rows:
        print(f"| {label} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} |")
    print("\n| variable-rate model | BD-rate vs per-rate (PSNR) | (MS-SSIM dB) |")
    print("|---|---:|---:|")
    for name, points in curves.items():
        print(f"| {Path(name).name} ({len(points)} levels vs {len(per_rate_points)} models) "
              f"| {bd_rate(curve(per_rate_points, 'psnr'), curve(points, 'psnr')):+.2f} % "
              f"| {bd_rate(curve(per_rate_points, 'ms_ssim'), curve(points, 'ms_ssim')):+.2f} % |")


if __name__ == "__main__":
    main()
