"""One whole model per quality level: several models of one codec in one weights file.

Most papers, and CompressAI's zoo, train one model per rate. licodec's own codecs instead share one set of
transforms between their levels (gain vectors). A `stacked` file holds such separately trained models of one codec
(`licodec import compressai` with several checkpoints writes one). Level k is the k-th model, and it codes the way
that codec codes its single level. Qualities are integers, because a level is a model and there is nothing between
two of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from torch import Tensor, nn

from licodec.codecs.base import Codec, Encoded, RDOutput
from licodec.errors import CodecError
from licodec.registry import codec_class, register
from licodec.taxonomy import Taxonomy


@register("stacked")
class Stacked(Codec):
    """Models of one codec, one per quality level (see the module docstring)."""

    taxonomy = Taxonomy(
        reference="one model per rate (as the papers and CompressAI's zoo train them), in one file",
        network="that of the stacked codec",
        coding_unit="full image",
        spatial_tools="those of the stacked codec",
        rate_control="one separately trained model per rate",
        quality_range="that of its models",
        refs=(),
    )
    quality_unit = "models"

    def __init__(self, codec: str = "balle2018-hyperprior", models: list[dict] | tuple = (),
                 lmbdas: tuple[float, ...] = ()) -> None:
        from licodec.zoo import build

        inner = codec_class(codec)
        if inner is Stacked or inner.progressive:
            raise CodecError(f"{codec} models cannot be stacked (stacked or progressive codecs)")
        configs = [dict(config) for config in models]
        lmbdas = tuple(lmbdas) or tuple(config.get("lmbdas", [0.0])[0] for config in configs)
        super().__init__(lmbdas, codec=codec, models=configs)
        self.models = nn.ModuleList(build(inner, config) for config in configs)
        if any(model.qualities != 1 for model in self.models):
            raise CodecError("each stacked model must have one quality level")
        self.multiple = inner.multiple
        # The payload floor is paid per quality unit (licodec.api), and a level here is a model, not a unit: the
        # stacked codec's floor is its codec's, shared out over the levels, so that no level's file is refused.
        self.fewest_bits_per_pixel = inner.fewest_bits_per_pixel / max(1, len(configs))

    @classmethod
    def of(cls, models: list[Codec]) -> Stacked:
        """A stacked codec with these models (one level each, of one codec), ordered by their lambdas."""
        models = sorted(models, key=lambda model: model.lmbdas[0])
        if not models or len({model.name for model in models}) != 1:
            raise CodecError("stack one or more models of one codec")
        stacked = cls(models[0].name, [model.config for model in models])
        for mine, theirs in zip(stacked.models, models):
            mine.load_state_dict(theirs.state_dict())
        stacked.update()
        return stacked

    @contextmanager
    def precision(self, name: str) -> Iterator[None]:  # noqa: D102 (the base's, passed on to every model)
        with ExitStack() as stack:
            stack.enter_context(super().precision(name))
            for model in self.models:
                stack.enter_context(model.precision(name))
            yield

    def forward(self, x: Tensor, quality: Tensor) -> RDOutput:
        """Not trained as a whole: each model is trained (or imported) on its own."""
        raise CodecError("a stacked codec's models are trained one by one, not together")

    def update(self) -> None:
        """Freeze every model's tables."""
        for model in self.models:
            model.update()

    def compress(self, x: Tensor, quality: int) -> Encoded:
        """Code with the model of level `quality` (1-based)."""
        level = int(self.check_quality(quality))
        encoded = self.models[level].compress(x, 1)
        return Encoded(encoded.sections, encoded.height, encoded.width, quality)

    def decompress(self, encoded: Encoded) -> Tensor:
        """Decode with the model of the file's level."""
        level = int(self.check_quality(encoded.quality))
        return self.models[level].decompress(Encoded(encoded.sections, encoded.height, encoded.width, 1))
