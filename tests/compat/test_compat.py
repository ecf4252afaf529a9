"""The compatibility promise: every .lic file a released licodec wrote decodes with this one.

samples/ holds one tiny file per weights version licodec ever shipped, each written by the commit that shipped
those weights (make_samples.py), with the PSNR that commit's decoder measured. The current weights come from the
zoo; retired ones from the installed licodec-archive, or else straight from the git history (what the archive is
built from) through LICODEC_WEIGHTS_PATH.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import licodec
from licodec import store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAMPLES = json.loads((HERE / "samples.json").read_text())["samples"]

_spec = importlib.util.spec_from_file_location("build_archive", ROOT / "archive" / "build_archive.py")
build_archive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_archive)


def history() -> Path:
    """The clone's root, or a skip when the tests do not run in a clone with full history."""
    try:
        repo = build_archive.repository(HERE)
        shallow = build_archive._git(repo, "rev-parse", "--is-shallow-repository").decode().strip()
    except build_archive.HistoryError as error:
        pytest.skip(f"needs licodec's git history: {error}")
    if shallow == "true":
        pytest.skip("needs licodec's full git history (this clone is shallow)")
    return repo


@pytest.fixture(scope="module")
def retired_weights(tmp_path_factory):
    """A folder in LICODEC_WEIGHTS_PATH holding the archive's files (unless the archive is installed)."""
    if store.archive_folder() is not None:
        yield
        return
    folder = tmp_path_factory.mktemp("archive")
    try:
        build_archive.build(folder, history())
    except build_archive.HistoryError as error:
        pytest.skip(f"the retired weights cannot be read from the git history: {error}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(store.ENV_PATH, str(folder))
        yield


def psnr(decoded: Image.Image) -> float:
    original = np.asarray(Image.open(HERE / "source.png").convert("RGB"), dtype=np.float64)
    mse = np.mean((np.asarray(decoded.convert("RGB"), dtype=np.float64) - original) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["file"] for s in SAMPLES])
def test_every_shipped_weights_version_still_decodes_its_files(sample, request):
    current = {store.file_digest(path) for path in (ROOT / "licodec" / "zoo").glob("*.safetensors")}
    if sample["hash"] not in current:
        request.getfixturevalue("retired_weights")  # from the archive or the history (skips without either)
    data = (HERE / "samples" / sample["file"]).read_bytes()
    assert len(data) == sample["bytes"] < 1024
    decoded = licodec.decompress(data)
    assert decoded.size == Image.open(HERE / "source.png").size
    assert psnr(decoded) == pytest.approx(sample["psnr"], abs=0.01)


def test_every_shipped_weights_version_has_a_sample():
    versions = build_archive.versions(history())
    assert {v["hash"] for v in versions} <= {s["hash"] for s in SAMPLES}, "run tests/compat/make_samples.py"
    assert {v["hash"] for v in versions} >= {s["hash"] for s in SAMPLES}


def test_the_archive_manifest_lists_every_retired_file():
    repo = history()
    listed = {e["sha256"] for e in build_archive.manifest()}
    missing = [f"{v['codec']} {v['hash']}" for v in build_archive.retired(repo) if v["sha256"] not in listed]
    assert not missing, "run `python archive/build_archive.py manifest`"
    current = {store.file_digest(path) for path in (ROOT / "licodec" / "zoo").glob("*.safetensors")}
    assert not current & {e["hash"] for e in build_archive.manifest() if not e["current"]}


@pytest.mark.slow
def test_the_archive_installs_with_one_pip_command_and_the_store_finds_it(tmp_path):
    """`pip install ./archive` (here into a folder) builds licodec-archive from the history; a licodec that sees
    it decodes a retired sample with no other help."""
    import os
    import subprocess

    history()
    target = tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                            "--target", str(target), str(ROOT / "archive")], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-2000:]
    files = sorted((target / "licodec_archive").glob("*.safetensors"))
    assert len(files) == len(build_archive.manifest())
    retired = next(s for s in SAMPLES if s["hash"] in {e["hash"] for e in build_archive.manifest()})
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(target)])}
    environment.pop(store.ENV_PATH, None)
    sample = HERE / "samples" / retired["file"]
    decoded = subprocess.run([sys.executable, "-m", "licodec.cli", "decompress", str(sample), "-o",
                              str(tmp_path / "out.png")], capture_output=True, text=True, env=environment)
    assert decoded.returncode == 0, decoded.stderr
    assert psnr(Image.open(tmp_path / "out.png")) == pytest.approx(retired["psnr"], abs=0.01)
