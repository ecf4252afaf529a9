"""Shared fixtures: small randomly initialised codecs with frozen tables, and paths to the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from licodec.registry import codec_class

SHARED = Path(__file__).resolve().parents[2] / "shared"
KODAK = SHARED / "data" / "kodak"
TRAIN = SHARED / "data" / "train"


def small_codec(name: str, seed: int = 0, **options):
    """A tiny codec of `name` (with constructor `options`) with random weights, tables frozen and a fake weights
    hash."""
    torch.manual_seed(seed)
    codec = codec_class(name)(N=16, M=24, lmbdas=(0.01, 0.05), **options)
    # Spread the quantiles a little so tables are not trivially narrow.
    codec.update()
    codec.eval()
    codec.weights_hash = "00" * 8
    return codec


@pytest.fixture(params=["balle2017-factorized", "balle2018-hyperprior", "balle2018-mean-scale"])
def any_small_codec(request):
    return small_codec(request.param)


def kodak_image(index: int = 1):
    path = KODAK / f"kodim{index:02d}.png"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def damaged_sections(data: bytes, count: int, seed: int):
    """Copies of a .lic file with 1-4 bytes flipped inside its coded sections, checksums recomputed, so that the
    damage reaches the entropy decoder itself."""
    import random

    from licodec.bitstream import pack, unpack

    header, sections = unpack(data)
    rng = random.Random(seed)
    for _ in range(count):
        damaged = [bytearray(s) for s in sections]
        for _ in range(rng.randint(1, 4)):
            k = rng.choice([k for k, s in enumerate(damaged) if s])
            damaged[k][rng.randrange(len(damaged[k]))] ^= rng.randrange(1, 256)
        yield pack(header, [bytes(s) for s in damaged])


def assert_damage_is_handled(data: bytes, count: int, seed: int) -> None:
    """Every damaged copy (see `damaged_sections`) decodes to a finite image or raises a LicodecError."""
    import numpy as np

    from licodec.api import decompress_tensor
    from licodec.errors import LicodecError

    for damaged in damaged_sections(data, count, seed):
        try:
            x_hat, _ = decompress_tensor(damaged)
        except LicodecError:
            continue
        assert np.isfinite(x_hat.numpy()).all()


def sections_with_threads(compress, threads: int):
    """The sections `compress()` writes with torch limited to `threads` threads."""
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        return compress().sections
    finally:
        torch.set_num_threads(saved)
