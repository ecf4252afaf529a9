"""rippel2017's file sizes with the bitplane coder against the 3D context network, same transforms, real files:

    python benchmarks/bitplane_coder_sizes.py --old OLD.safetensors --new NEW.safetensors [--images 4] [--kodak DIR]

Prints bits per pixel (whole .lic files, header included) per image and quality, and the mean change. Both weights
files must hold the same transforms (the new one made from the old by `fit_rippel2017_coder.py`), so the decoded
images are the same and only the coder differs (checked).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import licodec
from licodec.data.folder import list_images

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--kodak", default=str(KODAK))
    args = parser.parse_args()
    images = list_images(args.kodak)[: args.images]
    codec = licodec.load(args.new)
    totals: dict[int, list[float]] = {q: [0.0, 0.0] for q in range(1, codec.qualities + 1)}
    print(f"{'image':12} {'quality':>7} {'old bpp':>8} {'new bpp':>8} {'change':>7}")
    for path in images:
        for quality in totals:
            sizes, pixels = [], []
            for weights in (args.old, args.new):
                data = licodec.compress(str(path), weights=weights, quality=quality)
                decoded = np.asarray(licodec.decompress(data, weights=weights).convert("RGB"))
                sizes.append(8 * len(data) / (decoded.shape[0] * decoded.shape[1]))
                pixels.append(decoded)
            assert np.array_equal(*pixels), f"{path.name} q{quality}: the two files decode differently"
            totals[quality][0] += sizes[0] / len(images)
            totals[quality][1] += sizes[1] / len(images)
            change = 100 * (sizes[1] / sizes[0] - 1)
            print(f"{path.name:12} {quality:7d} {sizes[0]:8.4f} {sizes[1]:8.4f} {change:+6.1f}%", flush=True)
    for quality, (old, new) in totals.items():
        print(f"{'mean':12} {quality:7d} {old:8.4f} {new:8.4f} {100 * (new / old - 1):+6.1f}%")


if __name__ == "__main__":
    main()
