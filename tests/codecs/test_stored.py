"""Files written before issue 18's refactoring (one per shipped codec, kodim23's top-left 96x128 crop at quality 1)
still decode, to the PSNR they decoded to then. A file whose weights have since been replaced in the zoo decodes with
the retired file, read from the git history (as the archive is built) and found by hash through
LICODEC_WEIGHTS_PATH."""

import importlib.util
import json
from pathlib import Path

import pytest

from licodec import store
from licodec.api import decompress_tensor
from licodec.bitstream import unpack
from licodec.eval.metrics import psnr
from licodec.io import read_image
from tests.conftest import kodak_image

STORED = Path(__file__).parent / "stored"
EXPECTED = json.loads((STORED / "expected.json").read_text())["psnr"]
ROOT = Path(__file__).resolve().parents[2]


def _retired_weights(weights_hash: str, folder: Path, monkeypatch) -> None:
    """Put the retired weights file with this hash into `folder`, on LICODEC_WEIGHTS_PATH (a skip without the git
    history it is read from)."""
    spec = importlib.util.spec_from_file_location("build_archive", ROOT / "archive" / "build_archive.py")
    build_archive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_archive)
    entry = next(e for e in build_archive.manifest() if e["hash"] == weights_hash)
    try:
        data = build_archive.read(build_archive.repository(ROOT), entry["commit"], entry["path"], entry["sha256"])
    except build_archive.HistoryError as error:
        pytest.skip(f"the retired weights {weights_hash} cannot be read from the git history: {error}")
    (folder / entry["file"]).write_bytes(data)
    monkeypatch.setenv(store.ENV_PATH, str(folder))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_stored_file_decodes_to_its_recorded_quality(name, tmp_path, monkeypatch):
    x, _ = read_image(kodak_image(23))
    data = (STORED / f"{name}.lic").read_bytes()
    weights_hash = unpack(data)[0].weights_hash
    current = {store.file_digest(path) for path in (ROOT / "licodec" / "zoo").glob("*.safetensors")}
    if weights_hash not in current and store.archive_folder() is None:
        _retired_weights(weights_hash, tmp_path, monkeypatch)
    x_hat, header = decompress_tensor(data)
    assert header.codec == name and x_hat.shape == (1, 3, 96, 128)
    assert psnr(x_hat, x[..., :96, :128]) == pytest.approx(EXPECTED[name], abs=0.01)
