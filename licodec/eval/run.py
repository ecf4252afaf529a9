"""Evaluate codecs on a folder of images: real bytes, PSNR and MS-SSIM on 8-bit RGB, timings."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from licodec.eval.classical import CLASSICAL
from licodec.eval.metrics import ms_ssim, psnr
from licodec.io import read_image, to_uint8


@dataclass
class Point:
    """One image coded by one codec at one quality."""

    codec: str
    quality: int
    image: str
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    encode_s: float
    decode_s: float


def _learned(name: str):
    from licodec.api import compress_tensor, decompress_tensor, load

    codec = load(name)

    def code(x: torch.Tensor, quality: int) -> tuple[bytes, torch.Tensor, float, float]:
        start = time.perf_counter()
        data = compress_tensor(x, 3, codec, quality)
        middle = time.perf_counter()
        x_hat, _ = decompress_tensor(data)
        return data, x_hat, middle - start, time.perf_counter() - middle

    return range(1, codec.qualities + 1), code


def _classical(name: str):
    codec = CLASSICAL[name]

    def code(x: torch.Tensor, quality: int) -> tuple[bytes, torch.Tensor, float, float]:
        image = to_uint8(x)
        start = time.perf_counter()
        data = codec.encode(image, quality)
        middle = time.perf_counter()
        decoded = codec.decode(data)
        decode_s = time.perf_counter() - middle
        x_hat = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None].float() / 255
        return data, x_hat, middle - start, decode_s

    return codec.qualities, code


def evaluate(codecs: list[str], images: list[Path], progress: bool = True) -> list[Point]:
    """Code every image with every codec at every quality, for real."""
    points = []
    jobs = [(name, *(_classical(name) if name in CLASSICAL else _learned(name))) for name in codecs]
    total = sum(len(qualities) for _, qualities, _ in jobs) * len(images)
    with tqdm(total=total, desc="evaluating", disable=not progress) as bar:
        for path in images:
            x, _ = read_image(path)
            height, width = x.shape[-2:]
            for name, qualities, code in jobs:
                for quality in qualities:
                    data, x_hat, encode_s, decode_s = code(x, quality)
                    points.append(Point(name, quality, path.name, len(data), 8 * len(data) / (height * width),
                                        psnr(x, x_hat), ms_ssim(x, x_hat), encode_s, decode_s))
                    bar.update(1)
    return points


def mean_curves(points: list[Point]) -> dict[str, list[dict]]:
    """Per codec and quality: the mean over images of bpp, PSNR, MS-SSIM and times."""
    curves: dict[str, list[dict]] = {}
    keys = sorted({(p.codec, p.quality) for p in points}, key=lambda k: (k[0], k[1]))
    for codec, quality in keys:
        group = [p for p in points if p.codec == codec and p.quality == quality]
        curves.setdefault(codec, []).append({
            "quality": quality,
            "images": len(group),
            **{field: float(np.mean([getattr(p, field) for p in group]))
               for field in ("bpp", "psnr", "ms_ssim", "encode_s", "decode_s")},
        })
    return curves


def as_rows(points: list[Point]) -> list[dict]:
    """The points as plain dicts (for JSON and CSV)."""
    return [asdict(p) for p in points]
