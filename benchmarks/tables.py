"""The benchmark's printed tables: ``rich`` tables, or plain columns where rich is not installed.

Either way a row prints as its cells separated by spaces, first cell first on
the line (no frame), so that the output can be read and grepped alike.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import IO

#: The width tables are laid out for when the output is not a terminal (a file, a pipe, a test).
PIPE_WIDTH = 300


def print_table(
    rows: Sequence[Sequence[str]], *, title: str | None = None, out: IO[str] | None = None
) -> None:
    """Print ``rows`` (the first is the header) as a table, with ``title`` above it."""
    stream = sys.stdout if out is None else out
    try:
        from rich import box
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        _print_plain(rows, title, stream)
        return
    terminal = stream.isatty()
    width = shutil.get_terminal_size((PIPE_WIDTH, 24)).columns if terminal else PIPE_WIDTH
    console = Console(file=stream, width=width, highlight=False, soft_wrap=False, force_terminal=terminal)
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        title=title,
        title_justify="left",
        title_style=None,
        header_style="bold" if terminal else "",
    )
    for name in rows[0]:
        table.add_column(str(name), no_wrap=not terminal, overflow="fold")
    for row in rows[1:]:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)
    stream.flush()


def _print_plain(rows: Sequence[Sequence[str]], title: str | None, stream: IO[str]) -> None:
    if title:
        print(title, file=stream)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=stream)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=stream)
    stream.flush()
