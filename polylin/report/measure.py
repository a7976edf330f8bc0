"""Timing and memory measurement: the clock helpers and the timed runs of :func:`polylin.fit`.

Every time here is read with :func:`time.perf_counter` *after* the device has
been synchronised: :func:`polylin.fit` synchronises at the end of each epoch
before it reads its clock (``FitResult.epoch_times``), and :func:`time_synchronized`
does the same for any other callable. A run's first epoch includes compiling
(JAX) and warming up (allocator, thread pools, kernel caches), so it is kept
apart; the steady state is every later epoch of every repeat, summarised by
its median with its minimum and maximum.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from polylin.report.workloads import TrainingPlan

T = TypeVar("T")

#: How peak memory is measured, in words, for the report.
MEMORY_METHOD = (
    "Each backend and gradient mode runs in a subprocess of its own. Baseline: resident set size "
    "(/proc/self/statm) after importing the framework and a warm-up fit on 32 rows, before the data "
    "is loaded. Peak: the process's high-water resident set size (VmHWM in /proc/self/status) after the "
    "timed fits. Both include the host copy of X and y that the process loads from disk."
)


def summarize(samples: Iterable[float]) -> dict[str, float | int | None]:
    """``{"median", "min", "max", "n"}`` of the samples (``None`` values when there are none)."""
    values = [float(s) for s in samples]
    if not values:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def time_synchronized(
    fn: Callable[[], T],
    synchronize: Callable[[T], None],
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[T, float]:
    """Run ``fn``, wait for the device with ``synchronize(result)``, and return the result and seconds.

    The clock is read before the call and only after ``synchronize`` returns,
    so asynchronous work queued by ``fn`` is inside the measurement.
    """
    started = clock()
    result = fn()
    synchronize(result)
    return result, clock() - started


def current_rss_bytes() -> int:
    """This process's resident set size now."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return peak_rss_bytes()


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far.

    On Linux this is ``VmHWM`` from /proc/self/status, the high-water mark of
    this program's own memory: ``ru_maxrss`` would not do, because Linux
    carries it over from the parent through fork and exec, so a worker
    started by a large process would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


@dataclass
class FitTiming:
    """The repeats of one polylin configuration: every epoch time, the losses and parameters."""

    backend: str
    grad: str
    epoch_times: list[list[float]] = field(default_factory=list)
    fit_walls: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    initial_loss: float = float("nan")
    w: np.ndarray | None = None
    b: float = float("nan")
    deterministic: bool = True
    backend_version: str = ""
    device: str = ""
    dtype: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def first_epochs(self) -> list[float]:
        return [times[0] for times in self.epoch_times if times]

    @property
    def steady_epochs(self) -> list[float]:
        return [t for times in self.epoch_times for t in times[1:]]

    def add(self, result: Any, wall: float) -> None:
        """Record one repeat (a :class:`~polylin.FitResult` and its wall-clock seconds)."""
        w = np.asarray(result.w, dtype=np.float64)
        if self.w is None:
            self.w, self.b = w, float(result.b)
            self.losses = [float(v) for v in result.losses]
            self.initial_loss = float(result.initial_loss)
            self.backend_version, self.device, self.dtype = (
                result.backend_version,
                result.device,
                result.dtype,
            )
        elif not (np.array_equal(w, self.w) and float(result.b) == self.b):
            self.deterministic = False
        self.epoch_times.append([float(t) for t in result.epoch_times])
        self.fit_walls.append(wall)

    def summary(self, plan: TrainingPlan) -> dict[str, Any]:
        """The timing block of the report: first epoch, steady state, throughput."""
        steady = summarize(self.steady_epochs)
        steps, rows = plan.workload.steps, len(plan.orders[0])
        median = steady["median"]
        return {
            "first_epoch_s": self.first_epochs[0] if self.first_epochs else None,
            "first_epoch_median_s": summarize(self.first_epochs)["median"],
            "steady_epoch_s": steady,
            "fit_wall_s": summarize(self.fit_walls),
            "steps_per_epoch": steps,
            "samples_per_epoch": rows,
            "steps_per_s": steps / median if median else None,
            "samples_per_s": rows / median if median else None,
            "us_per_step": 1e6 * median / steps if median else None,
            "repeats": len(self.epoch_times),
            "epoch_times_s": self.epoch_times,
        }


def fit_once(
    plan: TrainingPlan,
    backend: str,
    grad: str,
    *,
    device: str | None = None,
    backend_options: Mapping[str, Any] | None = None,
    caught: list[str] | None = None,
    fit_options: Mapping[str, Any] | None = None,
) -> tuple[Any, float]:
    """One :func:`polylin.fit` of the plan; returns the result and its wall-clock seconds.

    Warnings raised by the fit are collected into ``caught`` (as text) instead of printed.
    ``fit_options`` are further keyword arguments of :func:`polylin.fit` (e.g. ``loss_every``).
    """
    from polylin.api import fit

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        started = time.perf_counter()
        result = fit(
            plan.X,
            plan.y,
            backend=backend,
            grad=grad,
            device=device,
            backend_options=dict(backend_options or {}),
            **{**plan.fit_kwargs, **(fit_options or {})},
        )
        wall = time.perf_counter() - started
    if caught is not None:
        for warning in seen:
            text = f"{warning.category.__name__}: {warning.message}"
            if text not in caught:
                caught.append(text)
    return result, wall


def time_polylin(
    plan: TrainingPlan,
    backend: str,
    grad: str,
    repeats: int,
    *,
    device: str | None = None,
    backend_options: Mapping[str, Any] | None = None,
) -> FitTiming:
    """Fit the plan ``repeats`` times and record every epoch."""
    timing = FitTiming(backend, grad)
    for _ in range(repeats):
        result, wall = fit_once(
            plan, backend, grad, device=device, backend_options=backend_options, caught=timing.warnings
        )
        timing.add(result, wall)
    return timing
