"""``polylin experiment``: run one of the chapter's exercises, print its numbers, save its figure."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from polylin.cli.output import require


def register(subparsers: Any) -> None:
    from polylin.experiments import ALIASES, EXPERIMENTS

    aliases = ", ".join(sorted(a for a in ALIASES if not a.isdigit()))
    listing = "\n".join(
        f"  {k}. {name:20} {e.question}" for k, (name, e) in enumerate(EXPERIMENTS.items(), 1)
    )
    parser = subparsers.add_parser(
        "experiment",
        help="run one of the chapter's exercises as an experiment (numbers and a figure)",
        description="Run one of the chapter's exercises: print its numbers, and with --out save its figure.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            f"experiments (by name or number; also {aliases}):\n"
            f"{listing}\n\n"
            "examples:\n"
            "  polylin experiment learning-rate --backend torch --out lr.png\n"
            "  polylin experiment 6 --backend all --out hessian.svg\n"
            "  polylin experiment ohm --backend jax,numpy --out ohm.png  (ohm-jax.png, ohm-numpy.png)\n"
        ),
    )
    parser.add_argument("name", help="which experiment (name or number 1-9)")
    parser.add_argument(
        "--backend",
        default=None,
        help="backend name, a comma-separated list or 'all' (default: numpy; all installed for "
        "second-derivatives)",
    )
    parser.add_argument("--out", default=None, help="write the figure here (.png or .svg)")
    parser.set_defaults(run=run)


def _outputs(out: str | None, backends: list[str]) -> list[Path | None]:
    if out is None:
        return [None] * len(backends)
    path = Path(out)
    if len(backends) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{name}{path.suffix}") for name in backends]


def run(args: argparse.Namespace) -> int:
    from polylin.experiments import get
    from polylin.experiments._common import backend_list

    experiment = get(args.name)
    if args.out is not None:
        require("matplotlib", needed_for=f"--out {args.out} (the experiment's figure)")
        from polylin.plot import FORMATS

        if Path(args.out).suffix.lower() not in FORMATS:
            raise ValueError(f"--out {args.out!r} must end in {' or '.join(FORMATS)}.")
    if experiment.multi_backend:
        jobs: list[Any] = [backend_list(args.backend or "all")]
    else:
        jobs = backend_list(args.backend or "numpy")
    names = [job if isinstance(job, str) else "all" for job in jobs]
    for job, target in zip(jobs, _outputs(args.out, names), strict=True):
        result = experiment.function(job)
        print(result.summary())
        if target is not None:
            from polylin.plot import save

            print(f"figure: {save(result.figure(), target)}")
        print()
    return 0
