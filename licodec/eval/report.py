"""Markdown tables of an evaluation: mean RD points and BD-rates against an anchor."""

from __future__ import annotations

import math

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


def markdown_report(curves: dict[str, list[dict]], anchor: str) -> str:
    """The RD points and the BD-rate table, in Markdown."""
    lines = ["| codec | setting | bpp | PSNR (dB) | PSNR-Y (dB) | MS-SSIM | encode (s) | decode (s) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, points in curves.items():
        for p in points:
            lines.append(f"| {name} | {p['quality']:g} | {p['bpp']:.4f} | {p['psnr']:.2f} | {p['psnr_y']:.2f} | "
                         f"{p['ms_ssim']:.4f} | {p['encode_s']:.3f} | {p['decode_s']:.3f} |")
    lines += ["", f"BD-rate against {anchor} (negative: fewer bits at equal quality)", "",
              "| codec | PSNR, cubic | PSNR, pchip | MS-SSIM dB, cubic | MS-SSIM dB, pchip |",
              "|---|---:|---:|---:|---:|"]
    for row in bd_table(curves, anchor):
        cells = [f"{row[k]:+.1f}%" if not math.isnan(row[k]) else "n/a"
                 for k in ("psnr cubic", "psnr pchip", "ms-ssim cubic", "ms-ssim pchip")]
        lines.append(f"| {row['codec']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
