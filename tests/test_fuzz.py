"""Property-based fuzzing: whatever the shapes, dtypes, batch sizes, learning rates and magnitudes,
a fit either trains to a finite result or raises one of the documented errors. No crash, no hang.

The examples are bounded for CI by the ``polylin-ci`` settings profile
(40 examples on NumPy, a quarter of that on each other backend, no deadline,
derandomised so that CI runs the same examples every time). Choose another
profile with ``POLYLIN_HYPOTHESIS_PROFILE=polylin-dev`` (300 examples, random)
for a longer local search.

Documented errors: ``ValueError`` and ``TypeError`` for bad input, raised
before training; :class:`~polylin.errors.DivergenceError` when valid input
trains into a non-finite loss or parameter.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conftest import backend_params
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import polylin

settings.register_profile(
    "polylin-ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "polylin-dev",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("POLYLIN_HYPOTHESIS_PROFILE", "polylin-ci")
settings.load_profile(PROFILE)
OTHER_BACKEND_EXAMPLES = max(5, settings.get_profile(PROFILE).max_examples // 4)

OTHER_BACKENDS = backend_params([name for name in polylin.KNOWN_BACKENDS if name != "numpy"])


@dataclass
class Problem:
    X: np.ndarray
    y: np.ndarray
    options: dict[str, Any]
    invalid: list[str]  # the arguments that are bad, if any

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return (
            f"Problem(X: {self.X.dtype}{self.X.shape} |max| {np.nanmax(np.abs(self.X), initial=0):.3g}, "
            f"y: {self.y.dtype} |max| {np.nanmax(np.abs(self.y), initial=0):.3g}, "
            f"options={self.options}, invalid={self.invalid!r})"
        )


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 4))
    source = draw(st.sampled_from(["float32", "float64", "int64"]))
    x_scale = 10.0 ** draw(st.integers(-30, 30))
    y_scale = 10.0 ** draw(st.integers(-30, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(0.0, 1.0, (n, d)) * x_scale
    y = rng.normal(0.0, 1.0, n) * y_scale
    if source == "int64":  # integers are whole and within int64: round and clip
        X, y = (np.clip(np.round(a), -1e15, 1e15).astype(np.int64) for a in (X, y))
    else:
        X, y = X.astype(source), y.astype(source)
    if draw(st.booleans()):
        y = y.reshape(-1, 1)

    invalid = []
    batch_size = draw(st.one_of(st.integers(1, n), st.integers(-1, n + 2)))
    if not 1 <= batch_size <= n:
        invalid.append("batch_size")
    lr = draw(st.one_of(st.floats(1e-8, 10.0), st.floats(1e-30, 1e30)))
    if draw(st.integers(0, 9)) == 0:  # now and then a learning rate that is not one
        lr = draw(st.sampled_from([0.0, -0.5, math.nan, math.inf]))
    if not (math.isfinite(lr) and lr > 0):
        invalid.append("lr")
    if source != "int64" and draw(st.integers(0, 9)) == 0:  # now and then a NaN or an inf
        X.flat[draw(st.integers(0, X.size - 1))] = draw(st.sampled_from([math.nan, math.inf]))
        invalid.append("X")
    options = {
        "batch_size": batch_size,
        "lr": lr,
        "epochs": draw(st.integers(1, 3)),
        "dtype": draw(st.sampled_from(["float32", "float64"])),
        "loss": draw(st.sampled_from(["squared", "absolute", "huber"])),
        "fit_intercept": draw(st.booleans()),
        "shuffle": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31)),
        "on_divergence": draw(st.sampled_from(["raise", "stop"])),
    }
    return Problem(X, y, options, invalid)


def check(problem: Problem, backend: str) -> None:
    X_before, y_before = problem.X.copy(), problem.y.copy()
    error: Exception | None = None
    result = None
    try:
        with warnings.catch_warnings():
            # StabilityWarning, DataConversionWarning: expected here, and tested elsewhere.
            warnings.simplefilter("ignore", UserWarning)
            result = polylin.fit(problem.X, problem.y, backend=backend, **problem.options)
    except (ValueError, TypeError, polylin.DivergenceError) as exc:  # the documented errors
        error = exc
    if isinstance(error, polylin.DivergenceError):
        assert not problem.invalid, f"bad input ({problem.invalid}) reached training"
        assert problem.options["on_divergence"] == "raise"
        assert error.epoch >= 1 and error.step >= 1
        assert np.isfinite(error.last_finite_w).all() and math.isfinite(error.last_finite_b)
        event("diverged: DivergenceError")
    elif error is not None:
        assert problem.invalid, f"valid input refused: {error}"
        assert any(name in str(error) for name in problem.invalid), f"{problem.invalid} not named: {error}"
        event(f"refused: {type(error).__name__}: {str(error)[:25]}")
    else:
        assert result is not None
        assert not problem.invalid, f"bad input ({problem.invalid}) was accepted"
        assert np.isfinite(result.w).all() and math.isfinite(result.b)
        assert np.isfinite(result.losses).all()
        if result.diverged_at is None:
            assert result.epochs_completed == problem.options["epochs"]
            event("trained to a finite result")
        else:
            event("diverged: stopped")
            assert problem.options["on_divergence"] == "stop"
            assert result.epochs_completed == result.diverged_at[0] - 1
    # Whatever happened, the caller's arrays are as they were.
    np.testing.assert_array_equal(problem.X, X_before)
    np.testing.assert_array_equal(problem.y, y_before)


@given(problem=problems())
def test_fuzz_numpy(problem: Problem) -> None:
    check(problem, "numpy")


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
@settings(max_examples=OTHER_BACKEND_EXAMPLES)
@given(problem=problems())
def test_fuzz_other_backends(backend: str, problem: Problem) -> None:
    check(problem, backend)


def test_the_ci_profile_is_bounded() -> None:
    profile = settings.get_profile("polylin-ci")
    assert 30 <= profile.max_examples <= 60 and profile.deadline is None
