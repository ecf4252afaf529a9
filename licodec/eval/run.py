"""Evaluate codecs on a set of images: real bytes, PSNR (RGB and Y) and MS-SSIM on 8-bit RGB, timings.

Images are processed in parallel worker processes (one PyTorch thread each); every worker loads each learned
codec once.
"""

from __future__ import annotations

import math
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from licodec.eval.classical import CLASSICAL
from licodec.eval.metrics import ms_ssim, psnr, psnr_y
from licodec.io import read_image, to_uint8


@dataclass
class Point:
    """One image coded by one codec at one setting (a learned quality level or a classical quality)."""

    codec: str
    quality: float
    image: str
    bytes: int
    bpp: float
    psnr: float
    psnr_y: float
    ms_ssim: float
    encode_s: float
    decode_s: float


class Coder:
    """Uniform front for learned and classical codecs: settings, and code(x, setting) -> (bytes, x_hat, times)."""

    def __init__(self, name: str) -> None:
        self.name = name
        if name in CLASSICAL:
            self.classical = CLASSICAL[name]
            self.settings = tuple(self.classical.settings)
        else:
            from licodec.api import load

            self.classical = None
            self.learned = load(name)
            self.settings = tuple(range(1, self.learned.qualities + 1))

    def all_settings(self) -> tuple[float, ...]:
        """Every setting a search for a target rate may try, by increasing rate: a classical codec's whole range;
        a learned codec's qualities in 1/16 steps (its trained levels only where qualities count something)."""
        if self.classical is not None:
            return self.classical.all_settings
        if self.learned.quality_unit is not None:
            return self.settings
        return tuple(1 + k / 16 for k in range(16 * (self.learned.qualities - 1) + 1))

    def code(self, x: torch.Tensor, setting: float) -> tuple[bytes, torch.Tensor, float, float]:
        """Encode and decode for real; returns the bytes, the reconstruction and both times."""
        if self.classical is None:
            from licodec.api import compress_tensor, decompress_tensor

            start = time.perf_counter()
            data = compress_tensor(x, 3, self.learned, setting)
            middle = time.perf_counter()
            x_hat, _ = decompress_tensor(data)
            return data, x_hat, middle - start, time.perf_counter() - middle
        image = to_uint8(x)
        start = time.perf_counter()
        data = self.classical.encode(image, setting)
        middle = time.perf_counter()
        decoded = self.classical.decode(data)
        decode_s = time.perf_counter() - middle
        x_hat = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None].float() / 255
        return data, x_hat, middle - start, decode_s

    def code_all(self, x: torch.Tensor) -> Iterator[tuple[float, bytes, torch.Tensor, float, float]]:
        """(setting, bytes, reconstruction, encode s, decode s) at every setting.

        A progressive codec is coded once at its top quality: the file of k iterations is that file's first k
        sections under a header saying k (the bytes `compress` writes for k iterations), and its image is the
        decoder's after k iterations, its decode time the time to get there. Its encode time is measured only
        for the whole file (NaN for the prefixes)."""
        if self.classical is not None or not self.learned.progressive:
            for setting in self.settings:
                yield (setting, *self.code(x, setting))
            return
        from licodec.api import _pack, compress_tensor
        from licodec.bitstream import unpack
        from licodec.codecs.base import Encoded

        codec = self.learned
        start = time.perf_counter()
        data = compress_tensor(x, 3, codec, self.settings[-1])
        encode_s = time.perf_counter() - start
        header, sections = unpack(data)
        whole = Encoded(sections, header.height, header.width, header.quality)
        start = time.perf_counter()
        with torch.no_grad():
            for k, x_hat in enumerate(codec.decompress_each(whole), start=1):
                decode_s = time.perf_counter() - start
                prefix = Encoded(sections[: codec.sections_for(k)], header.height, header.width, k)
                yield (float(k), _pack(codec, prefix, 3), x_hat, encode_s if k == len(self.settings) else math.nan,
                       decode_s)


_CODERS: dict[str, Coder] = {}


def _coder(name: str) -> Coder:
    if name not in _CODERS:
        _CODERS[name] = Coder(name)
    return _CODERS[name]


def evaluate_image(path: Path, codecs: list[str]) -> list[Point]:
    """Every codec at every setting on one image."""
    x, _ = read_image(path)
    height, width = x.shape[-2:]
    points = []
    for name in codecs:
        for setting, data, x_hat, encode_s, decode_s in _coder(name).code_all(x):
            points.append(Point(name, setting, path.name, len(data), 8 * len(data) / (height * width),
                                psnr(x, x_hat), psnr_y(x, x_hat), ms_ssim(x, x_hat), encode_s, decode_s))
    return points


def make_thumbnails(images: list[Path], size: int, folder: Path) -> list[Path]:
    """size x size thumbnails of `images` (each its centre square, Lanczos-downsampled), written to `folder` as
    PNG: Toderici et al. 2016 [1] evaluate on 32x32 thumbnails, where a codec's fixed overhead counts."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    thumbnails = []
    for path in images:
        with Image.open(path) as image:
            image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            square = image.crop((left, top, left + side, top + side))
            target = folder / f"{path.stem}.png"
            square.resize((size, size), Image.Resampling.LANCZOS).save(target)
        thumbnails.append(target)
    return thumbnails


def _worker_init() -> None:
    torch.set_num_threads(1)


def evaluate(codecs: list[str], images: list[Path], jobs: int = 1, progress: bool = True) -> list[Point]:
    """Code every image with every codec at every setting, for real, `jobs` images at a time."""
    for name in codecs:
        _coder(name)  # fail early, in this process, on an unknown codec or missing weights
    points: list[Point] = []
    with tqdm(total=len(images), desc="evaluating", unit="image", disable=not progress) as bar:
        if jobs <= 1:
            for path in images:
                points += evaluate_image(path, codecs)
                bar.update(1)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init) as pool:
                for result in pool.map(evaluate_image, images, [codecs] * len(images)):
                    points += result
                    bar.update(1)
    return points


def mean_curves(points: list[Point]) -> dict[str, list[dict]]:
    """Per codec and setting: the mean over images of bpp, PSNR, PSNR-Y, MS-SSIM and times."""
    curves: dict[str, list[dict]] = {}
    codecs = list(dict.fromkeys(p.codec for p in points))
    for codec in codecs:
        for setting in sorted({p.quality for p in points if p.codec == codec}):
            group = [p for p in points if p.codec == codec and p.quality == setting]
            curves.setdefault(codec, []).append({
                "quality": setting,
                "images": len(group),
                **{field: float(np.mean([getattr(p, field) for p in group]))
                   for field in ("bpp", "psnr", "psnr_y", "ms_ssim", "encode_s", "decode_s")},
            })
    return curves


def as_rows(points: list[Point]) -> list[dict]:
    """The points as plain dicts (for JSON and CSV)."""
    return [asdict(p) for p in points]
