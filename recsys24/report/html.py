"""The report page: one self-contained ``index.html`` (inline CSS, relative image
links to PNGs in the same folder, no scripts, nothing fetched from the network)."""

from __future__ import annotations

import html
import math

import polars as pl

STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; display: block; margin: 1em 0; }
summary { cursor: pointer; color: #135; }
.note { color: #555; }
"""


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def table_html(df: pl.DataFrame, best: tuple[str, ...] = (), digits: int = 4) -> str:
    """An HTML table of ``df``; in the ``best`` columns the highest value is bold."""
    top = {c: df[c].max() for c in best if df.height > 1}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
    rows = []
    for r in df.iter_rows(named=True):
        cells = []
        for c, v in r.items():
            text = _cell(v, digits)
            cells.append(f"<td><b>{text}</b></td>" if c in top and v is not None and v == top[c] else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _img(name: str) -> str:
    return f"<img src='{html.escape(name)}' alt='{html.escape(name)}'>"


def page(title: str, sections: list[tuple[str, str, list]]) -> str:
    """The whole page: ``sections`` = (heading, HTML body, images under it); an image is a PNG file name,
    or ``(summary, [file names])``: images folded under that summary until the reader opens them."""
    head = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>")
    parts = [head]
    for heading, body, images in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
        for image in images:
            if isinstance(image, str):
                parts.append(_img(image))
            else:
                summary, names = image
                parts.append(f"<details><summary>{html.escape(summary)}</summary>"
                             + "".join(_img(n) for n in names) + "</details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
