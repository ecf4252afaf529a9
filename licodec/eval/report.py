"""Markdown tables of an evaluation: mean RD points and BD-rates against an anchor."""

from __future__ import annotations

import math
from pathlib import Path

from licodec.errors import LicodecError
from licodec.eval.bdrate import bd_rate
from licodec.eval.metrics import ms_ssim_db


def _curve(points: list[dict], metric: str) -> tuple[list[float], list[float]]:
    """(rates, qualities) of the points where the metric is defined."""
    pairs = [(p["bpp"], p["psnr"] if metric == "psnr" else ms_ssim_db(p["ms_ssim"])) for p in points]
    pairs = [(r, q) for r, q in pairs if math.isfinite(q)]
    return [r for r, _ in pairs], [q for _, q in pairs]


def bd_table(curves: dict[str, list[dict]], anchor: str) -> list[dict]:
    """BD-rate of every codec against `anchor`: PSNR and MS-SSIM (dB), cubic and pchip."""
    rows = []
    for name, points in curves.items():
        row = {"codec": name}
        for metric in ("psnr", "ms-ssim"):
            for method in ("cubic", "pchip"):
                value = 0.0 if name == anchor else bd_rate(_curve(curves[anchor], metric), _curve(points, metric),
                                                           method)
                row[f"{metric} {method}"] = value
        rows.append(row)
    return rows


def bd_summary(curves: dict[str, list[dict]], anchor: str) -> str:
    """The BD-rate table against `anchor`, in Markdown."""
    lines = [f"BD-rate against {anchor} (negative: fewer bits at equal quality)", "",
             "| codec | PSNR, cubic | PSNR, pchip | MS-SSIM dB, cubic | MS-SSIM dB, pchip |",
             "|---|---:|---:|---:|---:|"]
    for row in bd_table(curves, anchor):
        cells = [f"{row[k]:+.1f}%" if not math.isnan(row[k]) else "n/a"
                 for k in ("psnr cubic", "psnr pchip", "ms-ssim cubic", "ms-ssim pchip")]
        lines.append(f"| {row['codec']} | " + " | ".join(cells) + " |")
    if any("n/a" in line for line in lines):
        lines += ["", "n/a: a BD-rate needs four points or more on each curve (after dropping points that do not "
                      "improve quality) over a common quality range."]
    return "\n".join(lines) + "\n"


def points_table(curves: dict[str, list[dict]]) -> str:
    """The mean RD point of every codec at every setting, in Markdown."""
    lines = ["| codec | setting | bpp | PSNR (dB) | PSNR-Y (dB) | MS-SSIM | encode (s) | decode (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, points in curves.items():
        for p in points:
            lines.append(f"| {name} | {p['quality']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['psnr_y']:.2f} | "
                         f"{p['ms_ssim']:.4f} | {_seconds(p['encode_s'])} | {_seconds(p['decode_s'])} |")
    return "\n".join(lines) + "\n"


def markdown_report(curves: dict[str, list[dict]], anchor: str) -> str:
    """The BD-rate summary, then the RD points, in Markdown."""
    return bd_summary(curves, anchor) + "\n" + points_table(curves)


def measured_note(images: list, dataset: str, available: int | None = None) -> str:
    """One paragraph saying which images were measured: their count, the dataset, and their names."""
    names = [Path(p).name for p in images]
    shown = ", ".join(names) if len(names) <= 30 else ", ".join(names[:30]) + f", ... ({len(names) - 30} more)"
    subset = f" (the first {len(names)} of {available})" if available and available > len(names) else ""
    return f"Measured on {len(names)} image{'s' if len(names) != 1 else ''} of {dataset}{subset}: {shown}.\n"


#: The published datasets whose images licodec can recognise (the name of its dataset table's entry).
PUBLISHED_IMAGES = {"kodak": "kodak", "tecnick": "tecnick"}


def coverage_warning(images: list, published_dataset: str, thumbnails: int = 0) -> str:
    """A warning when published curves are means over other images than those measured ("" when the same)."""
    from licodec.data.datasets import _is_member, describe

    known = PUBLISHED_IMAGES.get(published_dataset)
    if known is None:
        return (f"Warning: licodec cannot tell which images the published {published_dataset} curves cover; they "
                "may be other images than those measured here.\n")
    entry = describe(known)
    names = {Path(p).name for p in images}
    same = (len(names) == entry.count and not thumbnails
            and all(_is_member(entry, Path(name)) for name in names))
    if same:
        return ""
    what = f"{thumbnails}x{thumbnails} thumbnails of " if thumbnails else ""
    return (f"Warning: the published curves are means over the {entry.count} {published_dataset} images at full "
            f"size; this evaluation measured {what}{len(names)} image{'s' if len(names) != 1 else ''}. The published "
            "curves and the cross-check compare different images: read their shapes, not their BD-rates.\n")


def _seconds(value: float) -> str:
    """A time in the table; "-" where none was measured (a progressive codec's prefixes come from one encode)."""
    return "-" if math.isnan(value) else f"{value:.3f}"


#: Our codec name -> the published curve of the same codec (CompressAI's results on Kodak).
PUBLISHED_TWINS = {
    "jpeg": "compressai/jpeg",
    "webp": "compressai/webp",
    "jpeg2000": "compressai/jpeg2000",
    "heif": "compressai/bpg_444_x265_ycbcr",
    "avif": "compressai/av1",
    "balle2017-factorized": "compressai/compressai-bmshj2018-factorized_mse_cuda",
    "balle2018-hyperprior": "compressai/compressai-bmshj2018-hyperprior_mse_cuda",
}


def cross_check(curves: dict[str, list[dict]], published: list, anchor: str) -> str:
    """Our BD-rates against `anchor` beside the same pairs computed from the published curves (PSNR, cubic)."""
    by_name = {c.name: c for c in published}
    twin_anchor = by_name.get(PUBLISHED_TWINS.get(anchor, ""))
    if twin_anchor is None or twin_anchor.psnr is None:
        return ""
    lines = [f"Cross-check against published results (BD-rate vs {anchor}, PSNR, Bjontegaard cubic)", "",
             "| codec | ours | published | difference (points) |", "|---|---:|---:|---:|"]
    for name, points in curves.items():
        twin = by_name.get(PUBLISHED_TWINS.get(name, ""))
        if name == anchor or twin is None or twin.psnr is None:
            continue
        ours = bd_rate(_curve(curves[anchor], "psnr"), _curve(points, "psnr"))
        theirs = bd_rate((twin_anchor.bpp, twin_anchor.psnr), (twin.bpp, twin.psnr))
        lines.append(f"| {name} (published: {twin.name}) | {ours:+.1f}% | {theirs:+.1f}% | {ours - theirs:+.1f} |")
    return "\n".join(lines) + "\n"


def nearest_rate(coder, x, target_bpp: float) -> tuple[float, bytes, object]:
    """The setting of `coder` whose file of `x` is nearest `target_bpp`, found by bisection over all the settings
    the codec takes (its rate grows with them): (setting, bytes, reconstruction). A target outside the codec's
    range gives its nearest end: the closest rate it can reach."""
    settings = coder.all_settings()
    pixels = x.shape[-2] * x.shape[-1]
    coded = {}

    def bpp(k: int) -> float:
        if k not in coded:
            data, x_hat, _, _ = coder.code(x, settings[k])
            coded[k] = (len(data) * 8 / pixels, data, x_hat)
        return coded[k][0]

    low, high = 0, len(settings) - 1
    if bpp(low) < target_bpp < bpp(high):
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if bpp(middle) <= target_bpp else (low, middle)
    best = min((low, high), key=lambda k: abs(bpp(k) - target_bpp))
    return settings[best], coded[best][1], coded[best][2]


def _crops(points, images, crop_bpp: float, out: Path, progress: bool = False) -> list[dict]:
    """Side-by-side crops of one image: each codec at the setting whose rate on that image is nearest `crop_bpp`
    (searched over all its settings, not only the evaluated ones), and the original."""
    from licodec.eval.metrics import psnr
    from licodec.eval.run import Coder
    from licodec.io import read_image, to_pil

    path = next((p for p in images if "kodim23" in p.name), images[0])
    x, _ = read_image(path)
    height, width = x.shape[-2:]
    size = min(256, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    crop_dir = out / "crops"
    crop_dir.mkdir(parents=True, exist_ok=True)
    original = crop_dir / "original.png"
    to_pil(x[..., top : top + size, left : left + size]).save(original)
    crops = [{"codec": f"original ({path.name})", "bpp": None, "psnr": None, "image": original, "group": path.name}]
    from tqdm import tqdm

    for codec in tqdm(list(dict.fromkeys(p.codec for p in points)), desc=f"crops at {crop_bpp:g} bpp", unit="codec",
                      disable=not progress):
        evaluated = [p for p in points if p.codec == codec and p.image == path.name]
        effort = next((int(p.source.rsplit("+effort", 1)[1]) for p in evaluated if "+effort" in p.source), None)
        coder = Coder(codec, effort=effort)
        if coder.effort is not None and evaluated:  # overfitted: one encode, at the evaluated setting nearest
            setting = min(evaluated, key=lambda p: abs(p.bpp - crop_bpp)).quality
            data, x_hat, _, _ = coder.code(x, setting)
        else:
            setting, data, x_hat = nearest_rate(coder, x, crop_bpp)
        target = crop_dir / f"{codec}.png"
        to_pil(x_hat[..., top : top + size, left : left + size]).save(target)
        crops.append({"codec": f"{codec} @ {setting:g}", "bpp": len(data) * 8 / (height * width),
                      "psnr": psnr(x, x_hat), "image": target, "group": path.name})
    return crops


def choose_published(everything: list, names: list[str] | None, codecs: list[str]) -> list:
    """The published curves to draw: with `names`, each one by its full name or by a fragment that names exactly
    one curve (`LicodecError` for none or several); without, the published twin of each evaluated codec."""
    from licodec.eval.anchors import find

    exact = {curve.name: curve for curve in everything}
    if names is None:
        return [exact[PUBLISHED_TWINS[c]] for c in codecs if PUBLISHED_TWINS.get(c) in exact]
    chosen = []
    for name in names:
        matches = [exact[name]] if name in exact else find(everything, name)
        if len(matches) != 1:
            found = ", ".join(c.name for c in matches[:8]) + (", ..." if len(matches) > 8 else "")
            raise LicodecError(f"--published-curves {name!r} names {len(matches)} published curves"
                               + (f" ({found}); give one full name" if matches else ""))
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def write_compressai_json(folder: Path, curves: dict[str, list[dict]], note: str) -> list[Path]:
    """One JSON per codec in CompressAI's results format (what `compressai.utils.plot` reads): name, description,
    and per setting `bpp`, `psnr-rgb`, `ms-ssim-rgb` (also under `psnr` and `ms-ssim`, the keys of older CompressAI
    releases) and `encoding_time` / `decoding_time` (null where not measured)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, points in curves.items():
        column = {key: [None if math.isnan(p[key]) else p[key] for p in points]
                  for key in ("bpp", "psnr", "ms_ssim", "encode_s", "decode_s")}
        results = {"bpp": column["bpp"], "psnr-rgb": column["psnr"], "ms-ssim-rgb": column["ms_ssim"],
                   "psnr": column["psnr"], "ms-ssim": column["ms_ssim"], "quality": [p["quality"] for p in points],
                   "encoding_time": column["encode_s"], "decoding_time": column["decode_s"]}
        path = folder / f"{name}.json"
        path.write_text(json.dumps({"name": name, "description": f"licodec eval: {note}", "results": results},
                                   indent=1))
        written.append(path)
    return written


def write_report(out: Path, points: list, images: list, anchor: str, published: Path | None = None,
                 published_names: list[str] | None = None, crop_bpp: float = 0.3, dataset: str = "kodak",
                 published_dataset: str = "kodak", available: int | None = None, thumbnails: int = 0,
                 progress: bool = False) -> str:
    """Write results.json, points.csv, compressai/<codec>.json, report.md, rd_psnr.png, rd_ms-ssim.png, crops/ and
    report.html; returns the Markdown report.

    The report opens with what was measured (the images, their count, and of how many when `available` says so),
    then the BD-rate summary and the plots, then the points. Published curves (from `published`) are drawn only as
    `choose_published` picks them, and a warning says when they are means over other images than those measured."""
    import json

    from licodec.eval.anchors import load_published
    from licodec.eval.html import html_report
    from licodec.eval.plots import rd_plot
    from licodec.eval.run import as_rows, mean_curves, write_points

    out.mkdir(parents=True, exist_ok=True)
    curves = mean_curves(points)
    rows = as_rows(points)
    measured = measured_note(images, dataset, available)
    (out / "results.json").write_text(json.dumps({"images": [p.name for p in images], "count": len(images),
                                                  "anchor": anchor, "mean": curves, "points": rows}, indent=1))
    write_points(out / "points.csv", points)
    write_compressai_json(out / "compressai", curves, measured.strip())
    summary = measured + "\n" + bd_summary(curves, anchor)
    drawn = []
    if published is not None:
        everything = load_published(published, published_dataset)
        drawn = choose_published(everything, published_names, list(curves))
        warning = coverage_warning(images, published_dataset, thumbnails)
        summary = measured + ("\n" + warning if warning else "") + "\n" + bd_summary(curves, anchor)
        check = cross_check(curves, everything, anchor)
        summary += ("\n" + check) if check else ""
        summary += ("\nPublished curves drawn: " + ", ".join(f"`{c.name}`" for c in drawn) + ".\n" if drawn
                    else "\nNo published curve drawn.\n")
    count = f"{len(images)} image{'s' if len(images) != 1 else ''}"
    plots = [rd_plot(curves, metric, out / f"rd_{metric}.png", drawn, title=f"{dataset}, {count}: {metric}")
             for metric in ("psnr", "ms-ssim")]
    details = points_table(curves)
    figures = "".join(f"![{p.stem}]({p.name})\n" for p in plots)
    report = summary + "\n" + figures + "\n" + details
    (out / "report.md").write_text(report)
    crops = _crops(points, images, crop_bpp, out, progress)
    html_report(out, f"licodec evaluation on {dataset}", summary, plots, crops, details)
    return report
