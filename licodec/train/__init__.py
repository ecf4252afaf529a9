"""Training: the rate-distortion loop, its losses, checkpoints and data-parallel runs.

`TrainConfig` and `fit` load the loop on first use, so that codecs importing the shared losses
(`licodec.train.losses`) do not pull the loop, torch.distributed and the data pipeline in at import time."""

from __future__ import annotations

__all__ = ["TrainConfig", "fit"]


def __getattr__(name: str):
    if name in __all__:
        from licodec.train import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'licodec.train' has no attribute {name!r}")
