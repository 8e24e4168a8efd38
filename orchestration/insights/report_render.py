"""The daily report's sections as one self-contained HTML page and as Markdown. Pure.

Self-contained: the style sheet is inline and the charts are base64 `data:` URIs, so the file can be
mailed, attached or opened from the Dagster storage without anything beside it. The markup is written with
the standard library (`html.escape` on every value) rather than a template engine: the page is a fixed
sequence of headings, paragraphs, tables and images, and each value passes through one escaping function.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from orchestration.insights.report import Chart, Section, Table

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 60em;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
img { max-width: 100%; }
.generated { color: #777; font-size: 0.9em; }
"""


def data_uri(chart: Chart) -> str:
    return "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii")


def render_html(title: str, sections: Sequence[Section], footer: str) -> str:
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<section><h2>{e(section.title)}</h2>")
        parts += [f"<p>{e(paragraph)}</p>" for paragraph in section.paragraphs]
        if section.table is not None:
            parts.append(_html_table(section.table))
        if section.chart is not None:
            parts.append(f'<img alt="{e(section.chart.alt)}" src="{data_uri(section.chart)}">')
        parts.append("</section>")
    parts.append(f'<p class="generated">{e(footer)}</p></body></html>')
    return "\n".join(parts) + "\n"


def _html_table(table: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_markdown(title: str, sections: Sequence[Section], footer: str, charts: bool = True) -> str:
    """The same sections in Markdown; `charts=False` leaves the images out (for a short preview)."""
    lines = [f"# {_md_text(title)}", ""]
    for section in sections:
        lines += [f"## {_md_text(section.title)}", ""]
        for paragraph in section.paragraphs:
            lines += [_md_text(paragraph), ""]
        if section.table is not None:
            lines += [*_md_table(section.table), ""]
        if charts and section.chart is not None:
            lines += [f"![{_md_text(section.chart.alt)}]({data_uri(section.chart)})", ""]
    lines.append(f"_{_md_text(footer)}_")
    return "\n".join(lines) + "\n"


def _md_text(text: str) -> str:
    """Values come from the data (locales, device types): keep them from being read as markup or from
    ending a table row."""
    text = " ".join(text.splitlines()) if text else text
    for special in ("\\", "|", "*", "_", "`", "[", "]", "<", ">", "#"):
        text = text.replace(special, "\\" + special)
    return text


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(_md_text(h) or " " for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(_md_text(cell) for cell in row) + " |" for row in table.rows]
    if not table.rows:
        lines.append("| " + " | ".join(["-"] * len(table.headers)) + " |")
    return lines
