"""Layers shared by the codecs."""

from licodec.nn.gdn import GDN
from licodec.nn.ops import LowerBound, NonNegativeParameter, lower_bound

__all__ = ["GDN", "LowerBound", "NonNegativeParameter", "lower_bound"]
