"""The ``polylin`` command line. Each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from polylin._version import __version__

#: Sub-command modules, each with ``register(subparsers)``; their order is the help's order.
COMMAND_MODULES = (
    "polylin.cli.fit_command",
    "polylin.cli.backends_command",
    "polylin.cli.experiment_command",
    "polylin.cli.plot_command",
    "polylin.cli.compare_command",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="polylin",
        description="Linear regression from scratch, one training loop on NumPy, JAX, PyTorch and MXNet.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polylin fit --backend torch             the book's run on PyTorch\n"
            "  polylin fit --backend all               every installed backend, side by side\n"
            "  polylin backends                        what is installed\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"polylin {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, ImportError, FloatingPointError) as exc:
        print(f"polylin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("polylin: interrupted", file=sys.stderr)
        return 130
