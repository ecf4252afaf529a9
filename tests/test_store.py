"""The weights store: user weights files everywhere, found by hash when decoding, and one line for bad ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import licodec
from licodec import store, zoo
from licodec.cli import main
from licodec.errors import LicodecError, WeightsError
from tests.conftest import small_codec


@pytest.fixture(autouse=True)
def empty_store(tmp_path, monkeypatch):
    """A user folder of our own, no LICODEC_WEIGHTS_PATH, and the read caches emptied around each test."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv(store.ENV_PATH, raising=False)
    monkeypatch.setattr(store, "archive_folder", lambda: None)
    store._read.cache_clear()
    zoo._load_cached.cache_clear()
    yield
    store._read.cache_clear()
    zoo._load_cached.cache_clear()


def weights_file(path, name="balle2017-factorized", seed=0):
    """A small random codec saved as a weights file at `path`; its hash."""
    return zoo.save(small_codec(name, seed), path, {"note": "test"})


@pytest.fixture
def image():
    return torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0))


def pixels(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture)


def test_a_user_weights_file_codes_everywhere_and_decoding_finds_it_by_hash(tmp_path, image):
    mine = tmp_path / "mine.safetensors"
    digest = weights_file(mine)
    data = licodec.compress(image, weights=str(mine), quality=2)
    assert licodec.compress(image, codec=str(mine), quality=2) == data
    assert licodec.load(str(mine)).weights_hash == digest
    with pytest.raises(WeightsError, match=f"made by balle2017-factorized weights {digest}, not installed") as error:
        licodec.decompress(data)
    assert "licodec weights add" in str(error.value) and "\n" not in str(error.value)
    expected = pixels(licodec.decompress(data, weights=str(mine)))
    entry, new = store.add(mine)
    assert new and entry.where == "user" and entry.path.name == f"balle2017-factorized-{digest}.safetensors"
    assert store.add(mine)[1] is False  # already there: not copied twice
    assert np.array_equal(pixels(licodec.decompress(data)), expected)
    assert licodec.load(digest[:8]).weights_hash == digest  # a hash prefix names it too
    assert licodec.load("balle2017-factorized").weights_hash != digest  # the name is still the shipped file
    store.remove(digest[:8])
    with pytest.raises(WeightsError, match="not installed"):
        licodec.decompress(data)


def test_a_file_written_with_replaced_weights_decodes_after_the_swap(tmp_path, monkeypatch, image):
    """A shipped file is replaced (the zoo is a temporary folder here); the retired file, found by hash in a
    LICODEC_WEIGHTS_PATH folder (as the archive is), decodes what it wrote."""
    shipped = tmp_path / "zoo"
    shipped.mkdir()
    monkeypatch.setattr(zoo, "ZOO", shipped)
    retired = tmp_path / "retired"
    retired.mkdir()
    old = weights_file(retired / "old.safetensors", seed=0)
    (shipped / "balle2017-factorized.safetensors").write_bytes((retired / "old.safetensors").read_bytes())
    data = licodec.compress(image, codec="balle2017-factorized", quality=2)
    before = pixels(licodec.decompress(data))
    new = weights_file(shipped / "balle2017-factorized.safetensors", seed=1)
    zoo._load_cached.cache_clear()
    assert new != old and licodec.load("balle2017-factorized").weights_hash == new
    with pytest.raises(WeightsError, match=f"weights {old}, not installed"):
        licodec.decompress(data)
    monkeypatch.setenv(store.ENV_PATH, str(retired))
    assert np.array_equal(pixels(licodec.decompress(data)), before)
    assert licodec.load("balle2017-factorized").weights_hash == new  # the name stays the current file


def test_a_codec_without_shipped_weights_is_loaded_by_name_from_the_store(tmp_path):
    with pytest.raises(WeightsError, match="no trained weights"):
        licodec.load("balle2018-mean-scale")
    digest = weights_file(tmp_path / "ms.safetensors", "balle2018-mean-scale")
    store.add(tmp_path / "ms.safetensors")
    assert licodec.load("balle2018-mean-scale").weights_hash == digest
    weights_file(tmp_path / "ms2.safetensors", "balle2018-mean-scale", seed=1)
    store.add(tmp_path / "ms2.safetensors")
    with pytest.raises(WeightsError, match="several balle2018-mean-scale weights"):
        licodec.load("balle2018-mean-scale")


def test_weights_of_another_codec_with_the_recorded_hash_are_refused(tmp_path, image, monkeypatch):
    from licodec.bitstream import Header, pack, unpack

    mine = tmp_path / "mine.safetensors"
    digest = weights_file(mine)
    header, sections = unpack(licodec.compress(image, quality=2))
    relabelled = pack(Header("balle2018-hyperprior", digest, header.height, header.width, header.channels,
                             header.quality), sections)
    monkeypatch.setenv(store.ENV_PATH, str(tmp_path))
    with pytest.raises(WeightsError, match="holds balle2017-factorized weights"):
        licodec.decompress(relabelled)
    with pytest.raises(WeightsError, match="not by the given"):
        licodec.decompress(relabelled, weights=str(mine))


def _torch_checkpoint(path):
    torch.save({"state_dict": {"a": torch.zeros(2)}}, path)


def _plain_safetensors(path):
    from safetensors.torch import save_file

    save_file({"g_a.0.weight": torch.zeros(2, 2)}, path)


def _unknown_codec(path):
    from safetensors.torch import save_file

    save_file({"model.x": torch.zeros(2)}, path, metadata={"codec": "nobody2030", "config": "{}"})


def _truncated(path):
    weights_file(path)
    path.write_bytes(path.read_bytes()[:5000])


def _image(path):
    Image.new("RGB", (4, 4)).save(path, format="PNG")


@pytest.mark.parametrize(("make", "fragment"), [
    (_truncated, "damaged"), (_image, "damaged"), (lambda p: p.write_bytes(b""), "damaged"),
    (_torch_checkpoint, "PyTorch checkpoint"), (_plain_safetensors, "not a licodec weights file"),
    (_unknown_codec, "'nobody2030', which this licodec does not know"),
    (lambda p: p.mkdir(), "is a directory"), (lambda p: None, "no such weights file"),
], ids=["truncated", "png", "empty", "torch-checkpoint", "foreign-safetensors", "unknown-codec", "directory",
        "missing"])
def test_a_bad_weights_file_gets_one_line(tmp_path, make, fragment):
    path = tmp_path / "bad.safetensors"
    make(path)
    with pytest.raises(LicodecError, match=fragment) as error:
        store.read_weights(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), (90, 120, 30)).save(photo)
    result = CliRunner().invoke(main, ["compress", str(photo), "--weights", str(path), "-o", str(tmp_path / "o.lic")])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("licodec: ") and fragment in lines[0], lines
    assert not (tmp_path / "o.lic").exists()
    with pytest.raises(LicodecError, match=fragment):
        store.add(path)


def test_the_weights_commands(tmp_path):
    runner = CliRunner()
    photo, lic = tmp_path / "photo.png", tmp_path / "photo.lic"
    Image.fromarray((np.arange(24 * 40 * 3) % 251).astype(np.uint8).reshape(24, 40, 3)).save(photo)
    mine = tmp_path / "mine.safetensors"
    digest = weights_file(mine)
    result = runner.invoke(main, ["compress", str(photo), "--weights", str(mine), "-q", "1"])
    assert result.exit_code == 0, result.stderr
    refused = runner.invoke(main, ["compress", str(photo), "--weights", str(mine), "--codec", "balle2018-hyperprior",
                                   "-o", str(tmp_path / "x.lic")])
    assert refused.exit_code == 1 and "holds balle2017-factorized weights" in refused.stderr
    result = runner.invoke(main, ["decompress", str(lic), "-o", str(tmp_path / "a.png")])
    assert result.exit_code == 1 and f"balle2017-factorized weights {digest}, not installed" in result.stderr
    assert runner.invoke(main, ["decompress", str(lic), "--weights", str(mine), "-o", str(tmp_path / "a.png")]
                         ).exit_code == 0
    result = runner.invoke(main, ["weights", "add", str(mine)])
    assert result.exit_code == 0 and "added" in result.stderr
    listed = runner.invoke(main, ["weights", "list"])
    assert f"{digest}  balle2017-factorized" in listed.stdout and "user" in listed.stdout
    assert runner.invoke(main, ["decompress", str(lic), "-o", str(tmp_path / "b.png")]).exit_code == 0
    assert np.array_equal(pixels(Image.open(tmp_path / "a.png")), pixels(Image.open(tmp_path / "b.png")))
    result = runner.invoke(main, ["weights", "verify"])
    assert result.exit_code == 0, result.stderr
    # A damaged copy in the store: verify names it, decoding says so in one line.
    copy = store.user_folder() / f"balle2017-factorized-{digest}.safetensors"
    damaged = bytearray(copy.read_bytes())
    damaged[-10] ^= 0xFF
    copy.write_bytes(bytes(damaged))
    result = runner.invoke(main, ["weights", "verify"])
    assert result.exit_code == 1 and f"expected {digest} (damaged)" in result.stderr
    result = runner.invoke(main, ["decompress", str(lic), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1 and "is damaged" in result.stderr and len(result.stderr.splitlines()) == 1
    # remove: only what `add` put in the user folder (a damaged copy by the hash in its name).
    shipped = zoo.digest(zoo.weights_path("balle2017-factorized").read_bytes())
    result = runner.invoke(main, ["weights", "remove", shipped])
    assert result.exit_code == 1 and "zoo folder" in result.stderr
    assert runner.invoke(main, ["weights", "remove", digest[:7]]).exit_code == 0 and not copy.exists()
    assert runner.invoke(main, ["weights", "remove", "nothex"]).exit_code == 1


def test_eval_takes_weights_files_with_labels(tmp_path):
    from licodec.eval.run import evaluate, split_label

    mine = tmp_path / "mine.safetensors"
    weights_file(mine)
    assert split_label(f"ours={mine}") == ("ours", str(mine))
    assert split_label(str(mine)) == ("mine", str(mine))
    assert split_label("jpeg") == ("jpeg", "jpeg")
    photo = tmp_path / "photo.png"
    Image.fromarray((np.arange(32 * 32 * 3) % 251).astype(np.uint8).reshape(32, 32, 3)).save(photo)
    points = evaluate([f"ours={mine}", str(mine)], [photo], progress=False)
    assert {p.codec for p in points} == {"ours", "mine"}
    assert [p.bytes for p in points if p.codec == "ours"] == [p.bytes for p in points if p.codec == "mine"]
    again = evaluate([f"ours={mine}"], [photo], progress=False, reuse=points)
    assert again == [p for p in points if p.codec == "ours"]
