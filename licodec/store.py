"""The weights store: every weights file licodec can use, found by codec name, by path, or by the hash that a .lic
header records (the first 8 bytes of the file's SHA-256, `zoo.digest`).

Folders searched, in this order:

1. `zoo`: the package's shipped weights (`licodec/zoo`), the current file of each codec;
2. `user`: the per-user data folder, `platformdirs.user_data_dir("licodec")/weights`, where `licodec weights add`
   copies files (named `<codec>-<hash>.safetensors`);
3. `path`: the folders listed in `LICODEC_WEIGHTS_PATH` (separated like `PATH`), used as they are;
4. `archive`: the installed `licodec-archive` distribution (retired shipped files, see docs/weights.md), found by
   the hashes of its manifest without reading the files.

Only files ending in `.safetensors` count. A file is matched to a codec by the metadata its safetensors header
records (read without loading the tensors) and to a hash by hashing it, once per process and file version.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from licodec.errors import CodecError, WeightsError

if TYPE_CHECKING:
    from licodec.codecs.base import Codec

ENV_PATH = "LICODEC_WEIGHTS_PATH"
ARCHIVE_PACKAGE = "licodec_archive"
HOW_TO_GET = ("licodec's retired weights: `pip install licodec-archive` (or `pip install ./archive` in a clone of "
              "licodec); your own: `licodec weights add FILE`")
HASH_CHARS = 16
MIN_PREFIX = 6


@dataclass(frozen=True)
class Entry:
    """One weights file of the store."""

    hash: str     # 16 hex characters, as bitstream headers record it
    codec: str
    path: Path
    where: str    # zoo, user, path or archive
    current: bool = True  # archive entries: False for a retired file, True for a codec's current one


def user_folder() -> Path:
    """The per-user folder that `add` copies weights into (it need not exist yet)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("licodec", appauthor=False)) / "weights"


def env_folders() -> list[Path]:
    """The folders of `LICODEC_WEIGHTS_PATH`, in order (empty entries ignored)."""
    return [Path(part).expanduser() for part in os.environ.get(ENV_PATH, "").split(os.pathsep) if part]


def archive_folder() -> Path | None:
    """The folder of the installed `licodec-archive` distribution (its manifest.json beside the files), or None."""
    try:
        spec = importlib.util.find_spec(ARCHIVE_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0])
    return folder if (folder / "manifest.json").is_file() else None  # not a source checkout without the files


def folders() -> list[tuple[str, Path]]:
    """(kind, folder) in search order; see the module docstring."""
    from licodec import zoo

    found = [("zoo", zoo.ZOO), ("user", user_folder())] + [("path", folder) for folder in env_folders()]
    archive = archive_folder()
    if archive is not None:
        found.append(("archive", archive))
    return found


def file_digest(path: Path) -> str:
    """The weights hash of the file at `path` (cached per path, size and modification time)."""
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.digest()[: HASH_CHARS // 2].hex()


def header_metadata(path: Path) -> dict | None:
    """The `__metadata__` of a safetensors file, read from its header alone (no tensors, no torch); None when the
    file is unreadable or no safetensors file."""
    try:
        with open(path, "rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if not 2 <= length <= 100_000_000:
                return None
            metadata = json.loads(handle.read(length)).get("__metadata__") or {}
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return None
    return metadata if isinstance(metadata, dict) else None


def codec_of(path: Path) -> str | None:
    """The codec a weights file records in its metadata, read from its header alone; None when it is no licodec
    weights file (not safetensors, damaged header, or no codec recorded)."""
    codec = (header_metadata(path) or {}).get("codec")
    return codec if isinstance(codec, str) else None


def _archive_manifest(folder: Path) -> list[dict]:
    try:
        return json.loads((folder / "manifest.json").read_text())["weights"]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def entries(codec: str | None = None, kinds: tuple[str, ...] | None = None) -> list[Entry]:
    """Every weights file of the store (of `codec` only, when given; of the folder `kinds`, when given), in search
    order. Files of other codecs are not hashed."""
    found = []
    for kind, folder in folders():
        if kinds is not None and kind not in kinds:
            continue
        if kind == "archive":
            for item in _archive_manifest(folder):
                path = folder / item["file"]
                if (codec is None or item["codec"] == codec) and path.is_file():
                    found.append(Entry(item["hash"], item["codec"], path, kind, bool(item.get("current"))))
            continue
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.safetensors")):
            recorded = codec_of(path)
            if recorded is None or (codec is not None and recorded != codec):
                continue
            try:
                found.append(Entry(file_digest(path), recorded, path, kind))
            except OSError:
                continue
    return found


def find(hash_or_prefix: str, codec: str | None = None) -> Entry | None:
    """The first file of the store whose hash is `hash_or_prefix` or starts with it (at least 6 hex characters);
    `WeightsError` when a prefix matches several different files."""
    wanted = hash_or_prefix.lower()
    if codec is not None:
        from licodec import zoo

        shipped = zoo.weights_path(codec)  # the common case, without hashing the rest of the store
        if shipped.is_file() and file_digest(shipped).startswith(wanted):
            return Entry(file_digest(shipped), codec, shipped, "zoo")
    matches = [e for e in entries(codec) if e.hash.startswith(wanted)]
    if len({e.hash for e in matches}) > 1:
        raise WeightsError(f"weights {hash_or_prefix} is ambiguous: " + ", ".join(sorted({e.hash for e in matches})))
    return matches[0] if matches else None


def damaged_copy(hash_: str) -> Path | None:
    """A store file named after `hash_` (as `add` names them) whose content no longer has that hash."""
    for kind, folder in folders():
        if kind == "zoo" or not folder.is_dir():
            continue
        for path in folder.glob(f"*{hash_}*.safetensors"):
            try:
                if file_digest(path) != hash_:
                    return path
            except OSError:
                return path
    return None


def read_weights(path: str | Path) -> Codec:
    """The codec of the weights file at `path`; `WeightsError` in one line, naming the file, when it is missing,
    unreadable, damaged, or not a licodec weights file."""
    path = Path(path).expanduser()
    try:
        stat = path.stat()
    except OSError:
        raise WeightsError(f"{path}: no such weights file") from None
    if path.is_dir():
        raise WeightsError(f"{path}: is a directory, not a weights file")
    try:
        return _read(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    except WeightsError as error:
        raise WeightsError(f"{path}: {error}") from None


@lru_cache(maxsize=8)
def _read(path: str, size: int, mtime_ns: int) -> Codec:
    from licodec import zoo

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise WeightsError(f"cannot read ({error.strerror})") from None
    return zoo.from_bytes(data)


def load(spec: str | os.PathLike) -> Codec:
    """A codec from a codec name (its shipped weights, else the only ones of that codec in the store; an overfitted
    codec needs none), a path to a weights file, or a weights hash (or a prefix of at least 6 hex characters)
    found in the store."""
    from licodec import zoo
    from licodec.registry import codec_class, names

    text = os.fspath(spec)
    if text in names():
        if codec_class(text).overfitted:
            return codec_class(text).standalone()  # the file carries its decoder: no weights file to load
        if zoo.weights_path(text).is_file():
            return zoo.load(text)
        return _by_name(text)
    path = Path(text).expanduser()
    if path.exists() or text.endswith(".safetensors") or os.sep in text:
        return read_weights(path)
    if _is_hash(text):
        entry = find(text)
        if entry is None:
            raise WeightsError(f"no weights {text} in the store ({HOW_TO_GET})")
        return read_weights(entry.path)
    raise CodecError(f"unknown codec {text!r} (and no such weights file or hash); known: {', '.join(names())}")


def _by_name(name: str) -> Codec:
    """The weights of codec `name` outside the zoo: the archive's current file, else the store's only one."""
    found = entries(name, kinds=("user", "path", "archive"))
    current = [e for e in found if e.where != "archive" or e.current]
    hashes = sorted({e.hash for e in current})
    if not hashes:
        from licodec import zoo

        return zoo.load(name)  # its "no trained weights" error
    if len(hashes) > 1:
        raise WeightsError(f"several {name} weights are in the store ({', '.join(hashes)}): name one by hash or path")
    return read_weights(current[0].path)


def _is_hash(text: str) -> bool:
    return MIN_PREFIX <= len(text) <= HASH_CHARS and all(c in "0123456789abcdef" for c in text.lower())


def for_header(codec: str, hash_: str) -> Codec:
    """The codec that wrote a file whose header names `codec` and weights `hash_`; one-line `WeightsError` naming
    both and how to get the weights when the store has none with that hash."""
    entry = find(hash_, codec) or find(hash_)  # the second search, of every codec's files, names a mix-up
    if entry is None:
        damaged = damaged_copy(hash_)
        if damaged is not None:
            raise WeightsError(f"made by {codec} weights {hash_}, whose copy {damaged} is damaged (its hash changed); "
                               f"get them again ({HOW_TO_GET})")
        raise WeightsError(f"made by {codec} weights {hash_}, not installed ({HOW_TO_GET})")
    loaded = read_weights(entry.path)
    if loaded.name != codec or loaded.weights_hash != hash_:
        raise WeightsError(f"made by {codec} weights {hash_}, but {entry.path} holds {loaded.name} weights")
    return loaded


def add(path: str | Path) -> tuple[Entry, bool]:
    """Copy a weights file into the user folder as `<codec>-<hash>.safetensors`, after checking that it loads;
    returns its entry and whether it was new (a file already in the store is not copied again)."""
    from licodec.io import write_atomic

    source = Path(path).expanduser()
    codec = read_weights(source)
    existing = find(codec.weights_hash, codec.name)
    if existing is not None:
        return existing, False
    folder = user_folder()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{codec.name}-{codec.weights_hash}.safetensors"
    write_atomic(target, source.read_bytes(), overwrite=True)
    return Entry(codec.weights_hash, codec.name, target, "user"), True


def remove(hash_or_prefix: str) -> Entry:
    """Delete a file that `add` put in the user folder (by its hash, or by the name `add` gave it when the file is
    damaged); other folders' files are refused (they are the package's, the archive's or folders the user
    manages)."""
    if not _is_hash(hash_or_prefix):
        raise WeightsError(f"{hash_or_prefix!r} is not a weights hash (6 to 16 hex characters; see `licodec weights "
                           f"list`)")
    matches = [e for e in entries() if e.hash.startswith(hash_or_prefix.lower())]
    if not matches:  # a damaged copy still carries the hash in the name `add` gave it
        named = sorted(user_folder().glob(f"*-{hash_or_prefix.lower()}*.safetensors"))
        matches = [Entry(path.stem.rpartition("-")[2], path.stem.rpartition("-")[0], path, "user") for path in named]
    if not matches:
        raise WeightsError(f"no weights {hash_or_prefix} in the store")
    if len({e.hash for e in matches}) > 1:
        raise WeightsError(f"weights {hash_or_prefix} is ambiguous: " + ", ".join(sorted({e.hash for e in matches})))
    mine = [e for e in matches if e.where == "user"]
    if not mine:
        entry = matches[0]
        raise WeightsError(f"weights {entry.hash} are in the {entry.where} folder ({entry.path}), which `remove` "
                           f"does not touch")
    for entry in mine:
        entry.path.unlink()
    return mine[0]


def verify(progress: bool = False) -> list[tuple[str, Path, str]]:
    """Check every file of the store: (kind, path, problem) for each one that does not load or whose name or
    manifest promises another hash; an empty list when all is well. Loads every file (`progress`: a bar)."""
    from tqdm import tqdm

    from licodec import zoo

    items = []
    for kind, folder in folders():
        if kind == "archive":
            items += [(kind, folder / item["file"], item["hash"]) for item in _archive_manifest(folder)]
        elif folder.is_dir():
            items += [(kind, path, None) for path in sorted(folder.glob("*.safetensors"))]
    problems = []
    for kind, path, promised in tqdm(items, desc="verifying", unit="file", disable=not progress):
        try:
            data = path.read_bytes()
            actual = zoo.digest(data)
            if promised is None and kind == "user":
                promised = path.stem.rpartition("-")[2]
            if promised and actual != promised:
                problems.append((kind, path, f"hash is {actual}, expected {promised} (damaged)"))
                continue
            zoo.from_bytes(data)
        except OSError as error:
            problems.append((kind, path, f"cannot read ({error.strerror})"))
        except (WeightsError, CodecError) as error:
            problems.append((kind, path, str(error)))
    return problems
