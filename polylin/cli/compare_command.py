"""``polylin compare``: the backend comparison report (time, memory, quality, parity, plots)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from polylin.cli.output import print_table, require, table_of

WORKLOAD_NAMES = ("book", "large", "tiny-batch")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare the backends: time, throughput, memory, quality and parity, as a report",
        description=(
            "Run a workload on each backend (each backend and gradient mode in a process of its own) and "
            "write report.json, report.md, report.html and the PNG plots."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  polylin compare --backends numpy,jax,torch,mxnet --workload book --out report/\n"
            "  polylin compare --workload large --repeats 2\n"
            "  polylin compare --workload book --n 20000 --features 8 --batch-size 64\n"
            "  polylin compare --backends jax --backend-option jax:fused_epoch=false\n"
            "  polylin compare --backends torch --partial parts/torch.json     (measure only)\n"
            "  polylin compare --merge parts/*.json --out report/              (merge and write)\n"
        ),
    )
    parser.add_argument(
        "--backends",
        default="all",
        help="comma-separated backends, or 'all' (numpy,jax,torch,mxnet; the default)",
    )
    parser.add_argument(
        "--workload", default="book", choices=WORKLOAD_NAMES, help="named workload (default book)"
    )
    parser.add_argument("--out", default="report", help="folder for the report files (default report/)")
    parser.add_argument(
        "--grad", default="autodiff,analytic", help="gradient modes, comma-separated (default both)"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="fits per variant (default: the workload's)"
    )
    parser.add_argument("--device", default=None, help="cpu (default), gpu, gpu:N")
    parser.add_argument("--quick", action="store_true", help="the small versions of the workloads (seconds)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds before one variant is stopped")
    custom = parser.add_argument_group("custom sizes (override the workload's own settings)")
    custom.add_argument("--n", type=int, default=None, help="examples")
    custom.add_argument("--features", type=int, default=None, help="features (d)")
    custom.add_argument("--batch-size", type=int, default=None)
    custom.add_argument("--lr", type=float, default=None)
    custom.add_argument("--epochs", type=int, default=None)
    custom.add_argument("--steps-per-epoch", type=int, default=None, help="minibatch steps per epoch")
    custom.add_argument("--dtype", default=None, choices=("float32", "float64"))
    custom.add_argument("--seed", type=int, default=None)
    custom.add_argument("--noise", type=float, default=None, help="standard deviation of the label noise")
    parser.add_argument(
        "--backend-option",
        action="append",
        default=[],
        metavar="BACKEND:KEY=VALUE",
        help="an option for one backend, e.g. jax:fused_epoch=false (repeatable)",
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--partial",
        metavar="FILE",
        default=None,
        help="measure only, and write the partial result (JSON) to FILE; no plots",
    )
    modes.add_argument(
        "--merge",
        metavar="FILE",
        nargs="+",
        default=None,
        help="merge partial results into one report in --out (parity against NumPy's)",
    )
    parser.add_argument("--label", default="", help="a name for this environment in a partial result")
    parser.set_defaults(run=run)


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_backend_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["jax:fused_epoch=false"]`` → ``{"jax": {"fused_epoch": False}}``."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        backend, sep, assignment = item.partition(":")
        key, eq, value = assignment.partition("=")
        if not (sep and eq and backend and key):
            raise ValueError(
                f"--backend-option {item!r} must look like BACKEND:KEY=VALUE, e.g. jax:fused_epoch=false."
            )
        options.setdefault(backend.strip(), {})[key.strip()] = _value(value.strip())
    return options


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.partial is None:
        require("matplotlib", "rich", needed_for="polylin compare's report (its plots and tables)")
    from polylin.report import load_partials, merge, write_report
    from polylin.report.runner import measure_variants
    from polylin.report.workloads import get_workload

    if args.merge:
        from polylin.report.runner import check_backends

        report = merge(load_partials(args.merge), expected_backends=check_backends(args.backends))
        files = write_report(report, args.out)
        _print_summary(report, files)
        return 0

    overrides = {
        "n": args.n,
        "d": args.features,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "dtype": args.dtype,
        "seed": args.seed,
        "noise": args.noise,
        "repeats": args.repeats,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    workload = get_workload(args.workload, quick=args.quick, **overrides)
    options = parse_backend_options(args.backend_option)
    partial = measure_variants(
        workload,
        args.backends,
        grad_modes=args.grad,
        device=args.device,
        backend_options=options,
        timeout=args.timeout,
        label=args.label,
        progress=_progress,
    )
    if args.partial is not None:
        path = Path(args.partial)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(partial, indent=2, sort_keys=True))
        print(f"wrote the partial result for {workload.name} to {path}")
        return 0
    report = merge([partial])
    files = write_report(report, args.out)
    _print_summary(report, files)
    return 0


def _print_summary(report: dict[str, Any], files: dict[str, Path]) -> None:
    from polylin.report.tables import headline, timing_table

    if report["variants"]:
        timing = timing_table(report)
        columns = [0, 2, 3, 6, 8]
        rows = [[row[i] for i in columns] for row in timing.rows]
        print_table(table_of([timing.header[i] for i in columns], rows))
    for line in headline(report):
        print(line)
    for item in report["skipped"]:
        print(f"skipped {item['variant']}: {item['reason']}")
    for item in report["failed"]:
        print(f"FAILED {item['variant']}: {item['reason']}")
    for name in ("json", "markdown", "html"):
        if name in files:
            print(f"wrote {files[name]}")
