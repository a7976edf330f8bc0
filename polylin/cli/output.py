"""What the command line needs beyond polylin: the optional packages, checked first, and rich tables.

A command that needs an optional package calls :func:`require` before it
does any work, so that a missing package stops it at once with the install
command, not after a long run. Tables are :class:`rich.table.Table`: on a
terminal rich draws them at the terminal's width; into a pipe or a file
they are plain text at their natural width (no wrapping, no colour, no
trailing blanks), so that ``grep`` and ``awk`` read one row per line.
rich is imported only inside these functions: ``import polylin`` stays
free of it.
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.table import Table

#: Import name → (distribution, the polylin extra that installs it).
OPTIONAL_PACKAGES = {
    "rich": ("rich", "cli"),
    "matplotlib": ("matplotlib", "plot"),
    "sklearn": ("scikit-learn", "sklearn"),
}


def installed(module: str) -> bool:
    """Whether ``module`` can be found (``sys.modules[module] = None`` counts as absent)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(*modules: str, needed_for: str) -> None:
    """Raise :class:`ImportError` naming each missing package and its install command."""
    missing = [m for m in modules if not installed(m)]
    if not missing:
        return
    names = [OPTIONAL_PACKAGES.get(m, (m, ""))[0] for m in missing]
    extras = sorted({OPTIONAL_PACKAGES[m][1] for m in missing if m in OPTIONAL_PACKAGES})
    install = f"pip install 'polylin[{','.join(extras)}]'" if extras else "pip install " + " ".join(names)
    verb = "is" if len(names) == 1 else "are"
    raise ImportError(
        f"{needed_for} needs {' and '.join(names)}, which {verb} not installed; install with: {install}"
    )


def new_table(columns: Sequence[str]) -> Table:
    """A borderless table with these column headers, cells two spaces apart."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", highlight=False)
    for column in columns:
        table.add_column(Text(column), overflow="fold")
    return table


def table_of(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """A :func:`new_table` holding ``rows``; every cell is shown as its text (no rich markup)."""
    from rich.text import Text

    table = new_table(columns)
    for row in rows:
        table.add_row(*(Text(str(cell)) for cell in row))
    return table


def render(table: Table) -> str:
    """The table as plain text at its natural width, without trailing blanks."""
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, highlight=False, emoji=False).print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())


def print_table(table: Table, file: TextIO | None = None) -> None:
    """Print the table: drawn by rich on a terminal, as :func:`render`'s plain text elsewhere."""
    stream = sys.stdout if file is None else file
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        from rich.console import Console

        Console(file=stream, highlight=False, emoji=False).print(table)
    else:
        print(render(table), file=stream, flush=True)
