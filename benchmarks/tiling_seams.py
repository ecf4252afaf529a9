"""Seams of tiled coding: PSNR along tile borders against the interior, beside untiled coding of the same image.

    PYTHONPATH=. python benchmarks/tiling_seams.py --images ../shared/data/kodak --limit 4 --tile 256 \
        --overlaps 0,16,32,64 --crop crop.png

For each overlap, every image is coded whole and in tiles of `--tile`; the "border" pixels lie within 4 pixels
of a seam line (the middle of each overlap), the rest are "interior". The seam penalty is how much more PSNR the
border loses to tiling than the interior does (dB, averaged over images): zero means no visible seam. The rate
cost is the tiled files' extra bytes at `--quality`, and with `--qualities` the BD-rate (PSNR) of tiled against
whole coding. `--crop` writes 96x96 crops of the first image centred on its first tile
corner, twice their size, a row per overlap: original | whole | tiled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from licodec import api, tiling
from licodec.eval.bdrate import bd_rate
from licodec.io import read_image, to_pil


def seam_mask(grid: tiling.Grid, reach: int = 4) -> torch.Tensor:
    """Pixels within `reach` of the middle of an overlap (the seam line) of `grid`."""
    mask = torch.zeros(grid.height, grid.width, dtype=torch.bool)
    for row in range(1, grid.rows):
        line = row * (grid.tile_height - grid.overlap) + grid.overlap // 2
        mask[max(0, line - reach) : line + reach] = True
    for column in range(1, grid.columns):
        line = column * (grid.tile_width - grid.overlap) + grid.overlap // 2
        mask[:, max(0, line - reach) : line + reach] = True
    return mask


def psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    a, b = torch.round(a * 255), torch.round(b * 255)
    mse = ((a - b) ** 2).mean(1)[0][mask].mean().item()
    return 10 * torch.log10(torch.tensor(255.0**2 / mse)).item()


def code(coder, codec, x: torch.Tensor, quality: float) -> tuple[int, torch.Tensor]:
    """(file bytes, decoded image) of `x` coded by `coder` (the codec itself or a tiled view of it)."""
    with torch.inference_mode():
        encoded = coder.compress(x, codec.check_quality(quality) + 1)
        return len(api.pack(codec, encoded, 3)), coder.decompress(encoded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--codec", default=api.DEFAULT_CODEC)
    parser.add_argument("--quality", type=float, default=4)
    parser.add_argument("--qualities", default="", help="Also the BD-rate of tiled against whole coding over "
                        "these qualities (comma-separated; PSNR, cubic, averaged over images).")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlaps", default="0,16,32,64")
    parser.add_argument("--crop", default=None, help="Write a comparison crop (PNG) here.")
    args = parser.parse_args()
    codec = api.load(args.codec)
    paths = sorted(Path(args.images).glob("*.png"))[: args.limit]
    images = [read_image(p)[0] for p in paths]
    qualities = [float(q) for q in args.qualities.split(",")] if args.qualities else []
    untiled = [code(codec, codec, x, args.quality) for x in images]  # whole, whatever their size
    curves = [[code(codec, codec, x, q) for q in qualities] for x in images]
    print(f"{args.codec} quality {args.quality:g}, tiles of {args.tile}, {len(images)} images ({paths[0].name}...)"
          + (f"; BD-rate over qualities {args.qualities}" if qualities else ""))
    print("| overlap | extra bytes | border PSNR tiled / whole | interior PSNR tiled / whole | seam penalty |"
          + (" BD-rate |" if qualities else ""))
    print("|---:|---:|---:|---:|---:|" + ("---:|" if qualities else ""))
    crops: list[torch.Tensor] = []  # a row per overlap, centred on the first tile corner of the first image
    for overlap in [int(v) for v in args.overlaps.split(",")]:
        extra = penalty = bd = 0.0
        sums = [0.0] * 4
        for x, (size, whole), curve in zip(images, untiled, curves):
            coder = tiling.for_image(codec, *x.shape[-2:], tile=args.tile, overlap=overlap)
            tiled_size, x_hat = code(coder, codec, x, args.quality)
            mask = seam_mask(coder.grid)
            values = [psnr(x, x_hat, mask), psnr(x, whole, mask), psnr(x, x_hat, ~mask), psnr(x, whole, ~mask)]
            sums = [s + v / len(images) for s, v in zip(sums, values)]
            penalty += ((values[1] - values[0]) - (values[3] - values[2])) / len(images)
            extra += (tiled_size / size - 1) / len(images)
            if qualities:
                pixels, everywhere = x.shape[-2] * x.shape[-1] / 8, torch.ones(x.shape[-2:], dtype=torch.bool)
                tiled = [code(coder, codec, x, q) for q in qualities]
                rd = [([n / pixels for n, _ in c], [psnr(x, y, everywhere) for _, y in c]) for c in (curve, tiled)]
                bd += bd_rate(*rd) / len(images)
            if x is images[0]:
                top = coder.grid.tile_height - overlap // 2 - 48
                left = coder.grid.tile_width - overlap // 2 - 48
                window = (..., slice(top, top + 96), slice(left, left + 96))
                crops.append(torch.cat([x[window], whole[window], x_hat[window]], -1))
        print(f"| {overlap} | {100 * extra:+.1f} % | {sums[0]:.2f} / {sums[1]:.2f} dB | {sums[2]:.2f} / {sums[3]:.2f}"
              f" dB | {penalty:+.2f} dB |" + (f" {bd:+.2f} % |" if qualities else ""))
    if args.crop:
        to_pil(torch.cat(crops, -2)).resize((3 * 192, 192 * len(crops)), 0).save(args.crop)


if __name__ == "__main__":
    main()
