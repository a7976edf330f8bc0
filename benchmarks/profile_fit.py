"""Where a whole :func:`polylin.fit` spends its time: a pyinstrument profile of a few fits of a workload.

    python -m benchmarks.profile_fit                        # jax, autodiff, large, 3 fits
    python -m benchmarks.profile_fit --backend torch --grad analytic --workload book --fits 20
    python -m benchmarks.profile_fit --workload book --fits 400 --backend-option fused_epoch=false

One warm-up fit (compiling, first-touch allocations) runs first and is left
out. The tree sums every profiled fit: divide by ``--fits`` for one fit. The
last line gives the fits' wall-clock times, measured outside the profiler:
each of them for up to :data:`LISTED_FITS` fits, else their median and range.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from polylin.cli.fit_command import backend_options
from polylin.report.measure import fit_once
from polylin.report.tables import seconds
from polylin.report.workloads import get_workload, make_data, training_plan

#: Sampling interval: fine enough to see a 1 ms phase in a fit of a few hundred ms.
INTERVAL_S = 0.0005
#: Up to this many profiled fits, the last line lists each one's time.
LISTED_FITS = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_fit", description=__doc__)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--grad", default="autodiff", choices=("autodiff", "analytic"))
    parser.add_argument("--workload", default="large", choices=("book", "large", "tiny-batch"))
    parser.add_argument("--fits", type=int, default=3, help="profiled fits after the warm-up fit")
    parser.add_argument("--quick", action="store_true", help="the workload's small quick-mode size")
    parser.add_argument(
        "--backend-option", action="append", default=[], metavar="KEY=VALUE",
        help="a backend option as the CLI takes it, e.g. fused_epoch=false (JAX's per-step path)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.fits < 1:
        parser.error(f"--fits must be at least 1; got {args.fits}")
    try:
        from pyinstrument import Profiler
    except ImportError:
        parser.error("pyinstrument is not installed: pip install 'polylin[bench]'")

    try:
        options = backend_options(args.backend_option, args.backend)
    except ValueError as error:
        parser.error(str(error))
    workload = get_workload(args.workload, quick=args.quick)
    X, y = make_data(workload)
    plan = training_plan(workload, X, y)
    fit_once(plan, args.backend, args.grad, backend_options=options)  # compile and warm up, unprofiled
    profiler = Profiler(interval=INTERVAL_S)
    walls = []
    profiler.start()
    for _ in range(args.fits):
        _, wall = fit_once(plan, args.backend, args.grad, backend_options=options)
        walls.append(wall)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))
    settings = "".join(f" {key}={value}" for key, value in options.items())
    label = f"{args.backend}/{args.grad}{settings} on {args.workload}"
    print(f"{label}: {args.fits} fits, whole fit {_walls(walls)}")
    return 0


def _walls(walls: list[float]) -> str:
    """``1.2 ms, 1.3 ms (median 1.25 ms)`` for a few fits; ``median 401 µs (376 µs to 2.1 ms)`` for many."""
    median = f"median {seconds(statistics.median(walls))}"
    if len(walls) <= LISTED_FITS:
        return f"{', '.join(seconds(w) for w in walls)} ({median})"
    return f"{median} ({seconds(min(walls))} to {seconds(max(walls))})"


if __name__ == "__main__":
    raise SystemExit(main())
