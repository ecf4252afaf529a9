"""The standard image sets of learned compression: where they come from, how to find them, how to fetch them.

Kodak is the evaluation set of nearly every paper; CLIC 2020 (professional and mobile) is the set of the Challenge
on Learned Image Compression; Tecnick's 100 "SAMPLING" images at 1200x1200 are the high-resolution set of the
TensorFlow Compression results (`results/image_compression/README.md` of tensorflow/compression); DIV2K is a common
training set. The URLs are the official ones: r0k.us for Kodak, the ETH Zurich hosting that TensorFlow Datasets'
`clic` builder and the DIV2K page use, and the SourceForge project of TESTIMAGES for Tecnick.

`images(name, root)` finds a local copy, whatever folder layout its archive or its user left; `download(name, root)`
fetches what is missing into `root`, atomically (temporary file, then rename), and is safe to run again.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from licodec.errors import LicodecError

USER_AGENT = "licodec (Python urllib)"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
CHUNK = 1 << 20


@dataclass(frozen=True)
class Dataset:
    """One image set: what it is, where it comes from, and how its files are recognised.

    `urls` are fetched in order: archives (`.zip`, `.tar*`) are extracted into the root, anything else is saved
    under its own file name. `pattern` is a regular expression a file name must match in full (case-insensitive);
    None accepts any PNG. `keywords` must all appear in the folder path when the images sit in one subfolder among
    several under the root given to `images()` (used for CLIC, whose file names do not say which set they are in).
    """

    name: str
    description: str
    homepage: str
    urls: tuple[str, ...]
    license: str
    count: int
    citation: str
    pattern: str | None = None
    keywords: tuple[str, ...] = ()


_CLIC_BASE = "https://data.vision.ee.ethz.ch/cvl/clic"
_CLIC_HOME = "https://www.compression.cc/"
_CLIC_LICENSE = ("terms of the CLIC organisers (compression.cc); the professional images come from Unsplash "
                 "(Unsplash License); research use, check before redistributing")
_CLIC_CITATION = ("G. Toderici, L. Theis, N. Johnston, E. Agustsson, F. Mentzer, J. Ballé, W. Shi, R. Timofte, "
                  "Workshop and Challenge on Learned Image Compression (CLIC2020), CVPR 2020")
_DIV2K_BASE = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
_DIV2K_LICENSE = "academic research only, non-commercial (DIV2K page, ETH Zurich)"
_DIV2K_CITATION = ("E. Agustsson and R. Timofte, NTIRE 2017 Challenge on Single Image Super-Resolution: Dataset and "
                   "Study, CVPR Workshops 2017")


def _table() -> dict[str, Dataset]:
    datasets = [
        Dataset("kodak", "Kodak Lossless True Color Image Suite: 24 PNGs, 768x512 (6 of them portrait, 512x768)",
                "http://r0k.us/graphics/kodak/",
                tuple(f"https://r0k.us/graphics/kodak/kodak/kodim{i:02d}.png" for i in range(1, 25)),
                "released by the Eastman Kodak Company for unrestricted usage", 24,
                "Eastman Kodak, Kodak Lossless True Color Image Suite (PhotoCD PCD0992), http://r0k.us/graphics/kodak",
                pattern=r"kodim(0[1-9]|1\d|2[0-4])\.png"),
        Dataset("clic2020-professional-valid", "CLIC 2020 professional validation set: 41 PNGs, DSLR photos up to 2K",
                _CLIC_HOME, (f"{_CLIC_BASE}/professional_valid_2020.zip",), _CLIC_LICENSE, 41, _CLIC_CITATION,
                keywords=("prof", "val")),
        Dataset("clic2020-mobile-valid", "CLIC 2020 mobile validation set: 61 PNGs, phone photos",
                _CLIC_HOME, (f"{_CLIC_BASE}/mobile_valid_2020.zip",), _CLIC_LICENSE, 61, _CLIC_CITATION,
                keywords=("mobile", "val")),
        Dataset("clic2020-professional-test", "CLIC 2020 professional test set: 250 PNGs, DSLR photos",
                _CLIC_HOME, (f"{_CLIC_BASE}/test/CLIC2020Professional_test.zip",), _CLIC_LICENSE, 250, _CLIC_CITATION,
                keywords=("prof", "test")),
        Dataset("clic2020-mobile-test", "CLIC 2020 mobile test set: 178 PNGs, phone photos",
                _CLIC_HOME, (f"{_CLIC_BASE}/test/CLIC2020Mobile_test.zip",), _CLIC_LICENSE, 178, _CLIC_CITATION,
                keywords=("mobile", "test")),
        Dataset("tecnick", "Tecnick TESTIMAGES, SAMPLING set: the 100 RGB originals at 1200x1200, "
                "TESTIMAGES/RGB/RGB_OR_1200x1200/ in the archive (its reduced and grey versions are not extracted)",
                "https://testimages.org/",
                ("https://sourceforge.net/projects/testimages/files/OLD/OLD_SAMPLING/testimages.zip/download",),
                "CC BY-NC-SA 3.0 (TESTIMAGES README.TXT, Nicola Asuni, Tecnick.com)", 100,
                "N. Asuni and A. Giachetti, TESTIMAGES: a large-scale archive for testing visual devices and basic "
                "image processing algorithms (SAMPLING 1200 RGB set), STAG: Smart Tools and Apps for Graphics, 2014",
                pattern=r"RGB_OR_1200x1200_\d{3}\.png"),
        Dataset("div2k-train", "DIV2K training set, high resolution: 800 PNGs, 0001.png to 0800.png, 2K",
                f"{_DIV2K_BASE}/", (f"{_DIV2K_BASE}/DIV2K_train_HR.zip",), _DIV2K_LICENSE, 800, _DIV2K_CITATION,
                pattern=r"(0[0-7]\d\d|0800)\.png"),
        Dataset("div2k-valid", "DIV2K validation set, high resolution: 100 PNGs, 0801.png to 0900.png, 2K",
                f"{_DIV2K_BASE}/", (f"{_DIV2K_BASE}/DIV2K_valid_HR.zip",), _DIV2K_LICENSE, 100, _DIV2K_CITATION,
                pattern=r"(080[1-9]|08[1-9]\d|0900)\.png"),
    ]
    return {dataset.name: dataset for dataset in datasets}


DATASETS: dict[str, Dataset] = _table()


def dataset_names() -> list[str]:
    """The names `describe()`, `images()` and `download()` accept."""
    return list(DATASETS)


def describe(name: str) -> Dataset:
    """The description, sources, license, image count and citation of a dataset."""
    try:
        return DATASETS[name]
    except KeyError:
        raise LicodecError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})") from None


# Finding a local copy.

def _is_member(dataset: Dataset, path: Path) -> bool:
    """Whether a file, by its name, is one of the dataset's images; macOS resource forks (`._*`) are not."""
    name = path.name
    if name.startswith("._") or "__MACOSX" in path.parts or not name.lower().endswith(".png"):
        return False
    return dataset.pattern is None or re.fullmatch(dataset.pattern, name, re.IGNORECASE) is not None


def images(name: str, root: str | Path) -> list[Path]:
    """The images of dataset `name` in a local copy at `root`, sorted.

    `root` may be the folder of the images or any folder above it (the archives' own folders such as `valid/`,
    `DIV2K_valid_HR/` or `TESTIMAGES/RGB/RGB_OR_1200x1200/` are searched), also one holding several datasets. The
    copy must be complete: a partial one raises `LicodecError`, since results on it would not compare with
    published ones.
    """
    dataset = describe(name)
    root = Path(root)
    if not root.is_dir():
        raise LicodecError(f"{name}: {root} is not a folder")
    found = sorted(p for p in root.rglob("*") if _is_member(dataset, p) and p.is_file())
    if len(found) == dataset.count:
        return found
    folders: dict[Path, list[Path]] = {}
    for path in found:
        folders.setdefault(path.parent, []).append(path)
    for folder, paths in sorted(folders.items()):
        where = folder.relative_to(root).as_posix().lower()
        if len(paths) == dataset.count and all(word in where for word in dataset.keywords):
            return paths
    if not found:
        raise LicodecError(f"{name}: no images found under {root}")
    raise LicodecError(f"{name}: found {len(found)} images under {root}, expected {dataset.count}")


# Downloading.

def _file_name(url: str) -> str:
    """The file name a URL delivers; SourceForge's `.../name.zip/download` gives `name.zip`."""
    parts = [part for part in urllib.parse.urlparse(url).path.split("/") if part]
    if len(parts) > 1 and parts[-1] == "download":
        parts.pop()
    return urllib.parse.unquote(parts[-1])


def _is_archive(url: str) -> bool:
    return _file_name(url).lower().endswith(ARCHIVE_SUFFIXES)


def _fetch(name: str, url: str, target: Path, progress: bool) -> None:
    """Download `url` to `target` through a temporary file in the same folder, renamed only once complete."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    temporary = None
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            written = 0
            with os.fdopen(descriptor, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                          desc=target.name, disable=not progress) as bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
        if total is not None and written != total:
            raise LicodecError(f"{name}: download of {url} stopped at byte {written} of {total}")
        os.replace(temporary, target)
        temporary = None
    except urllib.error.HTTPError as error:
        raise LicodecError(f"{name}: cannot download {url}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise LicodecError(f"{name}: cannot download {url}: {error.reason}") from None
    except (OSError, http.client.HTTPException) as error:
        raise LicodecError(f"{name}: cannot download {url}: {str(error) or type(error).__name__}") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _members(archive: Path) -> Iterator[tuple[str, int, IO[bytes]]]:
    """(path inside the archive, size, open file) of each regular file of a zip or tar archive."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as opened:
            for info in opened.infolist():
                if not info.is_dir():
                    with opened.open(info) as member:
                        yield info.filename, info.file_size, member
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as opened:
            for info in opened:
                member = opened.extractfile(info) if info.isfile() else None
                if member is not None:
                    with member:
                        yield info.name, info.size, member
    else:
        raise LicodecError(f"{archive}: not a zip or tar archive")


def _extract(dataset: Dataset, archive: Path, root: Path) -> None:
    """Extract the dataset's images from `archive` into `root`, keeping the archive's folders.

    Only files that `images()` accepts are written, each atomically; one already there with the right size is
    kept. A member whose path would leave `root` (absolute, or through `..`) is refused. A damaged archive is
    deleted, so that the next run downloads it again.
    """
    base = root.resolve()
    try:
        for member_name, size, member in _members(archive):
            target = (base / member_name).resolve()
            if base not in target.parents:
                raise LicodecError(f"{archive}: refusing a path outside {root}: {member_name}")
            if not _is_member(dataset, target) or (target.exists() and target.stat().st_size == size):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.part")
            try:
                with temporary.open("wb") as out:
                    shutil.copyfileobj(member, out, CHUNK)
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, LicodecError) as error:
        archive.unlink(missing_ok=True)
        reason = str(error) if isinstance(error, LicodecError) else f"{archive}: damaged archive ({error})"
        raise LicodecError(f"{dataset.name}: {reason}; the archive was deleted") from None


def download(name: str, root: str | Path, progress: bool = True) -> list[Path]:
    """Fetch dataset `name` into the folder `root` and return its images, as `images(name, root)` does.

    Nothing is fetched when the images are already there, and single files already present are not fetched again.
    Archives are downloaded into `root`, their images extracted, then the archive deleted. A network failure raises
    `LicodecError` with one line and leaves no partial file.
    """
    dataset = describe(name)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    try:
        return images(name, root)
    except LicodecError:
        pass
    archives = [url for url in dataset.urls if _is_archive(url)]
    missing = [url for url in dataset.urls if url not in archives and not (root / _file_name(url)).exists()]
    for url in tqdm(missing, desc=name, unit="file", disable=not progress or not missing):
        _fetch(name, url, root / _file_name(url), progress=False)
    for url in archives:
        archive = root / _file_name(url)
        if not archive.exists():
            _fetch(name, url, archive, progress)
        _extract(dataset, archive, root)
    found = images(name, root)
    for url in archives:
        (root / _file_name(url)).unlink(missing_ok=True)
    return found
