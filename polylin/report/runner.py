"""Run the variants, each in a subprocess of its own, and put the report together.

:func:`measure_variants` draws the workload's data once, saves it where the
workers can load it, and runs one worker process per backend and gradient
mode (:mod:`polylin.report.worker`), returning a *partial* result.
:func:`polylin.report.compare` merges one partial and writes the report;
``nox -s report`` merges one partial per backend environment.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polylin.backends import BACKENDS, KNOWN_BACKENDS, is_installed
from polylin.report.manifest import environment, host, now
from polylin.report.merge import GRAD_ORDER, PARTIAL_SCHEMA
from polylin.report.workloads import Workload, fingerprint, make_data

#: The backends a comparison runs when none are named.
DEFAULT_BACKENDS = ("numpy", "jax", "torch", "mxnet")


def check_backends(backends: Sequence[str] | str | None) -> list[str]:
    """Normalise ``backends`` (a list, a comma-separated string, ``"all"`` or ``None``); check the names."""
    if backends is None or backends == "all":
        return list(DEFAULT_BACKENDS)
    names = [n.strip() for n in backends.split(",")] if isinstance(backends, str) else list(backends)
    names = [n for n in names if n]
    if not names:
        raise ValueError("backends is empty; name at least one of " + ", ".join(KNOWN_BACKENDS) + ".")
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise ValueError(f"backends {unknown} are not known backends; choose from {list(KNOWN_BACKENDS)}.")
    return list(dict.fromkeys(names))


def check_grad_modes(grad_modes: Sequence[str] | str | None) -> list[str]:
    if grad_modes is None:
        return list(GRAD_ORDER)
    modes = [m.strip() for m in grad_modes.split(",")] if isinstance(grad_modes, str) else list(grad_modes)
    bad = [m for m in modes if m not in GRAD_ORDER]
    if bad or not modes:
        raise ValueError(f"grad_modes={grad_modes!r} must name one or both of {list(GRAD_ORDER)}.")
    return list(dict.fromkeys(modes))


def _worker_env() -> dict[str, str]:
    """The environment of a worker: this one, with this copy of polylin first on the path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_worker(spec: dict[str, Any], workdir: Path, *, timeout: float | None = None) -> dict[str, Any]:
    """Run one variant in a fresh Python process and return its record (a failure record if it died)."""
    name = f"{spec['backend']}-{spec['grad']}"
    spec_path = workdir / f"{name}.spec.json"
    out_path = workdir / f"{name}.json"
    spec = {**spec, "out": str(out_path)}
    spec_path.write_text(json.dumps(spec))
    failure = {
        "variant": f"{spec['backend']}/{spec['grad']}",
        "backend": spec["backend"],
        "grad": spec["grad"],
        "status": "failed",
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "polylin.report.worker", str(spec_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_worker_env(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {**failure, "reason": f"timed out after {timeout} s"}
    if out_path.exists():
        record: dict[str, Any] = json.loads(out_path.read_text())
        if record.get("status") not in ("ok", "not-applicable"):
            record["worker_stderr_tail"] = proc.stderr[-2000:]
        return record
    tail = (proc.stderr or proc.stdout)[-1500:].strip()
    return {**failure, "reason": f"the worker process exited with code {proc.returncode}: {tail}"}


def measure_variants(
    workload: Workload,
    backends: Sequence[str] | str | None = None,
    *,
    grad_modes: Sequence[str] | str | None = None,
    device: str | None = None,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    timeout: float | None = None,
    label: str = "",
    progress: Callable[[str], None] | None = None,
    data: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Measure every backend x gradient mode of ``workload``; return the partial result.

    ``backend_options`` maps a backend name to its options, e.g.
    ``{"jax": {"fused_epoch": False}}``. A backend that is not installed is
    recorded as skipped with the install command, without starting a process.
    """
    names = check_backends(backends)
    modes = check_grad_modes(grad_modes)
    options = {k: dict(v) for k, v in (backend_options or {}).items()}
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(f"backend_options names {unknown}, which are not among the backends {names}.")
    say = progress or (lambda message: None)
    X, y = make_data(workload) if data is None else data
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="polylin-report-") as tmp:
        workdir = Path(tmp)
        np.save(workdir / "X.npy", X)
        np.save(workdir / "y.npy", y)
        for name in names:
            for grad in modes:
                variant = f"{name}/{grad}"
                if not is_installed(name):
                    reason = f"not installed: {BACKENDS[name].install}"
                    records.append(
                        {
                            "variant": variant,
                            "backend": name,
                            "grad": grad,
                            "status": "skipped",
                            "reason": reason,
                        }
                    )
                    say(f"{variant}: skipped ({reason})")
                    continue
                started = time.perf_counter()
                spec = {
                    "backend": name,
                    "grad": grad,
                    "workload": dataclasses.asdict(workload),
                    "data": {"X": str(workdir / "X.npy"), "y": str(workdir / "y.npy")},
                    "repeats": workload.repeats,
                    "device": device,
                    "backend_options": options.get(name, {}),
                }
                record = run_worker(spec, workdir, timeout=timeout)
                records.append(record)
                status = record.get("status")
                detail = "" if status == "ok" else f" ({record.get('reason', '')})"
                say(f"{variant}: {status}{detail} [{time.perf_counter() - started:.1f} s]")
    return {
        "schema": PARTIAL_SCHEMA,
        "created": now(),
        "label": label,
        "workload_fields": dataclasses.asdict(workload),
        "data_fingerprint": fingerprint(X, y),
        "device": device,
        "backend_options": options,
        "host": host(),
        "environment": environment(),
        "variants": records,
    }
