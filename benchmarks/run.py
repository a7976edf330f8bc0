"""``nox -s bench``: print polylin's time over hand-written code, the physical floors and the other targets.

    python -m benchmarks.run                 # everything (about 10 minutes on 2 cores)
    python -m benchmarks.run --quick         # small workloads, a minute (or POLYLIN_BENCH_QUICK=1)
    python -m benchmarks.run --workloads book --backends numpy,torch

Every ratio is measured side by side in this one process; absolute times on a
shared machine are context. Results also go to ``bench-results/bench.json``
(``--json``) so they can be quoted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
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
    bandwidth_floors,
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
from polylin.backends import BACKENDS, is_installed
from polylin.report.manifest import environment, host, now
from polylin.report.render_json import to_json
from polylin.report.tables import mebibytes, seconds
from polylin.report.workloads import get_workload, make_data, training_plan

WORKLOAD_NAMES = ("book", "large", "tiny-batch")
BACKEND_NAMES = ("numpy", "jax", "torch", "mxnet")
#: Repeats (fits of polylin, runs of each loop) per row, and a budget after which a row stops at 2.
REPEATS = {"book": 30, "large": 5, "tiny-batch": 5}
ROW_BUDGET_S = {"book": 30.0, "large": 75.0, "tiny-batch": 60.0}
QUICK_REPEATS = 2


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def print_table(rows: list[list[str]], out: Any = sys.stdout) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=out)
    out.flush()


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
    parser.add_argument("--skip", default="", help="comma-separated: import, floors, sklearn, memory")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when any target is not met")
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for name in args.workloads:
        if name not in WORKLOAD_NAMES:
            parser.error(f"--workloads: {name!r} is not one of {', '.join(WORKLOAD_NAMES)}")
    for name in args.backends:
        if name not in BACKEND_NAMES:
            parser.error(f"--backends: {name!r} is not one of {', '.join(BACKEND_NAMES)}")
    return args


def ratio_rows(results: list[dict[str, Any]]) -> list[list[str]]:
    table = [
        [
            "workload",
            "row",
            "polylin epoch",
            "hand-written epoch",
            "fastest hand-written loop",
            "polylin µs/step",
            "ratio (paired)",
            "of medians",
            "repeats",
            "target",
            "result",
            "same params",
        ]
    ]
    for r in results:
        if "error" in r:
            table.append(
                [r["workload"], r["row"], "ERROR", r["error"][:60], "", "", "", "", "", "", "FAIL", ""]
            )
            continue
        best = next(loop for loop in r["loops"] if loop["name"] == r["best_loop"])
        table.append(
            [
                r["workload"],
                r["row"],
                seconds(r["polylin"]["steady_epoch_s"]["median"]),
                seconds(best["steady_epoch_s"]["median"]),
                r["best_loop"],
                f"{r['polylin']['us_per_step']:.3g}",
                f"{r['ratio']:.2f}",
                f"{r['ratio_of_medians']:.2f}",
                repeats_text(r),
                f"<= {r['target']:.2f}",
                verdict(r["pass"]),
                "yes" if r["params_match"] else "NO",
            ]
        )
    return table


def repeats_text(record: dict[str, Any]) -> str:
    """``"30"``, or ``"5+5 (1.18 after 5)"`` for a row confirmed with more repeats after a miss."""
    confirmed = record.get("confirmation_repeats", 0)
    if not confirmed:
        return str(record["repeats"])
    first = record["repeats"] - confirmed
    return f"{first}+{confirmed} ({record['first_ratio']:.2f} after {first})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "schema": "polylin.bench/1",
        "created": now(),
        "quick": args.quick,
        "host": host(),
        "environment": environment(),
        "rows": [],
        "skipped": [],
        "workloads": {},
    }
    backends = []
    for name in args.backends:
        if is_installed(name):
            backends.append(name)
        else:
            reason = f"not installed: {BACKENDS[name].install}"
            results["skipped"].append({"backend": name, "reason": reason})
            print(f"SKIPPED {name}: {reason}", flush=True)
    mode = "quick" if args.quick else "full"
    print(
        f"polylin benchmark ({mode}) on {results['host']['cpu_model']}, "
        f"{results['host']['usable_cpus']} CPUs; backends: {', '.join(backends)}",
        flush=True,
    )

    if "import" not in args.skip:
        imp = import_time(runs=3 if args.quick else 7)
        results["import"] = imp
        print(
            f"\nimport polylin: {imp['seconds']['median'] * 1e3:.1f} ms median of {imp['seconds']['n']} "
            "fresh "
            f"interpreters (min {imp['seconds']['min'] * 1e3:.1f}, max {imp['seconds']['max'] * 1e3:.1f}; "
            f"numpy alone {imp['numpy_alone_s'] * 1e3:.1f} ms); frameworks imported: "
            f"{', '.join(imp['heavy_modules_imported']) or 'none'}"
            f"{'' if imp['numpy_imported'] else ' (not even numpy)'}; target < 100 ms and none: "
            f"{verdict(imp['pass'])}. Context: the first use of polylin.fit, which loads numpy and the "
            f"training code, then takes {imp['first_use_of_fit_s'] * 1e3:.1f} ms",
            flush=True,
        )

    large_data = None
    large_floors: dict[str, Any] | None = None
    for name in args.workloads:
        workload = get_workload(name, quick=args.quick)
        repeats = args.repeats or (QUICK_REPEATS if args.quick else REPEATS[name])
        X, y = make_data(workload)
        plan = training_plan(workload, X, y)
        results["workloads"][name] = {**workload.as_dict(), "plan": plan.method, "repeats": repeats}
        print(f"\n== {name}: {workload.description} [{plan.method}; {repeats} repeats]", flush=True)
        workload_rows = []
        floor_pass = None
        if name == "large" and "floors" not in args.skip:
            # Measured first, so that each row can time the fastest gather pass in every repeat too.
            passes = floor_passes(plan.X, plan.orders[0], workload.batch_size)
            large_floors = bandwidth_floors(
                plan.X, plan.orders[0], workload.batch_size, repeats=3 if args.quick else 5, passes=passes
            )
            floor_pass = passes[1][large_floors["gather_method"]]
        for backend in backends:
            for row in ROWS[backend]:
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
                    record = {
                        "workload": name,
                        "row": row.label,
                        "backend": row.backend,
                        "grad": row.grad,
                        "path": row.path,
                        "error": f"{type(exc).__name__}: {exc}",
                        "pass": False,
                    }
                    print(f"  {row.label}: ERROR {record['error']}", flush=True)
                else:
                    best = next(lp for lp in record["loops"] if lp["name"] == record["best_loop"])
                    print(
                        f"  {row.label}: polylin {seconds(record['polylin']['steady_epoch_s']['median'])}, "
                        f"{record['best_loop']} {seconds(best['steady_epoch_s']['median'])}, "
                        f"ratio {record['ratio']:.2f} [{record['seconds']:.0f} s]",
                        flush=True,
                    )
                workload_rows.append(record)
        results["rows"].extend(workload_rows)
        if name == "large":
            large_data = (workload, X, y, plan, [r for r in workload_rows if "error" not in r])

    print(
        "\nOverhead of sharing: polylin's steady-state epoch over the fastest hand-written loop "
        "(same framework, same gradient method, same data and batches, same process). The ratio is "
        "the median over repeats of the two medians taken in the same repeat (paired); the ratio of "
        "the pooled medians is printed beside it"
    )
    print_table(ratio_rows(results["rows"]))

    if large_data is not None:
        workload, X, y, plan, rows = large_data
        if "floors" not in args.skip:
            assert large_floors is not None  # measured before the large rows
            floors = large_floors
            ratios = floor_ratios(rows, floors)
            results["floors"] = {**floors, **ratios}
            print(
                f"\nMemory-bandwidth floors on large (X is {mebibytes(floors['bytes'])}): streaming pass "
                f"{seconds(floors['stream_s'])} ({floors['stream_method']}, "
                f"{floors['stream_gb_per_s']:.1f} GB/s), "
                f"shuffled gather pass {seconds(floors['gather_s'])} ({floors['gather_method']}, "
                f"{floors['gather_gb_per_s']:.1f} GB/s). The gather ratio is paired: each row also timed "
                "the gather pass in each of its repeats (the once-measured floor's ratio is in brackets)"
            )
            table = [
                [
                    "backend",
                    "best polylin epoch",
                    "row",
                    "/ streaming",
                    "/ shuffled gather",
                    "target",
                    "result",
                ]
            ]
            for backend, entry in ratios["per_backend"].items():
                table.append(
                    [
                        backend,
                        seconds(entry["epoch_s"]),
                        entry["row"],
                        f"{entry['over_stream']:.2f}",
                        f"{entry['over_gather']:.2f} ({entry['over_gather_unpaired']:.2f})",
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
                        f"{best['over_gather']:.2f}",
                        f"<= {BEST_OVER_GATHER_TARGET:.1f}",
                        verdict(best["pass"]),
                    ]
                )
            print_table(table)
        if "sklearn" not in args.skip and rows:
            try:
                sk = sklearn_sgd(workload, plan.X, plan.y, repeats=1 if args.quick else 2)
            except ImportError as exc:
                results["sklearn"] = {"skipped": f"scikit-learn is not installed ({exc})"}
                print(f"\nscikit-learn comparison SKIPPED: {exc}; pip install 'polylin[bench]'")
            else:
                sk.update(sklearn_verdict(sk, rows, workload.epochs))
                results["sklearn"] = sk
                print(
                    f"\nscikit-learn {sk['version']} SGDRegressor on large, {workload.epochs} epochs: "
                    f"{seconds(sk['fit_s']['median'])}, final loss {sk['final_loss_host']:.6g}; polylin "
                    f"{sk['polylin_row']} whole fit {seconds(sk['polylin_fit_s'])}, final loss "
                    f"{sk['polylin_final_loss_host']:.6g}: {sk['speedup']:.1f}x faster (target >= "
                    f"{sk['target']:.0f}x at equal or better loss, within 1%): {verdict(sk['pass'])}"
                )
                print(
                    f"  (context: polylin's training epochs alone, {seconds(sk['polylin_training_s'])}, "
                    f"are {sk['training_speedup']:.1f}x faster than scikit-learn's whole fit)"
                )
                if "floors" in results:
                    bound = whole_fit_floor(
                        results["floors"],
                        workload.epochs,
                        permutation_seconds(len(plan.orders[0]), workload.seed),
                        sk["fit_s"]["median"],
                    )
                    sk["floor"] = bound
                    print(
                        f"  (physical limit: {workload.epochs} shuffled gather passes, "
                        f"{workload.epochs} permutations of {seconds(bound['permutation_s'])} and "
                        f"{workload.epochs + 1} streaming loss passes take at least "
                        f"{seconds(bound['with_epoch_losses_s'])}, so no loop that reports the "
                        f"full-data loss after each epoch, as the book does, can be more than "
                        f"{bound['max_speedup_with_epoch_losses']:.1f}x faster than scikit-learn here; "
                        f"with the final loss alone, {bound['max_speedup_final_loss_only']:.1f}x)"
                    )
        if "memory" not in args.skip:
            memory = peak_memory(workload, backends, (X, y))
            results["memory"] = memory
            print(
                f"\nPeak memory on large, each backend alone in a fresh process (data X and y: "
                f"{mebibytes(workload.data_bytes)}); target: peak <= baseline + {MEMORY_TARGET} x data"
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

    verdicts = [r.get("pass") for r in results["rows"]]
    verdicts += [r.get("params_match") for r in results["rows"] if "params_match" in r]
    for key in ("import", "sklearn"):
        if key in results and "pass" in results[key]:
            verdicts.append(results[key]["pass"])
    if "floors" in results:
        verdicts += [e.get("pass") for e in results["floors"]["per_backend"].values() if "pass" in e]
        if "best" in results["floors"]:
            verdicts.append(results["floors"]["best"]["pass"])
    verdicts += [m.get("pass", False) for m in results.get("memory", [])]
    passed = sum(v is True for v in verdicts)
    failed = sum(v is False for v in verdicts)
    results["summary"] = {
        "passed": passed,
        "failed": failed,
        "seconds": time.perf_counter() - started,
        "overhead_target": OVERHEAD_TARGET,
        "each_over_gather_target": EACH_OVER_GATHER_TARGET,
    }
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(results))
    print(
        f"\n{passed} targets met, {failed} not met ({time.perf_counter() - started:.0f} s); results in {path}"
    )
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
