"""Write the compatibility samples of tests/compat: one tiny .lic file per shipped weights version, each written by
the commit that shipped those weights (its own code and zoo, checked out with `git worktree` outside the repository),
with the PSNR that commit's own decoder measured.

    python tests/compat/make_samples.py              # every shipped version that has no sample yet
    python tests/compat/make_samples.py COMMIT ...   # only the versions those commits shipped

Run it in the commit that replaces a shipped file (before or after the replacement: the old version is read from the
commit that shipped it). Each sample is source.png (48x32) at quality 2; samples.json records what the test checks.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAMPLES = HERE / "samples"
INDEX = HERE / "samples.json"
QUALITY = 2

_spec = importlib.util.spec_from_file_location("build_archive", ROOT / "archive" / "build_archive.py")
build_archive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_archive)

# Run inside the old commit's checkout, with its own licodec: compress and decompress, report the PSNR.
WRITER = r"""
import hashlib, json, sys
import numpy as np
import licodec
from PIL import Image
source, jobs = sys.argv[1], json.loads(sys.argv[2])
original = np.asarray(Image.open(source).convert("RGB"), dtype=np.float64)
for job in jobs:
    data = licodec.compress(source, codec=job["codec"], quality=job["quality"])
    decoded = np.asarray(licodec.decompress(data).convert("RGB"))
    mse = np.mean((decoded.astype(np.float64) - original) ** 2)
    open(job["out"], "wb").write(data)
    print(json.dumps({**job, "psnr": round(float(10 * np.log10(255 ** 2 / mse)), 4), "bytes": len(data),
                      "pixels_sha256": hashlib.sha256(decoded.tobytes()).hexdigest(), "by": licodec.__file__}))
"""


def index() -> list[dict]:
    return json.loads(INDEX.read_text())["samples"] if INDEX.exists() else []


def write(commits: list[str]) -> None:
    repo = build_archive.repository(HERE)
    versions = build_archive.versions(repo)
    done = {s["hash"] for s in index()}
    todo: dict[str, list[dict]] = {}
    for version in versions:
        if version["hash"] in done or (commits and not any(version["commit"].startswith(c) for c in commits)):
            continue
        name = f"{version['codec']}-{version['hash']}.lic"
        todo.setdefault(version["commit"], []).append({"codec": version["codec"], "hash": version["hash"],
                                                       "commit": version["commit"], "quality": QUALITY,
                                                       "file": name, "out": str(SAMPLES / name)})
    SAMPLES.mkdir(exist_ok=True)
    for commit, jobs in todo.items():
        with tempfile.TemporaryDirectory(prefix=f"old-{commit[:7]}-") as temporary:
            checkout = Path(temporary) / "tree"
            subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", str(checkout), commit], check=True,
                           capture_output=True)
            try:
                result = subprocess.run([sys.executable, "-c", WRITER, str(HERE / "source.png"), json.dumps(jobs)],
                                        cwd=checkout, env={"PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1",
                                                           "PATH": "/usr/bin:/bin"},
                                        capture_output=True, text=True)
            finally:
                subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(checkout)],
                               capture_output=True)
        if result.returncode != 0:
            print(f"{commit[:7]}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
            continue
        samples = index()
        for line in result.stdout.splitlines():
            record = json.loads(line)
            assert record.pop("by").startswith(str(checkout)), "the old commit's own licodec must write the sample"
            record.pop("out")
            samples.append(record)
            print(f"{record['file']}: {record['bytes']} bytes, {record['psnr']} dB (by {commit[:7]})")
        INDEX.write_text(json.dumps({"samples": samples}, indent=1) + "\n")


if __name__ == "__main__":
    write(sys.argv[1:])
