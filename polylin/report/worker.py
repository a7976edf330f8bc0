"""One backend and one gradient mode, measured in a process of its own.

``python -m polylin.report.worker SPEC.json`` reads a spec written by
:func:`polylin.report.runner.measure_variants`, imports the backend, records
the memory baseline, loads the data, times the fits and writes one
variant's JSON to the spec's ``out`` path. A process of its own per variant
makes the peak resident set size mean something: nothing else has run in it.

A variant whose framework cannot be imported, or whose device is absent, is
written as ``"status": "skipped"`` with the reason; a gradient mode the
backend does not have is ``"not-applicable"``; anything else that goes wrong
is ``"failed"`` with the error.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from polylin.report.manifest import environment
from polylin.report.measure import MEMORY_METHOD, current_rss_bytes, fit_once, peak_rss_bytes, time_polylin
from polylin.report.workloads import Workload, training_plan


def warm_up(backend: str, grad: str, workload: Workload, device: str | None, options: dict[str, Any]) -> None:
    """A two-epoch fit on 32 rows, so the framework's runtime is loaded before the baseline is read."""
    from polylin.data import synthetic_data
    from polylin.report.workloads import true_parameters

    w, b = true_parameters(workload)
    X, y = synthetic_data(w, b, 32, seed=workload.seed, dtype=workload.dtype)
    small = workload.replace(n=32, batch_size=min(workload.batch_size, 8), epochs=2, steps_per_epoch=None)
    fit_once(training_plan(small, X, y), backend, grad, device=device, backend_options=options)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Measure the variant ``spec`` describes and return its JSON-ready record."""
    from polylin.backends import backend_class, get_backend
    from polylin.errors import BackendNotInstalledError, DeviceNotAvailableError

    backend, grad = spec["backend"], spec["grad"]
    workload = Workload(**spec["workload"])
    device = spec.get("device")
    options = dict(spec.get("backend_options") or {})
    record: dict[str, Any] = {
        "variant": f"{backend}/{grad}",
        "backend": backend,
        "grad": grad,
        "backend_options": options,
        "requested_device": device,
    }
    try:
        started = time.perf_counter()
        cls = backend_class(backend)
        record["import_s"] = time.perf_counter() - started
    except BackendNotInstalledError as exc:
        return {**record, "status": "skipped", "reason": f"not installed: {exc}"}
    if grad == "autodiff" and not cls.has_autodiff:
        return {
            **record,
            "status": "not-applicable",
            "reason": f"the {backend} backend has no autodiff; its gradients are hand-derived",
        }
    try:
        instance = get_backend(backend, dtype=workload.dtype, device=device, **options)
    except DeviceNotAvailableError as exc:
        return {**record, "status": "skipped", "reason": f"device absent: {exc}"}
    record["device"] = instance.device_name
    record["backend_version"] = instance.version

    warm_up(backend, grad, workload, device, options)
    baseline = current_rss_bytes()
    X = np.load(spec["data"]["X"])
    y = np.load(spec["data"]["y"])
    with_data = current_rss_bytes()
    plan = training_plan(workload, X, y)
    timing = time_polylin(
        plan,
        backend,
        grad,
        int(spec["repeats"]),
        device=device,
        backend_options=options,
    )
    peak = peak_rss_bytes()
    assert timing.w is not None
    record.update(
        status="ok",
        dtype=timing.dtype,
        device=timing.device,
        backend_version=timing.backend_version,
        plan_method=plan.method,
        timing=timing.summary(plan),
        losses=timing.losses,
        initial_loss=timing.initial_loss,
        final_loss=timing.losses[-1] if timing.losses else timing.initial_loss,
        w=[float(v) for v in timing.w],
        b=timing.b,
        deterministic=timing.deterministic,
        warnings=timing.warnings,
        memory={
            "method": MEMORY_METHOD,
            "baseline_rss_bytes": baseline,
            "with_data_rss_bytes": with_data,
            "peak_rss_bytes": peak,
            "data_bytes": int(X.nbytes + y.nbytes),
        },
        environment=environment(),
    )
    return record


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m polylin.report.worker SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    try:
        record = measure(spec)
    except Exception as exc:
        record = {
            "variant": f"{spec['backend']}/{spec['grad']}",
            "backend": spec["backend"],
            "grad": spec["grad"],
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=8),
        }
    Path(spec["out"]).write_text(json.dumps(record, indent=2, sort_keys=True, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
