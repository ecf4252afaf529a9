"""Codec names -> codec classes. A codec module registers itself with `@register("name")`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from licodec.errors import CodecError

if TYPE_CHECKING:
    from licodec.codecs.base import Codec

_CODECS: dict[str, type[Codec]] = {}


def register(name: str) -> Callable[[type[Codec]], type[Codec]]:
    """Class decorator: make a codec class available under `name`."""

    def decorate(cls: type[Codec]) -> type[Codec]:
        if name in _CODECS:
            raise ValueError(f"codec {name!r} is registered twice")
        cls.name = name
        _CODECS[name] = cls
        return cls

    return decorate


def codec_class(name: str) -> type[Codec]:
    """The class registered as `name`; `CodecError` names the known ones otherwise."""
    import licodec.codecs  # noqa: F401  (registers every codec)

    try:
        return _CODECS[name]
    except KeyError:
        raise CodecError(f"unknown codec {name!r}; known: {', '.join(sorted(_CODECS))}") from None


def names() -> list[str]:
    """All registered codec names, sorted."""
    import licodec.codecs  # noqa: F401

    return sorted(_CODECS)
