"""A fit's fixed costs, timed through the public helpers: validation, the learning-rate bound, the orders.

    python -m benchmarks.fixed_costs                     # this checkout
    python -m benchmarks.fixed_costs --base /work/base   # this checkout and an older one, alternated

Each figure is the median of ``--repeats`` calls after one warm-up call, on
float32 data made once per shape: ``host_training_data`` (float32 data, and
float64 data trained in float32), ``warn_if_unstable`` (its first call on a
data set, and a repeat on the same one, which a tree with a cache answers
from it), and ``epoch_order`` (one epoch's permutation). With ``--base`` the
two trees are run in turn, in fresh processes, ``--rounds`` times each
(A B, B A, ...: the tree that opens a round alternates), and each figure is
the median over the rounds.

This module imports nothing from the benchmarks package, so that it measures
whichever polylin its ``PYTHONPATH`` points at.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

SHAPES = ((200_000, 100), (1_000, 2), (1_000_000, 100))


def _median_ms(fn: Callable[[], object], repeats: int, before: Callable[[], object] | None = None) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def measure(shapes: tuple[tuple[int, int], ...], repeats: int) -> dict[str, Any]:
    """``{"polylin": path, "rows": [{"shape", "part", "ms"}, ...]}`` for the polylin on ``sys.path``."""
    import numpy as np

    import polylin
    import polylin.stability as stability
    from polylin.backends import get_backend
    from polylin.randomness import epoch_order
    from polylin.validation import host_training_data

    backend = get_backend("numpy")
    forget = getattr(stability, "clear_cache", None)
    rows = []
    for n, d in shapes:
        X, y = polylin.synthetic_data(np.linspace(-1.0, 1.0, d), 0.5, n, seed=0, dtype="float32")
        X64, y64 = X.astype(np.float64), y.astype(np.float64)
        parts: dict[str, Callable[[], object]] = {
            "validation (float32)": lambda X=X, y=y: host_training_data(X, y, backend),
            "validation (float64 data)": lambda X=X64, y=y64: host_training_data(X, y, backend),
            "epoch_order": lambda n=n: epoch_order(0, 1, n),
        }
        for part, fn in parts.items():
            rows.append({"shape": [n, d], "part": part, "ms": _median_ms(fn, repeats)})

        def bound(X: Any = X) -> object:
            return stability.warn_if_unstable(X, 1e-3, loss="squared", fit_intercept=True)

        rows.append({"shape": [n, d], "part": "bound, first call", "ms": _median_ms(bound, repeats, forget)})
        rows.append({"shape": [n, d], "part": "bound, same data again", "ms": _median_ms(bound, repeats)})
    return {"polylin": polylin.__file__, "rows": rows}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fixed_costs", description=__doc__)
    parser.add_argument("--base", default=None, help="an older checkout to measure beside this one")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tree, alternated (with --base)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--shapes", default=",".join(f"{n}x{d}" for n, d in SHAPES), help="e.g. 1000x2")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON (one tree)")
    args = parser.parse_args(argv)
    try:
        args.shapes = tuple(tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",") if s)
    except ValueError:
        parser.error(f"--shapes: {args.shapes!r} is not a list like 200000x100,1000x2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.base is None:
        result = measure(args.shapes, args.repeats)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"polylin: {result['polylin']}")
            for row in result["rows"]:
                n, d = row["shape"]
                print(f"{n:>9} x {d:<4} {row['part']:<28} {row['ms']:9.3f} ms")
        return 0
    from benchmarks.ab import alternate, checkout_root

    forwarded = [
        "--json",
        "--repeats",
        str(args.repeats),
        "--shapes",
        ",".join(f"{n}x{d}" for n, d in args.shapes),
    ]
    runs = alternate(
        {"new": checkout_root(), "old": args.base},
        "benchmarks.fixed_costs",
        forwarded,
        args.rounds,
        stdout_json=True,
    )
    table: dict[tuple[tuple[int, int], str], dict[str, list[float]]] = {}
    for tree, result in runs:
        for row in result["rows"]:
            key = (tuple(row["shape"]), row["part"])
            table.setdefault(key, {"new": [], "old": []})[tree].append(row["ms"])
    print(f"{'shape':>16} {'part':<28} {'old ms':>9} {'new ms':>9} {'new/old':>8}")
    for (shape, part), times in table.items():
        old, new = statistics.median(times["old"]), statistics.median(times["new"])
        print(f"{shape[0]:>9} x {shape[1]:<4} {part:<28} {old:9.3f} {new:9.3f} {new / old:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
