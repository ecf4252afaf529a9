"""The survey's quantizers [11]-[13] against uniform quantization with the same transform, on Kodak.

    python benchmarks/quantizers.py runs/q-uniform.safetensors runs/q-admm.safetensors ... \
        [--root ../shared/data/kodak] [--limit 0] [--threads 1]

Each argument is a weights file of `balle2017-factorized` (made by `licodec train --quantizer NAME --export ...`);
the first is the baseline. Every point is a real encode and decode: rate is the size of the .lic file (header
included), distortion PSNR and MS-SSIM on 8-bit RGB. Prints the mean RD points per quality, BD-rates against the
baseline, and for ADMM pruning the share of latent elements that are zero and what the baseline spends on them.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from licodec import zoo
from licodec.api import pack
from licodec.data.folder import list_images
from licodec.eval.bdrate import bd_rate
from licodec.eval.metrics import ms_ssim, ms_ssim_db, psnr
from licodec.io import read_image

ROOT = Path(__file__).resolve().parents[1]


def evaluate(codec, images, zeros: bool = True) -> list[dict]:
    """Mean bpp / PSNR / MS-SSIM per trained quality over `images`, and the share of zero latent symbols (NaN
    unless `zeros`)."""
    points = []
    for quality in range(1, codec.qualities + 1):
        rows = []
        for x in images:
            encoded = codec.compress(x, quality)
            data = pack(codec, encoded, 3)
            x_hat = codec.decompress(encoded)
            rows.append((len(data) * 8 / (x.shape[-2] * x.shape[-1]), float(psnr(x, x_hat)),
                         float(ms_ssim(x, x_hat)), zero_share(codec, x, quality) if zeros else float("nan")))
        bpp, quality_db, similarity, zeros = (statistics.fmean(column) for column in zip(*rows))
        points.append({"quality": quality, "bpp": bpp, "psnr": quality_db, "ms_ssim": similarity, "zeros": zeros})
    return points


@torch.no_grad()
def zero_share(codec, x, quality: int) -> float:
    """Share of the coded latent's elements that are zero (what ADMM pruning drives up)."""
    level = quality - 1
    y = codec.transform(codec.analysis, codec.layout(codec.pad(x))) * codec.gain.gain(torch.tensor([level]))
    if getattr(codec, "pruning", None) is not None:
        y = codec.pruning.prune(y)
    return float((torch.round(y) == 0).float().mean())


def curve(points: list[dict], metric: str) -> tuple[list[float], list[float]]:
    """(bpp, quality) of RD points for `bd_rate`; MS-SSIM in dB."""
    values = [p[metric] for p in points]
    if metric == "ms_ssim":
        values = [ms_ssim_db(v) for v in values]
    return [p["bpp"] for p in points], values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="weights files; the first is the baseline")
    parser.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "kodak"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = list_images(args.root)[: args.limit or None]
    images = [read_image(path)[0] for path in paths]
    results = {}
    for name in args.weights:
        codec = zoo.from_bytes(Path(name).read_bytes()).eval()
        label = codec.config.get("quantizer", "uniform")
        results[label] = evaluate(codec, images)
    print(f"balle2017-factorized on {len(images)} images of {args.root}, real files")
    print("| quantizer | quality | bpp | PSNR (dB) | MS-SSIM | zero latents |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, points in results.items():
        for p in points:
            print(f"| {label} | {p['quality']} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['ms_ssim']:.4f} "
                  f"| {p['zeros']:.1%} |")
    baseline = next(iter(results.values()))

    print("\n| quantizer | BD-rate vs uniform (PSNR) | (MS-SSIM dB) |")
    print("|---|---:|---:|")
    for label, points in results.items():
        print(f"| {label} | {bd_rate(curve(baseline, 'psnr'), curve(points, 'psnr')):+.1f} % "
              f"| {bd_rate(curve(baseline, 'ms_ssim'), curve(points, 'ms_ssim')):+.1f} % |")


if __name__ == "__main__":
    main()
