"""The evaluation report as one self-contained HTML page: tables, RD plots and side-by-side crops.

The page has its CSS inline and loads nothing from elsewhere; the images are relative links to PNGs next to it, so
the output folder can be moved, zipped or served as a whole. Every piece of text is HTML-escaped. The tables come
as Markdown pipe tables (what `eval.report.markdown_report` writes) and are converted here, simply: pipe tables
with their alignment row, `#` headings, paragraphs and `code` spans; nothing else of Markdown.
"""

from __future__ import annotations

import html
import math
import os
import re
import urllib.parse
from pathlib import Path

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; background: #fff;
       max-width: 1200px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.7em; }
th { background: #f3f3f5; }
tbody tr:nth-child(even) { background: #fafafa; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.95em; }
figure { margin: 0.5em; }
.plots img { max-width: 100%; height: auto; border: 1px solid #eee; }
.row { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: flex-start; }
.crop img { image-rendering: pixelated; display: block; border: 1px solid #ccc; }
figcaption { font-size: 0.85em; color: #444; margin-top: 0.2em; }
footer { margin-top: 3em; font-size: 0.8em; color: #888; }
"""

_ALIGN = {(True, True): "center", (False, True): "right", (True, False): "left"}


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(part)}</code>" if i % 2 else html.escape(part) for i, part in enumerate(parts))


def _cells(line: str) -> list[str]:
    """The cells of one pipe-table row; `\\|` is a literal pipe."""
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)]


def _is_separator(cells: list[str]) -> bool:
    return all(re.fullmatch(r":?-+:?", cell) for cell in cells)


def _table(rows: list[str]) -> str:
    """One Markdown pipe table as an HTML table; the first row is the header when the second is `|---|`."""
    cells = [_cells(row) for row in rows]
    header: list[str] = []
    aligns: list[str | None] = []
    if len(cells) > 1 and _is_separator(cells[1]):
        header = cells[0]
        aligns = [_ALIGN.get((cell.startswith(":"), cell.endswith(":"))) for cell in cells[1]]
        cells = cells[2:]

    def cell(tag: str, text: str, column: int) -> str:
        align = aligns[column] if column < len(aligns) else None
        style = f' style="text-align: {align}"' if align else ""
        return f"<{tag}{style}>{_inline(text)}</{tag}>"

    out = ["<table>"]
    if header:
        out.append("<thead><tr>" + "".join(cell("th", text, i) for i, text in enumerate(header)) + "</tr></thead>")
    out.append("<tbody>")
    out += ["<tr>" + "".join(cell("td", text, i) for i, text in enumerate(row)) + "</tr>" for row in cells]
    out.append("</tbody></table>")
    return "\n".join(out)


def markdown_to_html(markdown: str) -> str:
    """Pipe tables, `#` headings (shifted below the page title), paragraphs and `code` spans, as HTML."""
    blocks: list[str] = []
    table: list[str] = []
    paragraph: list[str] = []

    def end_table() -> None:
        if table:
            blocks.append(_table(table))
            table.clear()

    def end_paragraph() -> None:
        if paragraph:
            blocks.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        heading = re.fullmatch(r"(#{1,6})\s+(.*)", stripped)
        if stripped.startswith("|"):
            end_paragraph()
            table.append(stripped)
            continue
        end_table()
        if heading:
            end_paragraph()
            level = min(len(heading.group(1)) + 1, 6)
            blocks.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif stripped:
            paragraph.append(stripped)
        else:
            end_paragraph()
    end_table()
    end_paragraph()
    return "\n".join(blocks)


def _link(path: Path, out_dir: Path) -> str:
    """The escaped relative URL of `path` as seen from a page in `out_dir`."""
    relative = Path(os.path.relpath(Path(path).resolve(), out_dir.resolve())).as_posix()
    return html.escape(urllib.parse.quote(relative))


def _number(value: object, pattern: str) -> str | None:
    """`value` formatted, or None where it is missing or NaN."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else pattern.format(value)


def _crop(crop: dict, out_dir: Path) -> str:
    details = [text for text in (_number(crop.get("bpp"), "{:.3f} bpp"), _number(crop.get("psnr"), "{:.2f} dB"))
               if text]
    caption = html.escape(str(crop["codec"])) + (": " + html.escape(", ".join(details)) if details else "")
    alt = html.escape(f"{crop['codec']} {' '.join(details)}".strip())
    return (f'<figure class="crop"><img src="{_link(crop["image"], out_dir)}" alt="{alt}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _crop_rows(crops: list[dict], out_dir: Path) -> str:
    """The crops in rows, one per value of their optional "group" key (say, the image), in order of appearance."""
    groups: dict[str, list[dict]] = {}
    for crop in crops:
        groups.setdefault(str(crop.get("group", "")), []).append(crop)
    out = []
    for group, members in groups.items():
        if group:
            out.append(f"<h3>{html.escape(group)}</h3>")
        out.append('<div class="row">' + "".join(_crop(crop, out_dir) for crop in members) + "</div>")
    return "\n".join(out)


def html_report(out_dir: Path, title: str, markdown_tables: str, plots: list[Path], crops: list[dict],
                details: str = "") -> Path:
    """Write `out_dir/report.html` and return its path: the summary (`markdown_tables`), the plots, the
    `details` (more Markdown tables, e.g. every RD point), then the crops.

    `plots` are PNG paths (under `out_dir`, linked relatively). Each crop is {"codec": str, "bpp": float,
    "psnr": float, "image": Path of a PNG under `out_dir`}, with an optional "group" (for instance the image's name
    and the target rate) that puts crops side by side in one row; bpp or PSNR that are None or NaN (an original)
    are left out of the caption. The file is written to a temporary name, then renamed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"<h1>{html.escape(title)}</h1>"]
    if markdown_tables.strip():
        sections.append(f"<section>\n<h2>Results</h2>\n{markdown_to_html(markdown_tables)}\n</section>")
    if plots:
        figures = "".join(f'<figure><img src="{_link(plot, out_dir)}" alt="{html.escape(Path(plot).stem)}">'
                          f"<figcaption>{html.escape(Path(plot).name)}</figcaption></figure>" for plot in plots)
        sections.append(f'<section class="plots">\n<h2>Rate-distortion</h2>\n{figures}\n</section>')
    if details.strip():
        sections.append(f"<section>\n<h2>Every point</h2>\n{markdown_to_html(details)}\n</section>")
    if crops:
        sections.append(f"<section>\n<h2>Side by side</h2>\n{_crop_rows(crops, out_dir)}\n</section>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(sections) + "\n<footer>Written by licodec.</footer>\n</body>\n</html>\n")
    path = out_dir / "report.html"
    temporary = path.with_name(".report.html.part")
    temporary.write_text(page, encoding="utf-8")
    os.replace(temporary, path)
    return path
