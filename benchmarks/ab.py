"""A/B across commits in one run: the benchmark on this checkout and on an older one, alternated.

    python -m benchmarks.ab --base /work/base --workloads book --backends numpy,jax --repeats 10
    python -m benchmarks.ab --base ../old --quick --rounds 2

Each round runs ``python -m benchmarks.run`` once per tree, in a fresh
process whose ``PYTHONPATH`` puts that tree's ``polylin`` first, and the
tree that opens a round alternates (A B, B A, A B, ...), so that neither
tree always runs first, on a machine the other has just warmed or heated:
the benchmark code itself, its hand-written reference loops included,
is always this checkout's, so both trees are measured against the same
references with the same harness. Each row's ratios are the median over the
rounds; the table sets the two trees side by side with new/old. Only the
ratio rows run (``--skip`` covers every other section of the benchmark:
import, floors, scikit-learn, memory, the cold fits, the parts, the
book-setup row, scale and out-of-core).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.tables import print_table

#: What the A/B runs leave out: every section but the rows, whose ratios are compared.
AB_SKIP = "import,floors,sklearn,memory,cold,parts,book-setup,scale,out-of-core"
#: The ratios compared, as (column title, key of a bench row).
RATIOS = (("whole fit / ref", "whole_ratio"), ("epochs / ref", "epochs_ratio"), ("steady epoch", "ratio"))
#: new/old above this is marked: more than the run-to-run noise of a row on a shared machine.
WORSE_AT = 1.05


def checkout_root() -> str:
    """The root of the checkout this module belongs to."""
    return str(Path(__file__).resolve().parents[1])


@contextmanager
def benchmarks_only() -> Iterator[str]:
    """A directory holding nothing but this checkout's ``benchmarks`` package (a link to it)."""
    shim = tempfile.mkdtemp(prefix="polylin-ab-")
    try:
        os.symlink(Path(checkout_root()) / "benchmarks", Path(shim) / "benchmarks")
        yield shim
    finally:
        shutil.rmtree(shim, ignore_errors=True)


def run_in_tree(
    tree: str, module: str, args: Sequence[str], shim: str, *, stdout_json: bool = False
) -> dict[str, Any]:
    """``python -m module args`` with ``tree``'s polylin and this checkout's benchmarks; its JSON result.

    The process runs in ``shim`` (so that the working directory shadows
    nothing) with ``PYTHONPATH=shim:tree``. With ``stdout_json`` the result is
    the last line of its output; otherwise it is the file given after ``--json``.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([shim, str(Path(tree).resolve())])
    env.setdefault("JAX_PLATFORMS", "cpu")
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=shim, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"python -m {module} on {tree} failed (exit {done.returncode}):\n{done.stdout[-2000:]}"
            f"{done.stderr[-4000:]}"
        )
    if stdout_json:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    else:
        result = json.loads(Path(args[list(args).index("--json") + 1]).read_text())
    where = str(result.get("polylin", ""))
    if where and not Path(where).resolve().is_relative_to(Path(tree).resolve()):
        raise RuntimeError(f"the run meant for {tree} imported polylin from {where}")
    return result


def alternate(
    trees: Mapping[str, str], module: str, args: Sequence[str], rounds: int, *, stdout_json: bool = False
) -> list[tuple[str, dict[str, Any]]]:
    """``rounds`` runs of ``module`` on each tree: ``[(label, result), ...]`` in the order they ran.

    Round ``k`` runs the trees in the order given when ``k`` is even and in reverse when it is odd
    (A B, B A, A B, ...), so that an effect of going first (or second) falls on both trees alike.
    """
    out = []
    with benchmarks_only() as shim:
        for number in range(rounds):
            ordered = list(trees.items())
            for label, tree in ordered if number % 2 == 0 else reversed(ordered):
                run_args = list(args)
                if not stdout_json:
                    run_args += ["--json", str(Path(shim) / f"{label}-{number}.json")]
                print(f"round {number + 1}/{rounds}: {label} ({tree})", file=sys.stderr, flush=True)
                out.append((label, run_in_tree(tree, module, run_args, shim, stdout_json=stdout_json)))
    return out


def compare(runs: Sequence[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each row's ratios on each tree, the median over its rounds, and new/old."""
    collected: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = {}
    for label, result in runs:
        for row in result.get("rows", []):
            entry = collected.setdefault((row["workload"], row["row"]), {})
            for _, key in RATIOS:
                value = row.get(key)
                if value is not None:
                    entry.setdefault(key, {}).setdefault(label, []).append(float(value))
    table = []
    for (workload, row), ratios in collected.items():
        record: dict[str, Any] = {"workload": workload, "row": row}
        for _, key in RATIOS:
            per_tree = ratios.get(key, {})
            old = statistics.median(per_tree["old"]) if per_tree.get("old") else None
            new = statistics.median(per_tree["new"]) if per_tree.get("new") else None
            record[key] = {"old": old, "new": new, "new_over_old": None if not (old and new) else new / old}
        table.append(record)
    return table


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def print_comparison(table: Sequence[dict[str, Any]], base: str) -> None:
    header = ["workload", "row"]
    for title, _ in RATIOS:
        header += [f"{title} old", "new", "new/old"]
    rows = [header]
    for record in table:
        cells = [record["workload"], record["row"]]
        for _, key in RATIOS:
            ratio = record[key]
            change = _cell(ratio["new_over_old"])
            if ratio["new_over_old"] is not None and ratio["new_over_old"] > WORSE_AT:
                change += " WORSE"
            cells += [_cell(ratio["old"]), _cell(ratio["new"]), change]
        rows.append(cells)
    print_table(rows, title=f"new = {checkout_root()}, old = {base}; medians over the rounds")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ab",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", required=True, help="the older checkout (its root, holding polylin/)")
    parser.add_argument("--workloads", default="book,tiny-batch,large")
    parser.add_argument("--backends", default="numpy,jax,torch,mxnet")
    parser.add_argument("--repeats", type=int, default=None, help="repeats of every row in each run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tree, alternated")
    parser.add_argument("--quick", action="store_true", help="the benchmark's small workloads")
    parser.add_argument("--json", default=None, help="write the comparison here too")
    args = parser.parse_args(argv)
    if not (Path(args.base) / "polylin" / "__init__.py").is_file():
        parser.error(f"--base: {args.base} holds no polylin/ package; pass the root of an older checkout")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1; got {args.rounds}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    forwarded = ["--workloads", args.workloads, "--backends", args.backends, "--skip", AB_SKIP]
    if args.repeats is not None:
        forwarded += ["--repeats", str(args.repeats)]
    if args.quick:
        forwarded.append("--quick")
    runs = alternate({"new": checkout_root(), "old": args.base}, "benchmarks.run", forwarded, args.rounds)
    table = compare(runs)
    print_comparison(table, args.base)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"base": args.base, "new": checkout_root(), "rows": table}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
