"""Published rate-distortion curves, read from the files their authors released, as they are.

Two collections are read, each in its own format:

- CompressAI, `results/image/<dataset>/*.json` (and `results/image/8bit-decoded/<dataset>/`): one JSON per
  method, `{"name", "description", "results": {"bpp": [...], "psnr-rgb": [...], "ms-ssim-rgb": [...]}}`, the
  values averaged over the dataset's images. Results taken from papers may carry `ms-ssim-db-rgb` (MS-SSIM in dB)
  instead; it is converted back to MS-SSIM, 1 - 10^(-dB/10). Expected under `compressai-<dataset>/` of the root.
- TensorFlow Compression, `results/image_compression/<dataset>/{PSNR,MS-SSIM}_sRGB_RGB/<method>.txt`: `#` comment
  lines (the first names the method: `Aggregate rate-distortion data for "Ballé 2018 (ICLR)" on kodak.`), then
  `bpp, value` lines. The PSNR and MS-SSIM files of a method share their bpp and become one curve. The `*_sRGB_Y`
  folders (luma only) are not read: licodec measures on RGB. Expected under `tfc-results/` of the root.

Curve names are `compressai/<file>` and `tfc/<file>`, the file's path below its folder without the suffix, so
that the same method from both collections stays apart (`compressai/webp`, `tfc/webp`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from licodec.errors import LicodecError

# dataset -> (CompressAI folder, TensorFlow Compression folder), relative to the root; None where there is none.
FOLDERS: dict[str, tuple[str | None, str | None]] = {
    "kodak": ("compressai-kodak", "tfc-results/kodak"),
    "tecnick": (None, "tfc-results/tecnick"),
    "clic2020-professional": ("compressai-clic2020-professional", None),
    "clic2020-mobile": ("compressai-clic2020-mobile", None),
}


@dataclass(frozen=True)
class PublishedCurve:
    """One published RD curve: bits per pixel and, where published, RGB PSNR (dB) and MS-SSIM (linear, 0..1).

    The points keep the order of the file. `path` is the file read (for a TensorFlow Compression method, its PSNR
    file, or its MS-SSIM file where it has no PSNR file).
    """

    name: str
    source: str
    dataset: str
    bpp: list[float]
    psnr: list[float] | None
    ms_ssim: list[float] | None
    path: str


def _numbers(values: object, path: Path, key: str, length: int | None = None) -> list[float]:
    """`values` as floats, checked to be a list of numbers (of `length` of them, if given)."""
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in values):
        raise LicodecError(f"{path}: results.{key} is not a list of numbers")
    if length is not None and len(values) != length:
        raise LicodecError(f"{path}: results.{key} has {len(values)} values for {length} rates")
    return [float(v) for v in values]


def read_compressai(path: Path, name: str, dataset: str) -> PublishedCurve:
    """One CompressAI results JSON."""
    try:
        data = json.loads(path.read_text())
        results = data["results"]
        bpp = results["bpp"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LicodecError(f"{path}: not a CompressAI results file ({type(error).__name__}: {error})") from None
    bpp = _numbers(bpp, path, "bpp")
    count = len(bpp)
    psnr = _numbers(results["psnr-rgb"], path, "psnr-rgb", count) if "psnr-rgb" in results else None
    ms_ssim = None
    if "ms-ssim-rgb" in results:
        ms_ssim = _numbers(results["ms-ssim-rgb"], path, "ms-ssim-rgb", count)
    elif "ms-ssim-db-rgb" in results:
        ms_ssim = [1 - 10 ** (-db / 10) for db in _numbers(results["ms-ssim-db-rgb"], path, "ms-ssim-db-rgb", count)]
    label = "; ".join(str(data[key]) for key in ("name", "description") if data.get(key))
    return PublishedCurve(name, f"CompressAI ({label})", dataset, bpp, psnr, ms_ssim, str(path))


def read_tfc_file(path: Path) -> tuple[str, list[float], list[float]]:
    """(method title, bpp, values) of one TensorFlow Compression results text file."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise LicodecError(f"{path}: cannot read ({error})") from None
    title = path.stem
    rates, values = [], []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if line.startswith("#"):
            match = re.search(r'data for "(.+)" on', line)
            title = match.group(1) if match and title == path.stem else title
        elif line:
            try:
                rate, value = (float(field) for field in line.split(","))
            except ValueError:
                raise LicodecError(f"{path}: line {number} is not 'bpp, value': {line[:60]!r}") from None
            rates.append(rate)
            values.append(value)
    if not rates:
        raise LicodecError(f"{path}: no rate-distortion points")
    return title, rates, values


def _tfc_curves(folder: Path, dataset: str) -> list[PublishedCurve]:
    """The curves of one TensorFlow Compression dataset folder, PSNR and MS-SSIM files of a method joined."""
    psnr_files = {p.stem: p for p in (folder / "PSNR_sRGB_RGB").glob("*.txt")}
    ms_ssim_files = {p.stem: p for p in (folder / "MS-SSIM_sRGB_RGB").glob("*.txt")}
    curves = []
    for stem in sorted(psnr_files.keys() | ms_ssim_files.keys()):
        psnr = read_tfc_file(psnr_files[stem]) if stem in psnr_files else None
        ms_ssim = read_tfc_file(ms_ssim_files[stem]) if stem in ms_ssim_files else None
        name = f"tfc/{stem}"
        if psnr and ms_ssim and psnr[1] != ms_ssim[1]:  # not seen in the published files, handled anyway
            curves.append(PublishedCurve(name, f"TensorFlow Compression ({psnr[0]})", dataset, psnr[1], psnr[2],
                                         None, str(psnr_files[stem])))
            curves.append(PublishedCurve(f"{name} (MS-SSIM)", f"TensorFlow Compression ({ms_ssim[0]})", dataset,
                                         ms_ssim[1], None, ms_ssim[2], str(ms_ssim_files[stem])))
            continue
        title, bpp, _ = psnr or ms_ssim
        path = psnr_files.get(stem) or ms_ssim_files[stem]
        curves.append(PublishedCurve(name, f"TensorFlow Compression ({title})", dataset, bpp,
                                     psnr[2] if psnr else None, ms_ssim[2] if ms_ssim else None, str(path)))
    return curves


def load_published(root: Path, dataset: str = "kodak") -> list[PublishedCurve]:
    """Every published curve on `dataset` under `root`: CompressAI's first, then TensorFlow Compression's.

    `root` holds the folders `compressai-<dataset>/` and `tfc-results/` as released (see the module docstring);
    a collection that is absent is skipped, and none at all raises `LicodecError`.
    """
    if dataset not in FOLDERS:
        raise LicodecError(f"no published results for dataset {dataset!r} (known: {', '.join(FOLDERS)})")
    root = Path(root)
    compressai, tfc = (root / folder if folder else None for folder in FOLDERS[dataset])
    curves = []
    if compressai is not None and compressai.is_dir():
        for path in sorted(compressai.rglob("*.json")):
            name = "compressai/" + path.relative_to(compressai).with_suffix("").as_posix()
            curves.append(read_compressai(path, name, dataset))
    if tfc is not None and tfc.is_dir():
        curves += _tfc_curves(tfc, dataset)
    if not curves:
        raise LicodecError(f"no published results for {dataset} under {root}")
    return curves


def find(curves: list[PublishedCurve], name_fragment: str) -> list[PublishedCurve]:
    """The curves whose name contains `name_fragment`, ignoring case, in their order."""
    fragment = name_fragment.lower()
    return [curve for curve in curves if fragment in curve.name.lower()]

