"""What the codecs and the shipped weights are, known without importing PyTorch.

`licodec zoo`, `licodec taxonomy` and `licodec --help` answer in a fraction of a second because they read:
- each codec's name and taxonomy from the source of `licodec/codecs` (the `@register("name")` decorator and the
  class's `taxonomy = Taxonomy(...)` literal, inherited from a base class where the class has none);
- each weights file's metadata (codec, config, provenance) from its safetensors header, its hash from its bytes,
  and its number of qualities from `catalog.json`, a table of weights hash -> qualities written by
  `python -m licodec.catalog` (a quality count depends on the codec's code; the table is checked by the tests).

Whatever these readings cannot settle (a taxonomy that is not a literal, weights that are not in the table) is
asked of the codec classes themselves, which imports PyTorch: slower, never wrong.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from licodec.store import header_metadata
from licodec.taxonomy import Taxonomy
from licodec.train.hardware import describe

PACKAGE = Path(__file__).parent
CODECS = PACKAGE / "codecs"
ZOO = PACKAGE / "zoo"
QUALITIES = PACKAGE / "catalog.json"
HASH_BYTES = 8  # as licodec.bitstream.HASH_BYTES


def _register_name(node: ast.ClassDef) -> str | None:
    for decorator in node.decorator_list:
        if (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "register"
                and len(decorator.args) == 1 and isinstance(decorator.args[0], ast.Constant)):
            return decorator.args[0].value
    return None


def _taxonomy_literal(node: ast.ClassDef) -> Taxonomy | None:
    """The class body's `taxonomy = Taxonomy(...)`, when every argument is a literal."""
    for statement in node.body:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and getattr(statement.targets[0], "id", None) == "taxonomy"
                and isinstance(statement.value, ast.Call) and getattr(statement.value.func, "id", None) == "Taxonomy"):
            try:
                return Taxonomy(*(ast.literal_eval(a) for a in statement.value.args),
                                **{k.arg: ast.literal_eval(k.value) for k in statement.value.keywords})
            except (ValueError, TypeError, SyntaxError):
                return None
    return None


@lru_cache(maxsize=1)
def _scan() -> tuple[dict[str, Taxonomy | None], bool]:
    """Codec name -> taxonomy (None where the source does not settle it), and whether the scan was complete."""
    classes: dict[str, ast.ClassDef] = {}
    registered: dict[str, ast.ClassDef] = {}
    complete = True
    for path in sorted(CODECS.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            complete = False
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                classes[node.name] = node
                name = _register_name(node)
                if name is not None:
                    registered[name] = node
    found: dict[str, Taxonomy | None] = {}
    for name, node in registered.items():
        taxonomy, seen = None, set()
        while node is not None and node.name not in seen and taxonomy is None:
            seen.add(node.name)
            taxonomy = _taxonomy_literal(node)
            bases = [getattr(b, "id", None) for b in node.bases]
            node = classes.get(bases[0]) if bases and bases[0] else None
        found[name] = taxonomy
    return found, complete


def names() -> list[str]:
    """All codec names, sorted (as `licodec.codecs()`)."""
    found, complete = _scan()
    if not complete or not found:
        from licodec.registry import names as registered

        return registered()
    return sorted(found)


def taxonomy(name: str) -> Taxonomy:
    """The survey taxonomy of codec `name`."""
    found, _ = _scan()
    entry = found.get(name)
    if entry is None:
        from licodec.registry import codec_class

        return codec_class(name).taxonomy
    return entry


def _known_qualities() -> dict[str, int]:
    try:
        return json.loads(QUALITIES.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def weights_entry(path: Path, known: dict[str, int] | None = None) -> dict:
    """One weights file as `licodec zoo --json` lists it: file, bytes, hash, qualities, lmbdas, config, provenance."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).digest()[:HASH_BYTES].hex()
    metadata = header_metadata(path) or {}
    config = json.loads(metadata["config"])
    provenance = json.loads(metadata.get("provenance", "{}"))
    qualities = (known if known is not None else _known_qualities()).get(digest)
    if qualities is None:
        from licodec.registry import codec_class

        qualities = codec_class(metadata["codec"])(**config).qualities
    return {
        "file": path.name,
        "bytes": len(data),
        "hash": digest,
        "qualities": qualities,
        "lmbdas": config.get("lmbdas", []),
        "config": config,
        "provenance": provenance,
        "training_hardware": describe(provenance),  # CPU and steps/s, or "not recorded"
    }


def zoo_index() -> dict:
    """The shipped weights, per codec name: the same dictionary as `licodec.zoo.index()`."""
    known = _known_qualities()
    return {path.stem: weights_entry(path, known) for path in sorted(ZOO.glob("*.safetensors"))}


def write_qualities() -> dict[str, int]:
    """Recompute `catalog.json` from the shipped weights through the codec classes (imports PyTorch)."""
    from licodec import zoo

    table = {entry["hash"]: entry["qualities"] for entry in zoo.index().values()}
    QUALITIES.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    return table


if __name__ == "__main__":
    print(f"{QUALITIES}: {len(write_qualities())} weights files")
