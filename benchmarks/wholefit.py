"""The whole :func:`polylin.fit` seen from outside: where its time goes, its cold first call, the book setup.

* :func:`fit_parts`: a few fits with polylin's helpers wrapped in timers
  (validation, the learning-rate bound, the data fingerprint, the transfer,
  the initial loss, the training loop), which splits one fit's wall time into
  its parts. A helper that is not found (renamed, inlined) is left out and its
  time falls into "rest".
* :func:`cold_fits`: the first :func:`polylin.fit` in a fresh process, per row.
* :func:`book_setup`: a warm JAX fit of the book's setup against
  scikit-learn's ``SGDRegressor`` on the same data, in the same process.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import BOOK_SETUP_SKLEARN_TARGET, BOOK_SETUP_TARGET_S, Row
from polylin.report.measure import fit_once, summarize
from polylin.report.workloads import TrainingPlan

#: The parts of a fit, in the order a fit runs them: (part, module, attribute) of the helper timed.
PART_HELPERS = (
    ("validation", "polylin.validation", "host_training_data"),
    ("fingerprint", "polylin.api", "data_fingerprint"),
    ("bound", "polylin.api", "warn_if_unstable"),
    ("transfer", "polylin.streaming", "device_data"),  # the data; the backend's other asarray calls too
    ("initial loss", "polylin.api", "_initial_loss"),
    ("train", "polylin.api", "train"),
)
#: The columns of the parts table; "losses & orders" is the training loop less its epochs.
PARTS = (
    "validation",
    "fingerprint",
    "bound",
    "transfer",
    "initial loss",
    "epochs",
    "losses & orders",
    "rest",
)
FRAMEWORK_MODULE = {"numpy": None, "jax": "jax", "torch": "torch", "mxnet": "mxnet"}


class _PartClock:
    """Exclusive wall time per part: a part's time leaves out the timed parts it calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stack: list[list[float]] = []  # [start, time spent in nested parts]

    @property
    def depth(self) -> int:
        return len(self._stack)

    def wrap(self, part: str, fn: Callable[..., Any], *, top_level_only: bool = False) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if top_level_only and self._stack:
                return fn(*args, **kwargs)
            self._stack.append([time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                started, nested = self._stack.pop()
                elapsed = time.perf_counter() - started
                self.seconds[part] = self.seconds.get(part, 0.0) + elapsed - nested
                if self._stack:
                    self._stack[-1][1] += elapsed

        return timed


@contextlib.contextmanager
def _timed_helpers(clock: _PartClock, backend: str) -> Iterator[None]:
    """Replace each helper of :data:`PART_HELPERS` (and the backend's ``asarray``) by a timed one."""
    undo: list[tuple[Any, str, Any]] = []
    try:
        for part, module_name, attribute in PART_HELPERS:
            module = importlib.import_module(module_name)
            original = getattr(module, attribute, None)
            if callable(original):
                undo.append((module, attribute, original))
                setattr(module, attribute, clock.wrap(part, original))
        from polylin.backends import get_backend

        backend_class = type(get_backend(backend))
        original = getattr(backend_class, "asarray", None)
        if inspect.isfunction(original):  # a plain method (a static one would bind differently)
            undo.append((backend_class, "asarray", backend_class.__dict__.get("asarray", _MISSING)))
            backend_class.asarray = clock.wrap("transfer", original, top_level_only=True)
        yield
    finally:
        for owner, attribute, original in reversed(undo):
            if original is _MISSING:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


_MISSING = object()


def fit_parts(plan: TrainingPlan, row: Row, fits: int) -> dict[str, Any]:
    """The median over ``fits`` warm fits of each part's milliseconds, and of the whole fit's."""
    fit_once(plan, row.backend, row.grad, backend_options=row.backend_options)  # warm (compiled) first
    per_fit: list[dict[str, float]] = []
    for _ in range(fits):
        clock = _PartClock()
        with _timed_helpers(clock, row.backend):
            result, wall = fit_once(plan, row.backend, row.grad, backend_options=row.backend_options)
        parts = dict(clock.seconds)
        epochs = float(np.sum(result.epoch_times))
        train = parts.pop("train", None)
        parts["epochs"] = epochs
        if train is not None:
            parts["losses & orders"] = max(train - epochs, 0.0)
        parts["rest"] = wall - sum(parts.values())
        parts["whole"] = wall
        per_fit.append(parts)
    names = [*PARTS, "whole"]
    return {
        "fits": fits,
        "seconds": {
            name: statistics.median(p[name] for p in per_fit)
            for name in names
            if all(name in p for p in per_fit)
        },
    }


_COLD_PROBE = """
import json, sys, time, warnings
import numpy as np
spec = json.loads(sys.argv[1])
X, y = np.load(spec["X"]), np.load(spec["y"])
started = time.perf_counter()
if spec["framework"]:
    __import__(spec["framework"])
framework_s = time.perf_counter() - started
import polylin
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    result = polylin.fit(X, y, backend=spec["backend"], grad=spec["grad"],
                         backend_options=spec["backend_options"], **spec["fit_kwargs"])
    fit_s = time.perf_counter() - started
epochs_s = float(sum(result.epoch_times))
print(json.dumps({"fit_s": fit_s, "framework_import_s": framework_s, "epochs_s": epochs_s}))
"""


def cold_fits(
    plan: TrainingPlan, rows: Sequence[Row], python: str = sys.executable
) -> dict[str, dict[str, Any]]:
    """Each row's first :func:`polylin.fit` in a fresh process, with the framework already imported.

    The data is loaded from disk before the clock starts; the framework's
    import is timed apart (``framework_import_s``); the fit's time includes
    importing polylin's training code, compiling and every first-touch cost.
    """
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="polylin-cold-") as tmp:
        paths = {"X": str(Path(tmp) / "X.npy"), "y": str(Path(tmp) / "y.npy")}
        np.save(paths["X"], plan.X)
        np.save(paths["y"], plan.y)
        for row in rows:
            spec = {
                **paths,
                "framework": FRAMEWORK_MODULE.get(row.backend),
                "backend": row.backend,
                "grad": row.grad,
                "backend_options": row.backend_options,
                "fit_kwargs": plan.fit_kwargs,
            }
            done = subprocess.run(
                [python, "-c", _COLD_PROBE, json.dumps(spec)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                out[row.label] = {"error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
            else:
                out[row.label] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def book_setup(X: np.ndarray, y: np.ndarray, repeats: int) -> dict[str, Any]:
    """A warm ``polylin.fit(X, y, backend="jax", lr=0.03, batch_size=10, epochs=3)`` against
    ``SGDRegressor(max_iter=3, tol=None, learning_rate="constant", eta0=0.03, penalty=None)``.

    Both fit the same float32 arrays (scikit-learn converts them to float64
    inside its fit, as polylin validates and transfers inside its own), in
    turn, ``repeats`` times after a first call of each; the ratio is the
    median over repeats of polylin's time over scikit-learn's in that repeat.
    """
    import polylin

    def ours() -> None:
        polylin.fit(X, y, backend="jax", lr=0.03, batch_size=10, epochs=3)

    try:
        from sklearn.linear_model import SGDRegressor
    except ImportError:
        theirs = None
    else:

        def theirs() -> None:
            SGDRegressor(
                max_iter=3, tol=None, learning_rate="constant", eta0=0.03, penalty=None, random_state=0
            ).fit(X, y)

    polylin_s: list[float] = []
    sklearn_s: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours()
        if theirs is not None:
            theirs()
        for _ in range(repeats):
            for fn, times in ((ours, polylin_s), (theirs, sklearn_s)):
                if fn is None:
                    continue
                started = time.perf_counter()
                fn()
                times.append(time.perf_counter() - started)
    record: dict[str, Any] = {
        "polylin_s": summarize(polylin_s),
        "target_s": BOOK_SETUP_TARGET_S,
        "pass": statistics.median(polylin_s) <= BOOK_SETUP_TARGET_S,
    }
    if sklearn_s:
        ratio = statistics.median(a / b for a, b in zip(polylin_s, sklearn_s, strict=True))
        import sklearn

        record.update(
            sklearn_version=sklearn.__version__,
            sklearn_s=summarize(sklearn_s),
            over_sklearn=ratio,
            sklearn_target=BOOK_SETUP_SKLEARN_TARGET,
            sklearn_pass=ratio <= BOOK_SETUP_SKLEARN_TARGET,
        )
    return record
