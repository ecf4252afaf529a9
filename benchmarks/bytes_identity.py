"""Byte identity of every shipped codec: encode reference crops, write the .lic files and the decoded PNGs.

    python benchmarks/bytes_identity.py OUT_FOLDER [--compare OTHER_FOLDER]

Each codec with shipped weights codes two crops of Kodak images (one not a multiple of 64) at its lowest quality
and at a middle one (fractional where the codec allows). With `--compare`, every file written is compared with the
file of the same name in OTHER_FOLDER and the differing ones are listed. Float transforms may round differently on
another CPU, so compare only folders written on the same machine; this check is not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from licodec import zoo
from licodec.api import compress_tensor, decompress_tensor
from licodec.io import read_image, to_pil

KODAK = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak"
CROPS = (("kodim23", 0, 0, 96, 128), ("kodim05", 200, 300, 64, 80))  # name, top, left, height, width


def qualities(codec) -> list[float]:
    """The lowest quality and a middle one (halfway between two levels where the codec allows fractions)."""
    top = codec.qualities
    if top == 1:
        return [1]
    if codec.quality_unit is not None:  # integer qualities only (iterations)
        return [1, (top + 1) // 2]
    return [1, 1.5 + (top - 1) // 2]


def crops(kodak: Path) -> list[tuple[str, torch.Tensor]]:
    out = []
    for name, top, left, height, width in CROPS:
        x, _ = read_image(kodak / f"{name}.png")
        out.append((f"{name}-{top}-{left}-{height}x{width}", x[..., top : top + height, left : left + width]))
    return out


def write(folder: Path, kodak: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    images = crops(kodak)
    for name in zoo.installed():
        codec = zoo.load(name)
        for quality in qualities(codec):
            for label, x in images:
                stem = f"{name}-q{quality:g}-{label}"
                data = compress_tensor(x.contiguous(), 3, codec, quality, precision="fp32")
                x_hat, _ = decompress_tensor(data, precision="fp32")
                (folder / f"{stem}.lic").write_bytes(data)
                to_pil(x_hat, 3).save(folder / f"{stem}.png")
                written += [f"{stem}.lic", f"{stem}.png"]
                print(f"{stem}: {len(data)} bytes", flush=True)
    return written


def compare(folder: Path, other: Path, names: list[str]) -> int:
    differ = [n for n in names if not (other / n).exists() or (other / n).read_bytes() != (folder / n).read_bytes()]
    for n in differ:
        print(f"differs: {n}")
    print(f"{len(names)} files compared: {len(differ)} differ")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--compare", type=Path, default=None)
    parser.add_argument("--kodak", type=Path, default=KODAK)
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = write(args.folder, args.kodak)
    return compare(args.folder, args.compare, names) if args.compare else 0


if __name__ == "__main__":
    sys.exit(main())
