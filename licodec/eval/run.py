"""Evaluate codecs on a set of images: real bytes, PSNR (RGB and Y) and MS-SSIM on 8-bit RGB, timings.

Images are processed in parallel worker processes (one PyTorch thread each); every worker loads each learned
codec once. Points from an earlier run can be reused: a codec's points on an image are kept when that run coded the
image with the same weights (learned codecs: the weights hash the files record) or the same library versions
(classical codecs) at the same settings; only what changed is coded again.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from licodec.errors import LicodecError
from licodec.eval.classical import CLASSICAL, library_versions
from licodec.eval.metrics import ms_ssim, psnr, psnr_y
from licodec.io import read_image, to_uint8


@dataclass
class Point:
    """One image coded by one codec at one setting (a learned quality level or a classical quality)."""

    codec: str
    quality: float
    image: str
    bytes: int
    bpp: float
    psnr: float
    psnr_y: float
    ms_ssim: float
    encode_s: float
    decode_s: float
    source: str = ""  # what made the bytes: the weights hash, or the classical libraries' versions


_LABELLED: dict[str, str] = {}  # label -> weights file, for the codecs given as LABEL=FILE or FILE


def split_label(name: str) -> tuple[str, str]:
    """(label, what to load) of a codec as `--codec` names it: LABEL=FILE, a weights FILE (labelled by its stem),
    a label given earlier in this process, or a codec name (its own label)."""
    label, sep, spec = name.partition("=")
    if sep and label and spec:
        return label, spec
    if name.endswith(".safetensors") or "/" in name:
        return Path(name).stem, name
    return name, _LABELLED.get(name, name)


class Coder:
    """Uniform front for learned and classical codecs: settings, and code(x, setting) -> (bytes, x_hat, times)."""

    def __init__(self, name: str, settings: Sequence[float] | None = None, effort: int | None = None) -> None:
        self.effort = None  # the encoding effort of an overfitted codec (None: not one)
        self.name, spec = split_label(name)  # a learned codec may be a weights file, labelled (see split_label)
        if spec in CLASSICAL:
            self.classical = CLASSICAL[spec]
            self.settings = tuple(self.classical.settings)
        else:
            from licodec.api import load

            self.classical = None
            self.learned = load(spec)
            if spec != self.name:
                _LABELLED[self.name] = spec
            self.settings = tuple(range(1, self.learned.qualities + 1))
            if self.learned.overfitted:
                self.effort = effort or self.learned.effort
        if settings is not None:
            self.settings = self._checked(settings)

    def _checked(self, settings: Sequence[float]) -> tuple[float, ...]:
        """The chosen settings, sorted, each one the codec takes (else `LicodecError` naming its range)."""
        chosen = tuple(sorted({float(s) if not float(s).is_integer() else int(s) for s in settings}))
        if self.classical is not None:
            low, high = min(self.classical.all_settings), max(self.classical.all_settings)
            unit = "settings"
        else:
            low, high = 1, self.learned.qualities
            unit = "integer qualities" if self.learned.quality_unit is not None else "qualities"
        for setting in chosen:
            integral = isinstance(setting, int) or self.classical is not None or self.learned.quality_unit is None
            if not (low <= setting <= high and integral):
                raise LicodecError(f"{self.name} takes {unit} from {low:g} to {high:g}, not {setting:g}")
        if not chosen:
            raise LicodecError(f"{self.name}: no qualities chosen")
        return chosen

    @property
    def source(self) -> str:
        """What decides the bytes besides the image and the setting: the weights hash of a learned codec, the
        versions of the libraries behind a classical one; of an overfitted codec, also its encoder's revision
        and the effort."""
        if self.classical is not None:
            return library_versions()
        if self.effort is None:
            return self.learned.weights_hash
        return f"{self.learned.weights_hash}+encoder{self.learned.encoder_revision}+effort{self.effort}"

    def all_settings(self) -> tuple[float, ...]:
        """Every setting a search for a target rate may try, by increasing rate: a classical codec's whole range;
        a learned codec's qualities in 1/16 steps (its trained levels only where qualities count something)."""
        if self.classical is not None:
            return self.classical.all_settings
        if self.learned.quality_unit is not None:
            return self.settings
        return tuple(1 + k / 16 for k in range(16 * (self.learned.qualities - 1) + 1))

    def code(self, x: torch.Tensor, setting: float) -> tuple[bytes, torch.Tensor, float, float]:
        """Encode and decode for real; returns the bytes, the reconstruction and both times."""
        if self.classical is None:
            from licodec.api import compress_tensor, decompress_tensor

            start = time.perf_counter()
            data = compress_tensor(x, 3, self.learned, setting, effort=self.effort)
            middle = time.perf_counter()
            x_hat, _ = decompress_tensor(data, weights=self.learned)
            return data, x_hat, middle - start, time.perf_counter() - middle
        image = to_uint8(x)
        start = time.perf_counter()
        data = self.classical.encode(image, setting)
        middle = time.perf_counter()
        decoded = self.classical.decode(data)
        decode_s = time.perf_counter() - middle
        x_hat = torch.from_numpy(np.array(decoded)).permute(2, 0, 1)[None].float() / 255
        return data, x_hat, middle - start, decode_s

    def code_all(self, x: torch.Tensor) -> Iterator[tuple[float, bytes, torch.Tensor, float, float]]:
        """(setting, bytes, reconstruction, encode s, decode s) at every setting.

        A progressive codec is coded once at its top quality: the file of k iterations is that file's first k
        sections under a header saying k (the bytes `compress` writes for k iterations), and its image is the
        decoder's after k iterations, its decode time the time to get there. Its encode time is measured only
        for the whole file (NaN for the prefixes)."""
        if self.classical is not None or not self.learned.progressive:
            for setting in self.settings:
                yield (setting, *self.code(x, setting))
            return
        wanted = set(self.settings)
        from licodec.api import compress_tensor, pack
        from licodec.bitstream import unpack
        from licodec.codecs.base import Encoded

        codec = self.learned
        start = time.perf_counter()
        data = compress_tensor(x, 3, codec, self.settings[-1])
        encode_s = time.perf_counter() - start
        header, sections = unpack(data)
        whole = Encoded(sections, header.height, header.width, header.quality)
        start = time.perf_counter()
        with torch.no_grad():
            for k, x_hat in enumerate(codec.decompress_each(whole), start=1):
                decode_s = time.perf_counter() - start
                if k not in wanted:
                    continue
                prefix = Encoded(sections[: codec.sections_for(k)], header.height, header.width, k)
                yield (float(k), pack(codec, prefix, 3), x_hat, encode_s if k == self.settings[-1] else math.nan,
                       decode_s)


_CODERS: dict[tuple[str, tuple | None, int | None], Coder] = {}
_PROGRESS = None  # in a worker process: the queue that each finished point is announced on


def _coder(name: str, settings: Sequence[float] | None = None, effort: int | None = None) -> Coder:
    key = (name, None if settings is None else tuple(settings), effort)
    if key not in _CODERS:
        _CODERS[key] = Coder(name, settings, effort)
    return _CODERS[key]


def parse_qualities(specs: Sequence[str], codecs: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """`--qualities` values -> codec -> the settings to evaluate. A value is `CODEC=Q1,Q2,...` for one codec, or
    `Q1,Q2,...` for every learned codec (classical codecs keep their sweep unless named); CODEC is a codec as
    `--codec` gave it or its label (LABEL=FILE). Codecs not mentioned keep every setting."""
    chosen: dict[str, tuple[float, ...]] = {}
    for spec in specs:
        name, _, values = spec.rpartition("=")
        try:
            numbers = tuple(float(v) for v in values.split(",") if v.strip())
        except ValueError:
            raise LicodecError(f"--qualities {spec!r}: expected [CODEC=]Q1,Q2,... with numbers") from None
        by_label = {**{split_label(c)[0]: c for c in codecs}, **{c: c for c in codecs}}  # LABEL or as given
        if name and name not in by_label:
            raise LicodecError(f"--qualities {spec!r}: {name} is not among the evaluated codecs")
        for codec in [by_label[name]] if name else [c for c in codecs if c not in CLASSICAL]:
            chosen[codec] = numbers
    return chosen


def evaluate_image(path: Path, codecs: list[str], settings: dict[str, tuple] | None = None,
                   progress: Callable[[str], None] | None = None, effort: int | None = None) -> list[Point]:
    """Every codec at each of its settings (all of them, or those `settings` names) on one image; `progress` is
    called with the codec's name after each point. Overfitted codecs encode at `effort` (None: their default)."""
    x, _ = read_image(path)
    height, width = x.shape[-2:]
    points = []
    for name in codecs:
        coder = _coder(name, (settings or {}).get(name), effort)
        for setting, data, x_hat, encode_s, decode_s in coder.code_all(x):
            points.append(Point(coder.name, setting, path.name, len(data), 8 * len(data) / (height * width),
                                psnr(x, x_hat), psnr_y(x, x_hat), ms_ssim(x, x_hat), encode_s, decode_s,
                                coder.source))
            if progress is not None:
                progress(name)
            elif _PROGRESS is not None:
                _PROGRESS.put(name)
    return points


def make_thumbnails(images: list[Path], size: int, folder: Path) -> list[Path]:
    """size x size thumbnails of `images` (each its centre square, Lanczos-downsampled), written to `folder` as
    PNG: Toderici et al. 2016 [1] evaluate on 32x32 thumbnails, where a codec's fixed overhead counts."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    thumbnails = []
    for path in images:
        with Image.open(path) as image:
            image = image.convert("RGB")
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            square = image.crop((left, top, left + side, top + side))
            target = folder / f"{path.stem}.png"
            square.resize((size, size), Image.Resampling.LANCZOS).save(target)
        thumbnails.append(target)
    return thumbnails


def _worker_init(progress=None) -> None:
    global _PROGRESS
    torch.set_num_threads(1)
    _PROGRESS = progress


def _reusable(earlier: list[Point], codecs: list[str], images: list[Path],
              settings: dict[str, tuple] | None = None,
              effort: int | None = None) -> dict[tuple[str, str], list[Point]]:
    """(codec, image name) -> the earlier points that stand for it, made by the same source: all of its settings
    (an overfitted codec: those of its settings that were coded, each encode being a unit of its own)."""
    found: dict[tuple[str, str], list[Point]] = {}
    for point in earlier:
        found.setdefault((point.codec, point.image), []).append(point)
    names = {path.name for path in images}
    labels = {split_label(name)[0]: name for name in codecs}
    keep = {}
    for (label, image), group in found.items():
        if label not in labels or image not in names:
            continue
        codec = labels[label]
        coder = _coder(codec, (settings or {}).get(codec), effort)
        wanted = {float(s) for s in coder.settings}
        if coder.effort is not None:  # overfitted: every point made the same way counts on its own
            points = {p.quality: p for p in group if p.source == coder.source and p.quality in wanted}
            if points:
                keep[codec, image] = [points[q] for q in sorted(points)]
        elif all(p.source == coder.source for p in group) and sorted(p.quality for p in group) == sorted(wanted):
            keep[codec, image] = sorted(group, key=lambda p: p.quality)
    return keep


def _units(codecs: list[str], images: list[Path], kept: dict[tuple[str, str], list[Point]],
           settings: dict[str, tuple], effort: int | None) -> list[tuple[int, str, tuple | None]]:
    """The work left: (image index, codec, settings or None for all of them); an overfitted codec's encodes are
    one unit each (minutes apiece), so that they spread over the workers and an interruption loses one."""
    work = []
    for i, path in enumerate(images):
        for name in codecs:
            coder = _coder(name, settings.get(name), effort)
            done = {p.quality for p in kept.get((name, path.name), [])}
            if coder.effort is not None:
                work += [(i, name, (setting,)) for setting in coder.settings if float(setting) not in done]
            elif not done:
                work.append((i, name, settings.get(name)))
    return work


def evaluate(codecs: list[str], images: list[Path], jobs: int = 1, progress: bool = True,
             reuse: list[Point] = (), settings: dict[str, tuple] | None = None,
             effort: int | None = None, save: Path | None = None) -> list[Point]:
    """Code every image with every codec at each of its settings (all, or those `settings` names per codec), for
    real, `jobs` (image, codec) pairs at a time; points of `reuse` made by the same weights or libraries at the
    same settings are kept instead of coding again. The progress bar counts points and names the codec. Overfitted
    codecs encode at `effort` (their default when None), which their points' source records. With `save`, the
    points so far are written there (as points.csv, atomically) each time a unit of work ends (a codec on an
    image; an overfitted codec's single encode), so that an interrupted evaluation continues with `reuse`."""
    settings = settings or {}
    for name in codecs:
        _coder(name, settings.get(name), effort)  # fail early, in this process, on an unknown codec or a bad setting
    kept = _reusable(list(reuse), codecs, images, settings, effort)
    work = _units(codecs, images, kept, settings, effort)
    total = sum(len(chosen) if chosen is not None else len(_coder(name, None, effort).settings)
                for _, name, chosen in work)
    coded: dict[tuple[int, str], list[Point]] = {}

    def collected() -> list[Point]:
        points: list[Point] = []
        for i, path in enumerate(images):
            for name in codecs:
                points += sorted(kept.get((name, path.name), []) + coded.get((i, name), []), key=lambda p: p.quality)
        return points

    def finished(key: tuple[int, str], points: list[Point]) -> None:
        coded.setdefault(key, []).extend(points)
        if save is not None:
            write_points(save, collected())

    def unit_settings(name: str, chosen: tuple | None) -> dict[str, tuple]:
        return {**settings, name: chosen} if chosen is not None else settings

    extra = {"effort": effort} if effort is not None else {}
    with tqdm(total=total, desc="evaluating", unit="point", disable=not progress) as bar:

        def tick(name: str) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update(1)

        if jobs <= 1:
            for i, name, chosen in work:
                finished((i, name), evaluate_image(images[i], [name], unit_settings(name, chosen), tick, **extra))
        else:
            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init, initargs=(queue,)) as pool:
                futures = {pool.submit(evaluate_image, images[i], [name], unit_settings(name, chosen), **extra):
                           (i, name) for i, name, chosen in work}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    while not queue.empty():
                        tick(queue.get())
                    for future in done:
                        finished(futures[future], future.result())
            while not queue.empty():
                tick(queue.get())
    return collected()


def write_points(path: Path, points: list[Point]) -> None:
    """Write `points` as the points.csv that `read_points` reads (through a temporary file: a reader, or an
    interruption, never sees half a file)."""
    rows = as_rows(points)
    if not rows:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)


def read_points(path: Path) -> list[Point]:
    """The points of a points.csv that an evaluation wrote (none when the file is missing, unreadable or older than
    the `source` column: nothing is reused that cannot be checked, and everything is coded again)."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    if not rows or "source" not in rows[0]:
        return []

    def setting(text: str) -> int | float:  # as it was written: 5 stays 5, 0.1 and 1.0 stay floats
        return int(text) if text.lstrip("-").isdigit() else float(text)

    # Each column read back as its Point field's type (the annotations are strings under `annotations`).
    types = {f.name: {"int": int, "float": float}.get(f.type, str) for f in fields(Point)} | {"quality": setting}
    try:
        return [Point(**{key: types[key](value) for key, value in row.items()}) for row in rows]
    except (KeyError, TypeError, ValueError):  # a column missing, added or damaged
        return []


def mean_curves(points: list[Point]) -> dict[str, list[dict]]:
    """Per codec and setting: the mean over images of bpp, PSNR, PSNR-Y, MS-SSIM and times."""
    curves: dict[str, list[dict]] = {}
    codecs = list(dict.fromkeys(p.codec for p in points))
    for codec in codecs:
        for setting in sorted({p.quality for p in points if p.codec == codec}):
            group = [p for p in points if p.codec == codec and p.quality == setting]
            curves.setdefault(codec, []).append({
                "quality": setting,
                "images": len(group),
                **{field: float(np.mean([getattr(p, field) for p in group]))
                   for field in ("bpp", "psnr", "psnr_y", "ms_ssim", "encode_s", "decode_s")},
            })
    return curves


def as_rows(points: list[Point]) -> list[dict]:
    """The points as plain dicts (for JSON and CSV)."""
    return [asdict(p) for p in points]
