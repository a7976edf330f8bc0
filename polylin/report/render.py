"""The report's three files: ``report.json``, ``report.md`` and ``report.html``.

* ``report.json``: the whole report, machine-readable, keys sorted so that two runs diff cleanly.
* ``report.md``: the tables of :mod:`polylin.report.tables` as Markdown, for a terminal or a pull request.
* ``report.html``: one self-contained page (CSS inline, figures embedded as base64 PNG).
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polylin.report.tables import Table, headline, tables

FIGURE_CAPTIONS = {
    "loss_vs_epoch": "Loss after each epoch, every variant overlaid, and the difference from NumPy",
    "loss_vs_time": "Loss against cumulative training time",
    "throughput": "Steady-state throughput",
}


# -- report.json -------------------------------------------------------------------------------------
def _clean(value: Any) -> Any:
    """NaN and infinities become ``null`` (JSON has no spelling for them); NumPy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(report: dict[str, Any]) -> str:
    """The report as indented JSON with sorted keys."""
    return json.dumps(_clean(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- report.md ---------------------------------------------------------------------------------------
def _markdown_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    lines = [f"## {table.title}", ""]
    if table.rows:
        lines.append("| " + " | ".join(_markdown_cell(h) for h in table.header) + " |")
        lines.append("|" + "|".join("---" for _ in table.header) + "|")
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows]
    else:
        lines.append("None.")
    for note in table.notes:
        lines += ["", note]
    return "\n".join(lines)


def to_markdown(report: dict[str, Any], figures: Mapping[str, str] | None = None) -> str:
    """The report as Markdown; ``figures`` maps figure names to image paths relative to the file."""
    workload = report["manifest"]["workload"]
    parts = [
        f"# polylin backend comparison: {workload['name']}",
        "",
        f"{workload['description']} Created {report['created']}, "
        f"polylin {report['manifest']['polylin_version']}.",
        "",
        *(f"- {line}" for line in headline(report)),
    ]
    for table in tables(report):
        parts += ["", table_markdown(table)]
    if figures:
        parts += ["", "## Plots"]
        for name, path in figures.items():
            parts += ["", f"![{FIGURE_CAPTIONS.get(name, name)}]({path})"]
    return "\n".join(parts) + "\n"


# -- report.html -------------------------------------------------------------------------------------
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1250px; padding: 0 1.2em; color: #1b1b1b; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } tr:nth-child(even) td { background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pass { color: #11772d; font-weight: 600; } .fail { color: #b00020; font-weight: 700; }
.note { color: #555; max-width: 70em; } figure { margin: 1.2em 0; }
figure img { max-width: 100%; border: 1px solid #e0e0e0; }
figcaption { color: #555; font-size: 13px; } ul.headline { padding-left: 1.2em; }
details pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 12px; }
"""


def _html_cell(text: str, numeric: bool = True) -> str:
    escaped = html.escape(str(text))
    css = ""
    if text.startswith("PASS"):
        css = ' class="pass"'
    elif text.startswith("FAIL"):
        css = ' class="fail"'
    elif numeric and (text[:1].isdigit() or (text[:1] == "-" and text[1:2].isdigit())):
        css = ' class="num"'
    return f"<td{css}>{escaped}</td>"


def table_html(table: Table) -> str:
    numeric = table.title != "Manifest"  # the manifest's values are text, even when they start with a digit
    out = [f"<h2>{html.escape(table.title)}</h2>"]
    if table.rows:
        out.append(
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
            + "</tr></thead><tbody>"
        )
        out += ["<tr>" + "".join(_html_cell(c, numeric) for c in row) + "</tr>" for row in table.rows]
        out.append("</tbody></table>")
    else:
        out.append("<p>None.</p>")
    out += [f'<p class="note">{html.escape(note)}</p>' for note in table.notes]
    return "\n".join(out)


def figure_html(name: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(FIGURE_CAPTIONS.get(name, name))
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def to_html(report: dict[str, Any], figures: Mapping[str, Path] | None = None) -> str:
    """The report as one HTML page, with the figures read from ``figures`` and embedded."""
    workload = report["manifest"]["workload"]
    title = f"polylin backend comparison: {workload['name']}"
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(workload['description'])} Created {html.escape(report['created'])}, "
        f"polylin {html.escape(report['manifest']['polylin_version'])}.</p>",
        '<ul class="headline">'
        + "".join(f"<li>{html.escape(line)}</li>" for line in headline(report))
        + "</ul>",
    ]
    all_tables = tables(report)
    body += [table_html(t) for t in all_tables[:1]]
    if figures:
        body.append("<h2>Plots</h2>")
        body += [figure_html(name, path) for name, path in figures.items()]
    body += [table_html(t) for t in all_tables[1:]]
    body.append(
        "<details><summary>report.json</summary><pre>" + html.escape(to_json(report)) + "</pre></details>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
