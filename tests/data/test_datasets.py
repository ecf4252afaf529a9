import dataclasses
import io
import tarfile
import zipfile

import pytest
from PIL import Image

from licodec.data import datasets
from licodec.errors import LicodecError
from tests.conftest import KODAK


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def write_images(folder, names) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    data = png_bytes()
    for name in names:
        (folder / name).write_bytes(data)


def div2k_valid_names() -> list[str]:
    return [f"{i:04d}.png" for i in range(801, 901)]


def use_urls(monkeypatch, name: str, *urls: str) -> None:
    """Point a dataset's download at local file:// URLs."""
    monkeypatch.setitem(datasets.DATASETS, name, dataclasses.replace(datasets.DATASETS[name], urls=urls))


def test_table_describes_every_dataset():
    names = datasets.dataset_names()
    assert names[0] == "kodak"
    assert {"tecnick", "div2k-train", "div2k-valid", "clic2020-professional-valid", "clic2020-mobile-valid",
            "clic2020-professional-test", "clic2020-mobile-test"} <= set(names)
    for name in names:
        dataset = datasets.describe(name)
        assert dataset.name == name and dataset.count > 0
        assert dataset.description and dataset.license and dataset.citation
        assert dataset.homepage.startswith("http") and all(url.startswith("https://") for url in dataset.urls)
    kodak = datasets.describe("kodak")
    assert kodak.count == 24 and len(kodak.urls) == 24 and kodak.urls[0].endswith("/kodim01.png")
    assert datasets.describe("div2k-valid").urls == ("https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        kodak.count = 23


def test_unknown_dataset_is_one_line():
    with pytest.raises(LicodecError, match="unknown dataset 'imagenet'") as info:
        datasets.describe("imagenet")
    assert "\n" not in str(info.value)


def test_kodak_from_shared_data_and_from_a_folder_above():
    if not KODAK.is_dir():
        pytest.skip(f"{KODAK} not available")
    found = datasets.images("kodak", KODAK)
    assert [p.name for p in found] == [f"kodim{i:02d}.png" for i in range(1, 25)]
    assert datasets.images("kodak", KODAK.parent) == found


def test_nested_layout_ignores_resource_forks_and_other_files(tmp_path):
    write_images(tmp_path / "Kodak" / "PhotoCD", [f"kodim{i:02d}.png" for i in range(1, 25)])
    write_images(tmp_path / "__MACOSX" / "Kodak", ["kodim01.png"])
    write_images(tmp_path / "Kodak" / "PhotoCD", ["._kodim01.png", "kodim25.png", "notes.png"])
    found = datasets.images("kodak", tmp_path)
    assert len(found) == 24 and found[0].name == "kodim01.png" and found[-1].name == "kodim24.png"


def test_partial_or_missing_copy_is_refused(tmp_path):
    write_images(tmp_path / "kodak", [f"kodim{i:02d}.png" for i in range(1, 21)])
    with pytest.raises(LicodecError, match="kodak: found 20 images under .* expected 24") as info:
        datasets.images("kodak", tmp_path)
    assert str(tmp_path) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(LicodecError, match="tecnick: no images found under"):
        datasets.images("tecnick", tmp_path)
    with pytest.raises(LicodecError, match="is not a folder"):
        datasets.images("kodak", tmp_path / "absent")


def test_div2k_and_tecnick_layouts(tmp_path):
    write_images(tmp_path / "DIV2K_valid_HR", div2k_valid_names())
    write_images(tmp_path / "DIV2K_valid_LR_bicubic" / "X2", [f"{i:04d}x2.png" for i in range(801, 901)])
    write_images(tmp_path / "DIV2K_train_HR", ["0001.png", "0002.png"])
    found = datasets.images("div2k-valid", tmp_path)
    assert len(found) == 100 and found[0].name == "0801.png" and found[-1].name == "0900.png"
    folder = tmp_path / "TESTIMAGES" / "RGB" / "RGB_OR_1200x1200"
    write_images(folder, [f"RGB_OR_1200x1200_{i:03d}.png" for i in range(1, 101)])
    write_images(tmp_path / "TESTIMAGES" / "RGB" / "RGB_R02_0600x0600", ["RGB_R02_0600x0600_001.png"])
    assert datasets.images("tecnick", tmp_path)[0] == folder / "RGB_OR_1200x1200_001.png"


def test_clic_sets_are_told_apart_by_their_folders(tmp_path):
    write_images(tmp_path / "clic2020-professional-valid" / "valid", [f"p{i:02d}.png" for i in range(41)])
    write_images(tmp_path / "mobile_valid" / "valid", [f"m{i:02d}.png" for i in range(61)])
    professional = datasets.images("clic2020-professional-valid", tmp_path)
    mobile = datasets.images("clic2020-mobile-valid", tmp_path)
    assert len(professional) == 41 and all(p.name.startswith("p") for p in professional)
    assert len(mobile) == 61 and all(p.name.startswith("m") for p in mobile)
    assert datasets.images("clic2020-mobile-valid", tmp_path / "mobile_valid") == mobile


def test_download_extracts_a_zip_once(tmp_path, monkeypatch):
    archive = tmp_path / "DIV2K_valid_HR.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for name in div2k_valid_names():
            opened.writestr(f"DIV2K_valid_HR/{name}", png_bytes())
        opened.writestr("DIV2K_valid_HR/readme.txt", "not an image")
    use_urls(monkeypatch, "div2k-valid", archive.as_uri())
    root = tmp_path / "data" / "div2k-valid"
    found = datasets.download("div2k-valid", root, progress=True)  # the byte bar, on stderr
    assert found == datasets.images("div2k-valid", root)
    assert len(found) == 100 and found[0] == root / "DIV2K_valid_HR" / "0801.png"
    assert sorted(p.name for p in root.iterdir()) == ["DIV2K_valid_HR"]  # archive deleted, no .part left
    assert not (root / "DIV2K_valid_HR" / "readme.txt").exists()
    archive.unlink()  # a second call must not need the network
    assert datasets.download("div2k-valid", root, progress=False) == found


def test_sourceforge_download_url_names_its_file():
    assert datasets._file_name(datasets.describe("tecnick").urls[0]) == "testimages.zip"
    assert datasets._file_name(datasets.describe("kodak").urls[4]) == "kodim05.png"


def test_download_extracts_a_tar(tmp_path, monkeypatch):
    archive = tmp_path / "testimages.tar.gz"
    with tarfile.open(archive, "w:gz") as opened:
        for i in range(1, 101):
            data = png_bytes()
            info = tarfile.TarInfo(f"TESTIMAGES/RGB/RGB_OR_1200x1200/RGB_OR_1200x1200_{i:03d}.png")
            info.size = len(data)
            opened.addfile(info, io.BytesIO(data))
    use_urls(monkeypatch, "tecnick", archive.as_uri())
    root = tmp_path / "tecnick"
    found = datasets.download("tecnick", root, progress=False)
    assert len(found) == 100 and found[-1] == root / "TESTIMAGES/RGB/RGB_OR_1200x1200/RGB_OR_1200x1200_100.png"
    assert not (root / "testimages.tar.gz").exists()


def test_download_fetches_only_missing_kodak_files(tmp_path, monkeypatch):
    source = tmp_path / "server"
    names = [f"kodim{i:02d}.png" for i in range(1, 25)]
    write_images(source, names)
    use_urls(monkeypatch, "kodak", *((source / name).as_uri() for name in names))
    root = tmp_path / "kodak"
    write_images(root, names[:10])
    (root / "kodim01.png").write_bytes(b"kept")  # already present: must not be fetched again
    found = datasets.download("kodak", root, progress=False)
    assert [p.name for p in found] == names
    assert (root / "kodim01.png").read_bytes() == b"kept"
    assert (root / "kodim24.png").read_bytes() == png_bytes()


def test_network_failure_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    use_urls(monkeypatch, "clic2020-professional-valid", (tmp_path / "missing.zip").as_uri())
    root = tmp_path / "clic"
    with pytest.raises(LicodecError, match="clic2020-professional-valid: cannot download file://") as info:
        datasets.download("clic2020-professional-valid", root, progress=False)
    assert "\n" not in str(info.value)
    assert list(root.iterdir()) == []


def test_archive_escaping_the_root_is_refused(tmp_path, monkeypatch):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.writestr("../escaped.png", png_bytes())
    use_urls(monkeypatch, "clic2020-professional-valid", archive.as_uri())
    root = tmp_path / "clic"
    with pytest.raises(LicodecError, match="outside"):
        datasets.download("clic2020-professional-valid", root, progress=False)
    assert not (tmp_path / "escaped.png").exists()
    assert list(root.iterdir()) == []


def test_wrong_archive_content_names_the_count(tmp_path, monkeypatch):
    archive = tmp_path / "mobile_valid_2020.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for i in range(3):
            opened.writestr(f"valid/{i}.png", png_bytes())
    use_urls(monkeypatch, "clic2020-mobile-valid", archive.as_uri())
    with pytest.raises(LicodecError, match="found 3 images .* expected 61"):
        datasets.download("clic2020-mobile-valid", tmp_path / "m", progress=False)
