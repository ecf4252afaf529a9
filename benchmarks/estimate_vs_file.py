"""How close the real files are to the model's own estimate of their size, on every Kodak image and quality.

The estimate is the sum of -log2 of the likelihoods of the rounded latents (the training objective's rate term,
evaluated in eval mode); the real size is the length of the coded sections (the header is reported apart).

    python benchmarks/estimate_vs_file.py [--codecs balle2018-hyperprior,balle2017-factorized] [--kodak DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from licodec.api import load
from licodec.data.folder import list_images
from licodec.io import read_image

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codecs", default="balle2018-hyperprior,balle2017-factorized")
    parser.add_argument("--kodak", default=str(KODAK))
    args = parser.parse_args()
    images = list_images(args.kodak)
    print(f"{'codec':24} {'quality':>7} {'estimate bpp':>12} {'file bpp':>9} {'mean gap':>9} {'worst gap':>9}")
    for name in args.codecs.split(","):
        codec = load(name)
        for quality in range(1, codec.qualities + 1):
            gaps, estimates, actuals = [], [], []
            for path in images:
                x, _ = read_image(path)
                pixels = x.shape[-2] * x.shape[-1]
                encoded = codec.compress(x, quality)
                with torch.no_grad():
                    estimate = codec(codec.layout(codec.pad(x)), quality).bits().item()
                actual = 8 * sum(len(s) for s in encoded.sections)
                gaps.append((actual - estimate) / estimate)
                estimates.append(estimate / pixels)
                actuals.append(actual / pixels)
            print(f"{name:24} {quality:7d} {sum(estimates) / len(images):12.4f} {sum(actuals) / len(images):9.4f} "
                  f"{100 * sum(gaps) / len(gaps):+8.2f}% {100 * max(gaps, key=abs):+8.2f}%")


if __name__ == "__main__":
    main()
