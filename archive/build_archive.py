"""Build the licodec-archive files from git history: every weights file licodec ever shipped and later replaced.

The repository keeps no copy of a retired file: its bytes stay in the git history, at the commit and path that
`manifest.json` records beside its SHA-256. This script reads them back with `git show COMMIT:PATH`, checks the
SHA-256 and writes them into a folder with the manifest (what the installed `licodec_archive` package holds and
`licodec.store` reads). `setup.py` calls `build` when pip builds the wheel; it needs a clone with full history.

    python archive/build_archive.py check            # the manifest lists every retired version, all readable
    python archive/build_archive.py manifest         # rewrite manifest.json from the history (after a retirement)
    python archive/build_archive.py build FOLDER     # extract the files into FOLDER
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "manifest.json"
ZOO = "licodec/zoo"
HASH_CHARS = 16  # bitstream headers record the first 8 bytes of the SHA-256


class HistoryError(RuntimeError):
    """The git history that holds the archive's files is not available (no git, no clone, a shallow clone)."""


def repository(start: Path = HERE) -> Path:
    """The root of the licodec clone that `start` is in; HistoryError when there is none."""
    try:
        root = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise HistoryError(f"{start} is not in a git clone of licodec (the archive is built from its history)") \
            from None
    return Path(root)


def _git(repo: Path, *args: str) -> bytes:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        raise HistoryError(f"git {' '.join(args)}: {detail.decode(errors='replace').strip() or error}") from None


def read(repo: Path, commit: str, path: str, sha256: str) -> bytes:
    """The bytes of `path` at `commit`, checked against `sha256`; HistoryError when the history lacks them."""
    data = _git(repo, "show", f"{commit}:{path}")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise HistoryError(f"{commit}:{path} does not have the SHA-256 the manifest records ({sha256[:16]})")
    return data


def versions(repo: Path, ref: str = "HEAD") -> list[dict]:
    """Every version of every zoo file in the history of `ref`, oldest first: codec, commit, path, sha256, hash."""
    log = _git(repo, "log", "--reverse", "--format=%H", "--name-only", "--diff-filter=AM", ref, "--",
               f"{ZOO}/*.safetensors").decode()
    found, commit = [], None
    for line in log.splitlines():
        if len(line) == 40 and all(c in "0123456789abcdef" for c in line):
            commit = line
        elif line.strip():
            blob = _git(repo, "rev-parse", f"{commit}:{line}").decode().strip()
            sha = hashlib.sha256(_git(repo, "cat-file", "blob", blob)).hexdigest()
            found.append({"codec": Path(line).stem, "commit": commit, "path": line, "sha256": sha,
                          "hash": sha[:HASH_CHARS]})
    return found


def retired(repo: Path, ref: str = "HEAD") -> list[dict]:
    """The versions of `versions` that the zoo of `ref` no longer holds (each one only once), each with `current`:
    True for the newest file of a codec whose file left the zoo to make room (docs/weights.md), False for a file
    that a newer one of its codec replaced."""
    current = {}
    for path in _git(repo, "ls-tree", "--name-only", ref, f"{ZOO}/").decode().split():
        if path.endswith(".safetensors"):
            current[hashlib.sha256(_git(repo, "show", f"{ref}:{path}")).hexdigest()] = path
    history = versions(repo, ref)
    newest = {v["path"]: v["sha256"] for v in history}  # oldest first, so the last one wins
    seen, out = set(), []
    for version in history:
        if version["sha256"] not in current and version["sha256"] not in seen:
            seen.add(version["sha256"])
            evicted = version["path"] not in current.values() and newest[version["path"]] == version["sha256"]
            out.append({**version, "current": evicted})
    return out


def manifest() -> list[dict]:
    """The entries of manifest.json."""
    return json.loads(MANIFEST.read_text())["weights"]


def write_manifest(repo: Path) -> list[dict]:
    """Rewrite manifest.json from the history: the retired versions, each with its file name in the archive."""
    entries = [{**v, "file": f"{v['codec']}-{v['hash']}.safetensors"} for v in retired(repo)]
    for entry in entries:
        entry["bytes"] = len(read(repo, entry["commit"], entry["path"], entry["sha256"]))
    MANIFEST.write_text(json.dumps({"weights": entries}, indent=1) + "\n")
    return entries


def build(folder: Path, repo: Path | None = None) -> list[dict]:
    """Extract every file of the manifest into `folder`, checked, and write the manifest beside them."""
    repo = repo or repository()
    entries = manifest()
    folder.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        target = folder / entry["file"]
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == entry["sha256"]:
            continue
        target.write_bytes(read(repo, entry["commit"], entry["path"], entry["sha256"]))
    (folder / "manifest.json").write_text(json.dumps({"weights": entries}, indent=1) + "\n")
    return entries


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("check", "manifest", "build") or (argv[0] == "build") != (len(argv) == 2):
        print("usage: build_archive.py check | manifest | build FOLDER", file=sys.stderr)
        return 2
    try:
        repo = repository()
        if argv[0] == "manifest":
            entries = write_manifest(repo)
            print(f"{MANIFEST}: {len(entries)} retired files, {sum(e['bytes'] for e in entries) / 1e6:.1f} MB")
        elif argv[0] == "check":
            listed = {e["sha256"] for e in manifest()}
            missing = [v for v in retired(repo) if v["sha256"] not in listed]
            for entry in manifest():
                read(repo, entry["commit"], entry["path"], entry["sha256"])
            for version in missing:
                print(f"not in the manifest: {version['codec']} {version['hash']} ({version['commit'][:7]})")
            print(f"{len(listed)} files in the manifest, all readable; {len(missing)} retired files missing")
            return 1 if missing else 0
        else:
            entries = build(Path(argv[1]), repo)
            print(f"{argv[1]}: {len(entries)} files")
    except HistoryError as error:
        print(f"build_archive: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
