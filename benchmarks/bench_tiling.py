"""Time and peak memory of `licodec compress` / `decompress` on large photos (tiled coding), one process each.

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/bench_tiling.py --sizes 4000x3000,6000x4000 --jobs 1,2

The photos are made from the training images (rows of urban100 images scaled to 680 pixels high) in a temporary
folder and never kept. Each run is a fresh interpreter whose peak resident memory (ru_maxrss, including Python
and torch) and wall time are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

TRAIN = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "urban100_x2"
RUN = """
import resource, sys
from licodec.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit:
    if exit.code:
        raise
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def photo(width: int, height: int, path: Path, row: int = 680) -> None:
    """A width x height test photo made of training images."""
    paths = sorted(TRAIN.glob("*.png"))
    canvas = Image.new("RGB", (width, height))
    x = y = index = 0
    while y < height:
        image = Image.open(paths[index % len(paths)]).convert("RGB")
        image = image.resize((round(image.width * row / image.height), row), Image.BICUBIC)
        canvas.paste(image, (x, y))
        index, x = index + 1, x + image.width
        if x >= width:
            x, y = 0, y + row
    canvas.save(path)


def run(*args: str) -> tuple[float, float]:
    """(seconds, peak GiB) of one CLI command in a fresh interpreter."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", RUN, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(result.stderr)
    return seconds, int(result.stderr.split()[-1]) / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000x3000,6000x4000")
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--codec", default="balle2018-hyperprior")
    args = parser.parse_args()
    print("| image | jobs | compress | peak | decompress | peak | bpp |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes.split(","):
            width, height = map(int, size.split("x"))
            source = Path(folder) / f"{size}.png"
            photo(width, height, source)
            for jobs in args.jobs.split(","):
                coded, decoded = source.with_suffix(".lic"), source.with_suffix(".out.png")
                c_time, c_peak = run("compress", str(source), "-o", str(coded), "-f", "-j", jobs,
                                     "--codec", args.codec)
                d_time, d_peak = run("decompress", str(coded), "-o", str(decoded), "-f", "-j", jobs)
                bpp = 8 * coded.stat().st_size / (width * height)
                print(f"| {width}x{height} ({width * height / 1e6:.0f} MP) | {jobs} | {c_time:.1f} s | "
                      f"{c_peak:.2f} GiB | {d_time:.1f} s | {d_peak:.2f} GiB | {bpp:.3f} |", flush=True)


if __name__ == "__main__":
    main()
