"""``nox -s bench``: print polylin's whole fit and its epochs over hand-written code, the floors and targets.

    python -m benchmarks.run                 # everything (about 10 minutes on 2 cores)
    python -m benchmarks.run --quick         # small workloads, a minute (or POLYLIN_BENCH_QUICK=1)
    python -m benchmarks.run --workloads book --backends numpy,torch

Every row times the public call ``polylin.fit(X, y, ...)`` from NumPy float32
arrays, warm (the median over repeats after the row's first call in this
process) and cold (the first call in a fresh process, ``--skip cold`` to
leave out), against the hand-written loop's epochs on data it prepared
itself: the loop's setup is not counted, polylin's is. Each row prints both
ratios, whole fit / reference epochs and polylin's epochs / reference
epochs, beside the steady-epoch ratio, and a second table splits the whole
fit into its parts. Every ratio is measured side by side in this one
process; absolute times on a shared machine are context. Results also go to
``bench-results/bench.json`` (``--json``) so they can be quoted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import (
    BEST_OVER_GATHER_TARGET,
    EACH_OVER_GATHER_TARGET,
    MEMORY_TARGET,
    OVERHEAD_TARGET,
    ROWS,
    WHOLE_FIT_TARGET,
    Row,
    bandwidth_floors,
    epoch_floor_pass,
    final_loss_only,
    floor_passes,
    floor_ratios,
    import_time,
    measure_row,
    peak_memory,
    permutation_seconds,
    sklearn_sgd,
    sklearn_verdict,
    whole_fit_floor,
)
from benchmarks.tables import print_table
from benchmarks.wholefit import PARTS, book_setup, cold_fits, fit_parts
from polylin.backends import BACKENDS, is_installed
from polylin.report.manifest import environment, host, now
from polylin.report.render import to_json
from polylin.report.tables import mebibytes, seconds
from polylin.report.workloads import TrainingPlan, Workload, get_workload, make_data, training_plan

WORKLOAD_NAMES = ("book", "large", "tiny-batch")
BACKEND_NAMES = ("numpy", "jax", "torch", "mxnet")
SKIPPABLE = ("import", "floors", "sklearn", "memory", "cold", "parts", "book-setup", "scale", "out-of-core")
#: Repeats (fits of polylin, runs of each loop) per row, and a budget after which a row stops at 2.
REPEATS = {"book": 30, "large": 5, "tiny-batch": 5}
ROW_BUDGET_S = {"book": 30.0, "large": 75.0, "tiny-batch": 60.0}
QUICK_REPEATS = 2
#: Timed fits per row for the parts table, and repeats of the book-setup comparison.
PART_FITS = {"book": 9, "large": 2, "tiny-batch": 3}
BOOK_SETUP_REPEATS = 50


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else seconds(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        default=bool(os.environ.get("POLYLIN_BENCH_QUICK")),
        help="small workloads and 2 repeats (also POLYLIN_BENCH_QUICK=1)",
    )
    parser.add_argument("--workloads", default=",".join(WORKLOAD_NAMES))
    parser.add_argument("--backends", default=",".join(BACKEND_NAMES))
    parser.add_argument("--repeats", type=int, default=None, help="override the repeats of every row")
    parser.add_argument("--json", default="bench-results/bench.json", help="where to write the results")
    parser.add_argument("--skip", default="", help=f"comma-separated: {', '.join(SKIPPABLE)}")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any target is not met")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for option, names, known in (
        ("--workloads", args.workloads, WORKLOAD_NAMES),
        ("--backends", args.backends, BACKEND_NAMES),
        ("--skip", sorted(args.skip), SKIPPABLE),
    ):
        for name in names:
            if name not in known:
                parser.error(f"{option}: {name!r} is not one of {', '.join(known)}")
    return args


@dataclass
class WorkloadRun:
    """One workload's data, plan and measured rows."""

    workload: Workload
    plan: TrainingPlan
    data: tuple[Any, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    floors: dict[str, Any] | None = None

    @property
    def measured(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if "error" not in r]


# -- setup --------------------------------------------------------------------------------------
def new_results(args: argparse.Namespace) -> dict[str, Any]:
    import polylin

    return {
        "schema": "polylin.bench/2",
        "created": now(),
        "quick": args.quick,
        "polylin": polylin.__file__,
        "host": host(),
        "environment": environment(),
        "rows": [],
        "skipped": [],
        "workloads": {},
    }


def installed_backends(names: list[str], results: dict[str, Any]) -> list[str]:
    backends = []
    for name in names:
        if is_installed(name):
            backends.append(name)
        else:
            reason = f"not installed: {BACKENDS[name].install}"
            results["skipped"].append({"backend": name, "reason": reason})
            print(f"SKIPPED {name}: {reason}", flush=True)
    return backends


# -- import ----------------------------------------------------------------------------------------
def run_import(args: argparse.Namespace, results: dict[str, Any]) -> None:
    imp = import_time(runs=3 if args.quick else 7)
    results["import"] = imp
    print(
        f"\nimport polylin: {imp['seconds']['median'] * 1e3:.1f} ms median of {imp['seconds']['n']} fresh "
        f"interpreters (min {imp['seconds']['min'] * 1e3:.1f}, max {imp['seconds']['max'] * 1e3:.1f}; "
        f"numpy alone {imp['numpy_alone_s'] * 1e3:.1f} ms); frameworks imported: "
        f"{', '.join(imp['heavy_modules_imported']) or 'none'}"
        f"{'' if imp['numpy_imported'] else ' (not even numpy)'}; target < 100 ms and none: "
        f"{verdict(imp['pass'])}. Context: the first use of polylin.fit, which loads numpy and the "
        f"training code, then takes {imp['first_use_of_fit_s'] * 1e3:.1f} ms",
        flush=True,
    )


# -- the rows -------------------------------------------------------------------------------------
def error_record(name: str, row: Row, exc: Exception) -> dict[str, Any]:
    return {
        "workload": name,
        "row": row.label,
        "backend": row.backend,
        "grad": row.grad,
        "path": row.path,
        "error": f"{type(exc).__name__}: {exc}",
        "pass": False,
    }


def run_workload(
    name: str, args: argparse.Namespace, backends: list[str], results: dict[str, Any]
) -> WorkloadRun:
    """Measure every row of ``name`` (the large floors first, so that each row can pair them)."""
    workload = get_workload(name, quick=args.quick)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS[name])
    X, y = make_data(workload)
    plan = training_plan(workload, X, y)
    run = WorkloadRun(workload, plan, (X, y))
    results["workloads"][name] = {**workload.as_dict(), "plan": plan.method, "repeats": repeats}
    print(f"\n== {name}: {workload.description} [{plan.method}; {repeats} repeats]", flush=True)
    floor_pass = None
    if name == "large" and "floors" not in args.skip:
        passes = floor_passes(plan.X, plan.orders[0], workload.batch_size)
        run.floors = bandwidth_floors(
            plan.X, plan.orders[0], workload.batch_size, repeats=3 if args.quick else 5, passes=passes
        )
        floor_pass = epoch_floor_pass(passes, run.floors)
    rows = [row for backend in backends for row in ROWS[backend]]
    for row in rows:
        try:
            record = measure_row(
                plan,
                row,
                repeats,
                budget_s=None if args.quick else ROW_BUDGET_S[name],
                confirm_repeats=0 if args.quick else repeats,
                floor=floor_pass,
            )
        except Exception as exc:  # one broken row must not hide the others
            record = error_record(name, row, exc)
            print(f"  {row.label}: ERROR {record['error']}", flush=True)
        else:
            add_parts(record, plan, row, args, name)
            print_row_progress(record)
        run.rows.append(record)
    if "cold" not in args.skip:
        add_cold_fits(run, [row for row in rows if any(r["row"] == row.label for r in run.measured)])
    results["rows"].extend(run.rows)
    return run


def add_parts(
    record: dict[str, Any], plan: TrainingPlan, row: Row, args: argparse.Namespace, name: str
) -> None:
    if "parts" in args.skip:
        return
    try:
        record["parts"] = fit_parts(plan, row, fits=2 if args.quick else PART_FITS[name])
    except Exception as exc:  # the parts are context: a failure is reported, not fatal
        record["parts"] = {"error": f"{type(exc).__name__}: {exc}"}


def add_cold_fits(run: WorkloadRun, rows: list[Row]) -> None:
    cold = cold_fits(run.plan, rows)
    for record in run.measured:
        record["cold"] = cold.get(record["row"], {"error": "not measured"})


def print_row_progress(record: dict[str, Any]) -> None:
    best = next(lp for lp in record["loops"] if lp["name"] == record["best_loop"])
    print(
        f"  {record['row']}: whole fit {_ms(record['polylin']['whole_fit_s']['median'])}, "
        f"{record['best_loop']} epochs {_ms(record['reference_epochs_s']['median'])} "
        f"(whole/ref {_ratio(record['whole_ratio'])}, epochs/ref {_ratio(record['epochs_ratio'])}); steady "
        f"epoch {_ms(record['polylin']['steady_epoch_s']['median'])} vs "
        f"{_ms(best['steady_epoch_s']['median'])}, ratio {_ratio(record['ratio'])} "
        f"[{record['seconds']:.0f} s]",
        flush=True,
    )


def repeats_text(record: dict[str, Any]) -> str:
    """``"30"``, or ``"5+5 (1.18 after 5)"`` for a row confirmed with more repeats after a miss."""
    confirmed = record.get("confirmation_repeats", 0)
    if not confirmed:
        return str(record["repeats"])
    first = record["repeats"] - confirmed
    return f"{first}+{confirmed} ({record['first_ratio']:.2f} after {first})"


def ratio_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    table = [
        [
            "workload",
            "row",
            "whole fit",
            "reference epochs",
            "fastest hand-written loop",
            "whole / ref",
            f"<= {WHOLE_FIT_TARGET:.2f}",
            "least possible",
            "polylin epochs",
            "epochs / ref",
            "steady epoch / ref (paired)",
            "of medians",
            f"<= {OVERHEAD_TARGET:.2f}",
            "µs/step",
            "repeats",
            "same params",
        ]
    ]
    for r in results:
        if "error" in r:
            cells = [r["workload"], r["row"], "ERROR", r["error"][:60]] + [""] * (len(table[0]) - 4)
            cells[6] = cells[12] = "FAIL"
            table.append(cells)
            continue
        table.append(
            [
                r["workload"],
                r["row"],
                _ms(r["polylin"]["whole_fit_s"]["median"]),
                _ms(r["reference_epochs_s"]["median"]),
                r["best_loop"],
                _ratio(r["whole_ratio"]),
                whole_verdict(r),
                _ratio(r.get("least_whole_ratio")),
                _ms(r["polylin"]["epochs_total_s"]["median"]),
                _ratio(r["epochs_ratio"]),
                _ratio(r["ratio"]),
                _ratio(r["ratio_of_medians"]),
                verdict(r["pass"]),
                f"{r['polylin']['us_per_step']:.3g}",
                repeats_text(r),
                "yes" if r["params_match"] else "NO",
            ]
        )
    return table


def whole_verdict(record: dict[str, Any]) -> str:
    """PASS or FAIL, and "FAIL (out of reach)" where even the least possible fit misses the target."""
    text = verdict(record["whole_pass"])
    if record["whole_pass"] is False and record.get("whole_out_of_reach"):
        text += " (out of reach)"
    return text


def out_of_reach_lines(results: list[dict[str, Any]]) -> list[str]:
    """One line per row whose whole-fit target is out of reach, with the figures that say so."""
    lines = []
    for r in results:
        if "error" in r or not r.get("whole_out_of_reach"):
            continue
        extra, ref = r["least_extra_s"], r["reference_epochs_s"]["median"]
        lines.append(
            f"  {r['workload']} {r['row']}: drawing {extra['orders_on_path']} epoch order(s) takes "
            f"{_ms(extra['orders_s'])} and one read of X {_ms(extra['read_s'])}, against "
            f"{_ms(ref)} of reference epochs: no fit whose epochs cost the reference's, with these "
            f"in turn, can be under {_ratio(r['least_whole_ratio'])}x"
        )
    return lines


def parts_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    table = [["workload", "row", "whole (warm)", "cold", *PARTS]]
    for r in results:
        if "error" in r:
            continue
        cold = r.get("cold", {})
        cold_text = _ms(cold["fit_s"]) if "fit_s" in cold else cold.get("error", "")[:30]
        parts = r.get("parts", {})
        if "error" in parts:
            table.append(
                [
                    r["workload"],
                    r["row"],
                    _ms(r["polylin"]["whole_fit_s"]["median"]),
                    cold_text,
                    parts["error"][:60],
                ]
            )
            table[-1] += [""] * (len(table[0]) - len(table[-1]))
            continue
        part_seconds = parts.get("seconds", {})
        table.append(
            [
                r["workload"],
                r["row"],
                _ms(r["polylin"]["whole_fit_s"]["median"]),
                cold_text,
                *(_ms(part_seconds.get(name)) for name in PARTS),
            ]
        )
    return table


def print_rows(results: dict[str, Any]) -> None:
    print(
        "\nThe whole fit against hand-written code. whole fit: the wall time of polylin.fit(X, y, ...) from "
        "NumPy float32 arrays, everything included, warm (the median over repeats after the row's first). "
        "reference epochs: the fastest hand-written loop's epochs in the same repeat (its setup, losses and "
        "orders outside its clock). whole / ref and epochs / ref (polylin's own epochs) are paired: the "
        "median over repeats of the two taken in the same repeat. The steady-epoch ratio (every epoch after "
        "the first) is the overhead of sharing one loop"
    )
    print_table(ratio_rows(results["rows"]))
    beyond = out_of_reach_lines(results["rows"])
    if beyond:
        print(
            f"\nleast possible: 1 + (the orders a fit must draw inside its clock, which the reference draws "
            f"outside its own, + one read of X to check its values) / reference epochs, measured in the same "
            f"run: the least whole fit whose epochs cost the reference's, with nothing beside them. "
            f"Where it is above {WHOLE_FIT_TARGET:.2f}, the whole-fit target is out of reach on this machine "
            f"(the verdict stays FAIL):"
        )
        print("\n".join(beyond))
    if any("parts" in r or "cold" in r for r in results["rows"]):
        print(
            "\nWhere a whole fit goes (the median over a few warm fits with polylin's helpers timed; "
            "'losses & orders' is the training loop less its epochs; 'rest' is the rest of the call, the "
            "result's assembly included). cold: the first fit in a new process, its framework imported first"
        )
        print_table(parts_rows(results["rows"]))


# -- the large workload's floors, scikit-learn and memory ----------------------------------------
def print_floors(run: WorkloadRun, results: dict[str, Any]) -> None:
    assert run.floors is not None  # measured before the large rows
    floors = run.floors
    ratios = floor_ratios(run.measured, floors)
    results["floors"] = {**floors, **ratios}
    print(
        f"\nMemory-bandwidth floors on large (X is {mebibytes(floors['bytes'])}): streaming pass "
        f"{seconds(floors['stream_s'])} ({floors['stream_method']}, {floors['stream_gb_per_s']:.1f} GB/s), "
        f"shuffled gather pass {seconds(floors['gather_s'])} ({floors['gather_method']}, "
        f"{floors['gather_gb_per_s']:.1f} GB/s). An epoch's floor is one of each, "
        f"{seconds(floors['epoch_floor_s'])}: its batches are gathered and its full-data loss is a "
        "streaming pass. That ratio is paired: after its repeats, each row timed the floor straight after "
        "fits of its own (the once-measured floor's ratio is in brackets)"
    )
    table = [["backend", "best polylin epoch", "row", "/ streaming", "/ gather + stream", "target", "result"]]
    for backend, entry in ratios["per_backend"].items():
        table.append(
            [
                backend,
                seconds(entry["epoch_s"]),
                entry["row"],
                f"{entry['over_stream']:.2f}",
                f"{entry['over_epoch_floor']:.2f} ({entry['over_floor_unpaired']:.2f})",
                f"<= {entry['target']:.1f}" if "target" in entry else "(none)",
                verdict(entry.get("pass")),
            ]
        )
    if "best" in ratios:
        best = ratios["best"]
        table.append(
            [
                f"best ({best['backend']})",
                "",
                "",
                "",
                f"{best['over_epoch_floor']:.2f}",
                f"<= {BEST_OVER_GATHER_TARGET:.1f}",
                verdict(best["pass"]),
            ]
        )
    print_table(table)


def run_sklearn(run: WorkloadRun, args: argparse.Namespace, results: dict[str, Any]) -> None:
    workload, plan = run.workload, run.plan
    try:
        sk = sklearn_sgd(workload, plan.X, plan.y, repeats=1 if args.quick else 2)
    except ImportError as exc:
        results["sklearn"] = {"skipped": f"scikit-learn is not installed ({exc})"}
        print(f"\nscikit-learn comparison SKIPPED: {exc}; pip install 'polylin[bench]'")
        return
    sk.update(sklearn_verdict(sk, run.measured, workload.epochs))
    results["sklearn"] = sk
    if "floors" in results:
        sk["floor"] = whole_fit_floor(
            results["floors"],
            workload.epochs,
            permutation_seconds(len(plan.orders[0]), workload.seed),
            sk["fit_s"]["median"],
        )
        sk["out_of_reach"] = sk["floor"]["max_speedup_with_epoch_losses"] < sk["target"]
    print(
        f"\nscikit-learn {sk['version']} SGDRegressor on large, {workload.epochs} epochs: "
        f"{seconds(sk['fit_s']['median'])}, final loss {sk['final_loss_host']:.6g}; polylin "
        f"{sk['polylin_row']} whole fit (warm) {seconds(sk['polylin_fit_s'])}, final loss "
        f"{sk['polylin_final_loss_host']:.6g}: {sk['speedup']:.1f}x faster (target >= "
        f"{sk['target']:.0f}x at equal or better loss, within 1%): {sklearn_speedup_verdict(sk)}"
    )
    print(
        f"  (context: polylin's training epochs alone, {seconds(sk['polylin_training_s'])}, "
        f"are {sk['training_speedup']:.1f}x faster than scikit-learn's whole fit)"
    )
    best_row = next(r for rows in ROWS.values() for r in rows if r.label == sk["polylin_row"])
    sparse = final_loss_only(plan, best_row, sk["fit_s"]["median"], 1 if args.quick else 3)
    if sparse is not None:
        sk["final_loss_only"] = sparse
        print(
            f"  (context: with fit(..., loss_every={sparse['loss_every']}), the full-data loss after the "
            f"last epoch alone, the same row takes {seconds(sparse['final_loss_only_s']['median'])}, "
            f"{sparse['over_default']:.2f} times its default fit (paired): {sparse['speedup']:.1f}x faster "
            "than scikit-learn; the verdict above is for the defaults)"
        )
    if "floor" in sk:
        bound = sk["floor"]
        print(
            f"  (physical limit: {workload.epochs} shuffled gather passes, {workload.epochs} permutations of "
            f"{seconds(bound['permutation_s'])} and {workload.epochs + 1} streaming loss passes take at "
            f"least {seconds(bound['with_epoch_losses_s'])} one after another, so no loop that runs them "
            f"in turn and reports the full-data loss after each epoch, as the book does, can be more than "
            f"{bound['max_speedup_with_epoch_losses']:.1f}x faster than scikit-learn here; with the final "
            f"loss alone, {bound['max_speedup_final_loss_only']:.1f}x)"
        )


def sklearn_speedup_verdict(sk: dict[str, Any]) -> str:
    """PASS, FAIL, or FAIL (out of reach) where the physical limit measured in the run is below the target."""
    if sk["pass"] is False and sk.get("out_of_reach"):
        limit = sk["floor"]["max_speedup_with_epoch_losses"]
        return f"FAIL (out of reach: the physical limit is {limit:.1f}x here)"
    return verdict(sk["pass"])


def run_memory(run: WorkloadRun, backends: list[str], results: dict[str, Any]) -> None:
    memory = peak_memory(run.workload, backends, run.data)
    results["memory"] = memory
    print(
        f"\nPeak memory on large, each backend alone in a fresh process (data X and y: "
        f"{mebibytes(run.workload.data_bytes)}); target: peak <= baseline + {MEMORY_TARGET} x data"
    )
    table = [["variant", "baseline", "peak", "peak - baseline", "/ data", "target", "result"]]
    for m in memory:
        if m["status"] != "ok":
            table.append([m["variant"], m["status"], m.get("reason") or "", "", "", "", "FAIL"])
            continue
        table.append(
            [
                m["variant"],
                mebibytes(m["baseline_rss_bytes"]),
                mebibytes(m["peak_rss_bytes"]),
                mebibytes(m["peak_above_baseline_bytes"]),
                f"{m['ratio']:.2f}",
                f"<= {MEMORY_TARGET}",
                verdict(m["pass"]),
            ]
        )
    print_table(table)


def run_large_extras(
    run: WorkloadRun, args: argparse.Namespace, backends: list[str], results: dict[str, Any]
) -> None:
    if run.floors is not None:
        print_floors(run, results)
    if "sklearn" not in args.skip and run.measured:
        run_sklearn(run, args, results)
    if "memory" not in args.skip:
        run_memory(run, backends, results)


# -- the book's setup against scikit-learn --------------------------------------------------------
def run_book_setup(args: argparse.Namespace, results: dict[str, Any]) -> None:
    workload = get_workload("book", quick=args.quick)
    X, y = make_data(workload)
    record = book_setup(X, y, repeats=10 if args.quick else BOOK_SETUP_REPEATS)
    results["book_setup"] = record
    text = (
        f"\nThe book's setup on JAX ({workload.n:,} x {workload.d}, batch 10, lr 0.03, 3 epochs), warm: "
        f"polylin.fit {seconds(record['polylin_s']['median'])} (median of {record['polylin_s']['n']}; "
        f"target <= {seconds(record['target_s'])}): {verdict(record['pass'])}"
    )
    if "over_sklearn" in record:
        text += (
            f"; scikit-learn {record['sklearn_version']} SGDRegressor(max_iter=3, tol=None, "
            f"learning_rate='constant', eta0=0.03, penalty=None) on the same data "
            f"{seconds(record['sklearn_s']['median'])}: polylin / scikit-learn {record['over_sklearn']:.2f} "
            f"(paired; target <= {record['sklearn_target']:.1f}): {verdict(record['sklearn_pass'])}"
        )
    else:
        text += "; scikit-learn is not installed, so its ratio is not measured (pip install 'polylin[bench]')"
    print(text, flush=True)


# -- the verdicts -------------------------------------------------------------------------------
def collect_verdicts(results: dict[str, Any]) -> list[bool | None]:
    rows = results["rows"]
    verdicts = [r.get("pass") for r in rows]
    verdicts += [r.get("whole_pass") for r in rows if "error" not in r]
    verdicts += [r.get("params_match") for r in rows if "params_match" in r]
    for key in ("import", "sklearn"):
        if key in results and "pass" in results[key]:
            verdicts.append(results[key]["pass"])
    if "book_setup" in results:
        verdicts += [results["book_setup"]["pass"], results["book_setup"].get("sklearn_pass")]
    if "floors" in results:
        verdicts += [e.get("pass") for e in results["floors"]["per_backend"].values() if "pass" in e]
        if "best" in results["floors"]:
            verdicts.append(results["floors"]["best"]["pass"])
    verdicts += [m.get("pass", False) for m in results.get("memory", [])]
    return verdicts


def finish(args: argparse.Namespace, results: dict[str, Any], started: float) -> int:
    verdicts = collect_verdicts(results)
    passed = sum(v is True for v in verdicts)
    failed = sum(v is False for v in verdicts)
    whole_out_of_reach = sum(
        bool(r.get("whole_out_of_reach")) and r.get("whole_pass") is False for r in results["rows"]
    )
    sklearn = results.get("sklearn", {})
    sklearn_out_of_reach = bool(sklearn.get("out_of_reach")) and sklearn.get("pass") is False
    out_of_reach = whole_out_of_reach + sklearn_out_of_reach
    results["summary"] = {
        "passed": passed,
        "failed": failed,
        "whole_fit_out_of_reach": whole_out_of_reach,
        "sklearn_out_of_reach": sklearn_out_of_reach,
        "seconds": time.perf_counter() - started,
        "overhead_target": OVERHEAD_TARGET,
        "whole_fit_target": WHOLE_FIT_TARGET,
        "each_over_epoch_floor_target": EACH_OVER_GATHER_TARGET,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(results))
    print(
        f"\n{passed} targets met, {failed} not met"
        + (
            f" ({out_of_reach} of them out of reach on this machine: see 'least possible' and the "
            "scikit-learn physical limit)"
            if out_of_reach
            else ""
        )
        + f" ({time.perf_counter() - started:.0f} s); results in {path}"
    )
    return 1 if args.strict and failed else 0


#: The scale-out sections (issue 16), each its own script run in a fresh process (the JAX host-device
#: count must be set before jax is imported): (skip key, module, arguments, arguments with --quick).
SCALE_SECTIONS = (
    ("scale", "benchmarks.scale", [], ["--n", "20000", "--epochs", "3"]),
    ("out-of-core", "benchmarks.out_of_core", ["--backends", "numpy,torch"],
     ["--backends", "numpy", "--rows", "400000", "--epochs", "1"]),
)  # fmt: skip


def run_scale_sections(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Throughput against workers=k, and out-of-core epochs against a page-cache read: printed as
    their scripts print them, and kept in the JSON with the command that made them."""
    import subprocess

    for key, module, full, quick in SCALE_SECTIONS:
        if key in args.skip:
            continue
        command = [sys.executable, "-m", module, *(quick if args.quick else full)]
        print(f"\n{key}: python -m {module} {' '.join(command[3:])}", flush=True)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        print(done.stdout.rstrip() or done.stderr[-2000:], flush=True)
        results[key] = {"command": command[1:], "returncode": done.returncode, "output": done.stdout}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results = new_results(args)
    backends = installed_backends(args.backends, results)
    mode = "quick" if args.quick else "full"
    print(
        f"polylin benchmark ({mode}) on {results['host']['cpu_model']}, "
        f"{results['host']['usable_cpus']} CPUs; backends: {', '.join(backends)}",
        flush=True,
    )
    if "import" not in args.skip:
        run_import(args, results)
    runs = {name: run_workload(name, args, backends, results) for name in args.workloads}
    print_rows(results)
    if "large" in runs:
        run_large_extras(runs["large"], args, backends, results)
    if "book-setup" not in args.skip and "jax" in backends:
        run_book_setup(args, results)
    if "large" in runs:
        run_scale_sections(args, results)
    return finish(args, results, started)


if __name__ == "__main__":
    raise SystemExit(main())
