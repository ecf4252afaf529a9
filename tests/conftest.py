"""Shared fixtures: small randomly initialised codecs with frozen tables, and paths to the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from licodec.registry import codec_class

SHARED = Path(__file__).resolve().parents[2] / "shared"
KODAK = SHARED / "data" / "kodak"
TRAIN = SHARED / "data" / "train"


def small_codec(name: str, seed: int = 0):
    """A tiny codec of `name` with random weights, tables frozen and a fake weights hash."""
    torch.manual_seed(seed)
    codec = codec_class(name)(N=16, M=24, lmbdas=(0.01, 0.05))
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
