"""The survey's taxonomy of learned image codecs (JPEG report N83058): five dimensions per scheme."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Taxonomy:
    """Where a scheme sits on the survey's five dimensions, plus its reference."""

    reference: str  # the survey's numbering and the paper, e.g. "[5] Ballé et al. 2018"
    network: str  # neural network type: CNN, RNN, GAN ...
    coding_unit: str  # coding unit size: full image, 32x32 patches ...
    spatial_tools: str  # spatial correlation tools: hyperprior, context model, GDN ...
    rate_control: str  # bitrate control strategy: one model per rate, iterations, gain vectors ...
    quality_range: str  # the range of rates/qualities the scheme targets
    refs: tuple[int, ...] = ()  # the survey's reference numbers this codec implements

    def row(self) -> dict[str, str]:
        """The entry as an ordered mapping of column title -> value."""
        return {
            "reference": self.reference,
            "NN type": self.network,
            "coding unit": self.coding_unit,
            "spatial correlation": self.spatial_tools,
            "bitrate control": self.rate_control,
            "quality range": self.quality_range,
        }
