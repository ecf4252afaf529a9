"""Training: the rate-distortion loop, its losses, checkpoints and data-parallel runs."""

from licodec.train.loop import TrainConfig, fit

__all__ = ["TrainConfig", "fit"]
