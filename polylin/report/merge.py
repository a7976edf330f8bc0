"""Merge partial results (one per environment) into one report, with quality, speed-ups and parity.

A *partial* is what :func:`polylin.report.runner.measure_variants` writes:
the variants one Python environment could run, each timed in its own
process. ``nox -s report`` makes one partial per backend environment and
merges them here; :func:`polylin.compare` makes one and merges it alone.
Parity is always computed against the NumPy variant, whichever partial it
came from, and only between partials that trained on identical data (the
data fingerprints must agree).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polylin._version import __version__
from polylin.backends import KNOWN_BACKENDS
from polylin.report.manifest import now
from polylin.report.measure import MEMORY_METHOD
from polylin.report.quality import least_squares, parity, quality
from polylin.report.workloads import Workload, fingerprint, make_data, training_plan, true_parameters

REPORT_SCHEMA = "polylin.report/1"
PARTIAL_SCHEMA = "polylin.report.partial/1"
REFERENCE_VARIANT = "numpy/analytic"
GRAD_ORDER = ("autodiff", "analytic")

TIMING_METHOD = (
    "Each repeat is a complete polylin.fit of the workload. An epoch's time covers its minibatch steps "
    "and the full-data loss after them, and is read once that loss is back on the host (so an "
    "asynchronous device has finished the epoch). "
    "The first epoch (compilation and warm-up) is reported apart; the steady state is every later "
    "epoch of every repeat: median, minimum and maximum."
)


def load_partials(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Read partial JSON files, checking that each is one."""
    partials = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if data.get("schema") != PARTIAL_SCHEMA:
            raise ValueError(
                f"{path} is not a polylin partial result (schema {data.get('schema')!r}); "
                "make one with: polylin compare --partial FILE"
            )
        partials.append(data)
    if not partials:
        raise ValueError(
            "no partial results to merge; pass at least one file made by polylin compare --partial."
        )
    return partials


def _sort_key(record: dict[str, Any]) -> tuple[int, int, str]:
    backend, grad = record["backend"], record["grad"]
    b = KNOWN_BACKENDS.index(backend) if backend in KNOWN_BACKENDS else len(KNOWN_BACKENDS)
    g = GRAD_ORDER.index(grad) if grad in GRAD_ORDER else len(GRAD_ORDER)
    return b, g, backend


def _steady_median(record: dict[str, Any]) -> float | None:
    value = record.get("timing", {}).get("steady_epoch_s", {}).get("median")
    return None if value is None else float(value)


def merge(
    partials: Sequence[dict[str, Any]],
    *,
    data: tuple[np.ndarray, np.ndarray] | None = None,
    expected_backends: Sequence[str] = (),
) -> dict[str, Any]:
    """One report from partials that ran the same workload on the same data.

    ``data`` is the workload's ``(X, y)`` if the caller has it; otherwise it is
    drawn again from the workload's seed and checked against the fingerprint.
    A backend of ``expected_backends`` that no partial mentions is listed as
    skipped, so that an environment that failed to produce its part shows.
    """
    first = partials[0]
    workload = Workload(**first["workload_fields"])
    for other in partials[1:]:
        if other["workload_fields"] != first["workload_fields"]:
            raise ValueError(
                "the partial results ran different workloads "
                f"({first['workload_fields']} and {other['workload_fields']}); merge runs of one workload."
            )
    X, y = make_data(workload) if data is None else data
    data_print = fingerprint(X, y)

    variants: dict[str, dict[str, Any]] = {}
    for partial in partials:
        for record in partial["variants"]:
            record = dict(record)
            record["partial_data_fingerprint"] = partial["data_fingerprint"]
            record["environment_label"] = partial.get("label", "")
            if record["variant"] in variants and variants[record["variant"]].get("status") == "ok":
                continue  # the first successful measurement of a variant wins
            variants[record["variant"]] = record
    seen = {record["backend"] for record in variants.values()}
    for backend in expected_backends:
        if backend not in seen:
            variants[f"{backend}/*"] = {
                "variant": f"{backend}/*",
                "backend": backend,
                "grad": "*",
                "status": "skipped",
                "reason": "no partial result for this backend: its environment did not produce one",
            }
    records = sorted(variants.values(), key=_sort_key)

    true_w, true_b = true_parameters(workload)
    plan = training_plan(workload, X, y)
    optimum = least_squares(plan.X, plan.y)
    ok = [r for r in records if r.get("status") == "ok"]
    reference = variants.get(REFERENCE_VARIANT)
    if reference is not None and reference.get("status") != "ok":
        reference = None
    medians = {r["variant"]: _steady_median(r) for r in ok}
    known = {k: v for k, v in medians.items() if v}
    fastest = min(known, key=lambda k: known[k]) if known else None
    for record in ok:
        record["quality"] = quality(
            plan.X, plan.y, record["w"], record["b"], true_w=true_w, true_b=true_b, optimum=optimum
        )
        median = medians[record["variant"]]
        numpy_median = medians.get(REFERENCE_VARIANT)
        record["speedup_vs_numpy"] = numpy_median / median if median and numpy_median else None
        record["speedup_vs_fastest"] = known[fastest] / median if median and fastest else None
        record["fastest"] = record["variant"] == fastest
        if reference is None:
            record["parity"] = {"pass": None, "note": "no NumPy reference in this report"}
        elif record["partial_data_fingerprint"] != reference["partial_data_fingerprint"]:
            record["parity"] = {
                "pass": False,
                "note": "trained on different data from the NumPy reference (fingerprints differ)",
            }
        else:
            record["parity"] = parity(record, reference, workload.dtype)
        memory = record.get("memory", {})
        if memory:
            memory["peak_over_baseline_per_data"] = (
                memory["peak_rss_bytes"] - memory["baseline_rss_bytes"]
            ) / memory["data_bytes"]

    fingerprints = {p["data_fingerprint"] for p in partials}
    parity_values = [r["parity"]["pass"] for r in ok if r["parity"].get("pass") is not None]
    first_plan = next((r.get("plan_method") for r in ok), None)
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "created": now(),
        "manifest": {
            "polylin_version": __version__,
            "workload": workload.as_dict(),
            "seed": workload.seed,
            "dtype": workload.dtype,
            "config": {
                "fit": {
                    "lr": workload.lr,
                    "batch_size": workload.batch_size,
                    "epochs": workload.epochs,
                    "seed": workload.seed,
                    "dtype": workload.dtype,
                    "loss": "squared",
                    "init": "normal",
                    "shuffle": True,
                    "fit_intercept": True,
                },
                "plan": first_plan,
                "repeats": workload.repeats,
                "grad_modes": [g for g in GRAD_ORDER if any(r["grad"] == g for r in records)],
                "requested_device": first.get("device"),
                "backend_options": first.get("backend_options", {}),
            },
            "data": {
                "fingerprint": data_print,
                "partial_fingerprints": sorted(fingerprints),
                "consistent": fingerprints == {data_print},
                "bytes": int(X.nbytes + y.nbytes),
                "rows_trained_on": int(plan.X.shape[0]),
                "true_w": [float(v) for v in true_w] if true_w.size <= 16 else "drawn from the seed",
                "true_b": true_b,
            },
            "host": first["host"],
            "other_hosts": [p["host"] for p in partials[1:] if p["host"] != first["host"]],
            "environments": {
                r["variant"]: r["environment"] | {"label": r.get("environment_label", "")}
                for r in ok
                if "environment" in r
            },
            "timing_method": TIMING_METHOD,
            "memory_method": MEMORY_METHOD,
            "partials": [
                {"label": p.get("label", ""), "created": p.get("created"), "variants": len(p["variants"])}
                for p in partials
            ],
        },
        "least_squares": {
            "w": [float(v) for v in optimum.w] if optimum.w.size <= 16 else None,
            "b": optimum.b,
            "loss": optimum.loss,
        },
        "variants": ok,
        "skipped": [
            {"variant": r["variant"], "reason": r["reason"]} for r in records if r.get("status") == "skipped"
        ],
        "failed": [
            {"variant": r["variant"], "reason": r["reason"], "traceback": r.get("traceback", "")}
            for r in records
            if r.get("status") == "failed"
        ],
        "not_applicable": [
            {"variant": r["variant"], "reason": r["reason"]}
            for r in records
            if r.get("status") == "not-applicable"
        ],
        "summary": {
            "fastest": fastest,
            "reference": REFERENCE_VARIANT if reference is not None else None,
            "parity_all_pass": all(parity_values) if parity_values else None,
            "measured": len(ok),
            "skipped": sum(r.get("status") == "skipped" for r in records),
            "failed": sum(r.get("status") == "failed" for r in records),
        },
    }
    return report
