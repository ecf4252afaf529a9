import math
import re
from html.parser import HTMLParser

from PIL import Image

from licodec.eval.html import html_report, markdown_to_html

TABLES = """| codec | quality | bpp | PSNR (dB) |
|---|---:|:---:|---:|
| balle2018-hyperprior | 1 | 0.1500 | 28.00 |
| <script>alert(1)</script> & co | 2 | `0.3` | 31.00 |

BD-rate against jpeg (negative: fewer bits at equal quality)

| codec | PSNR, cubic |
|---|---:|
| jpeg | +0.0% |
"""


class Collector(HTMLParser):
    """Start tags with their attributes, and the text, of a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Collector:
    collector = Collector()
    collector.feed(page)
    return collector


def png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)
    return path


def test_report_page(tmp_path):
    out = tmp_path / "out"
    plots = [png(out / "rd-psnr.png"), png(out / "rd-ms-ssim.png")]
    crops = [
        {"codec": "original", "bpp": None, "psnr": math.nan, "image": png(out / "crops" / "kodim23-original.png"),
         "group": "kodim23"},
        {"codec": "balle2018-hyperprior", "bpp": 0.2512, "psnr": 31.204, "group": "kodim23",
         "image": png(out / "crops" / "kodim23 balle.png")},
        {"codec": "jpeg <q=10>", "bpp": 0.33, "psnr": 26.6, "image": png(out / "crops" / "kodim01-jpeg.png"),
         "group": "kodim01"},
    ]
    path = html_report(out, "Kodak & friends <eval>", TABLES, plots, crops)
    assert path == out / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<title>Kodak &amp; friends &lt;eval&gt;</title>" in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert not re.search(r"(src|href)=\"(https?:|//|/)", page) and "<link" not in page
    parsed = parse(page)
    images = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    assert images == ["rd-psnr.png", "rd-ms-ssim.png", "crops/kodim23-original.png", "crops/kodim23%20balle.png",
                      "crops/kodim01-jpeg.png"]
    assert [tag for tag, _ in parsed.tags].count("table") == 2
    assert [tag for tag, _ in parsed.tags].count("th") == 6
    aligns = [attrs.get("style") for tag, attrs in parsed.tags if tag == "td"][:4]
    assert aligns == [None, "text-align: right", "text-align: center", "text-align: right"]
    assert "<code>0.3</code>" in page
    rows = re.findall(r'<div class="row">(.*?)</div>', page)
    assert len(rows) == 2 and rows[0].count("<figure") == 2 and rows[1].count("<figure") == 1
    text = " ".join(parsed.text)
    assert "balle2018-hyperprior: 0.251 bpp, 31.20 dB" in text and "jpeg <q=10>: 0.330 bpp, 26.60 dB" in text
    assert "original" in text and "nan" not in text.lower().split()
    assert not list(out.glob(".*part"))


def test_markdown_headings_paragraphs_and_empty_sections(tmp_path):
    converted = markdown_to_html("# Kodak\n\nBD-rate against `jpeg`\nover 24 images\n" + TABLES)
    assert converted.startswith("<h2>Kodak</h2>\n<p>BD-rate against <code>jpeg</code> over 24 images</p>\n<table>")
    assert converted.count("<table>") == 2 and converted.count("<p>") == 2 and "|" not in converted
    assert "<td>a | b</td>" in markdown_to_html("| x |\n|---|\n| a \\| b |")
    page = html_report(tmp_path, "t", "", [], []).read_text()
    assert "<table>" not in page and "Side by side" not in page and "<h1>t</h1>" in page
