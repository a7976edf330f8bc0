"""``report.md``: the report as Markdown tables, for a terminal or a pull request."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polylin.report.tables import Table, headline, tables

FIGURE_CAPTIONS = {
    "loss_vs_epoch": "Loss after each epoch, every variant overlaid, and the difference from NumPy",
    "loss_vs_time": "Loss against cumulative training time",
    "throughput": "Steady-state throughput",
}


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table) -> str:
    lines = [f"## {table.title}", ""]
    if table.rows:
        lines.append("| " + " | ".join(_cell(h) for h in table.header) + " |")
        lines.append("|" + "|".join("---" for _ in table.header) + "|")
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
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


def write_markdown(report: dict[str, Any], path: Path, figures: Mapping[str, Path] | None = None) -> Path:
    relative = {name: p.name for name, p in (figures or {}).items()}
    path.write_text(to_markdown(report, relative), encoding="utf-8")
    return path
