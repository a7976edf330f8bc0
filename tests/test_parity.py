"""The parity matrix: every backend reproduces the NumPy reference.

backend × dtype × loss × batch size (dividing n or not) × shuffle × gradient
method. Same data, same initial parameters, same batches; the tolerances are
the ones stated and justified in :mod:`polylin.tolerances`.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import AUTODIFF_BACKENDS, backend_params

import polylin
from polylin.tolerances import tolerance_for

N = 1000
X_DATA, Y_DATA = polylin.synthetic_data(n=N, seed=3, dtype="float64")


@functools.cache
def numpy_reference(dtype: str, loss: str, batch_size: int, shuffle: bool) -> polylin.FitResult:
    return polylin.fit(
        X_DATA, Y_DATA, backend="numpy", dtype=dtype, loss=loss,
        batch_size=batch_size, shuffle=shuffle, epochs=3, seed=5,
    )  # fmt: skip


@pytest.mark.parametrize("grad", ["autodiff", "analytic"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
@pytest.mark.parametrize("batch_size", [10, 7], ids=["batch10-divides", "batch7-partial"])
@pytest.mark.parametrize("loss", ["squared", "absolute", "huber"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", backend_params(AUTODIFF_BACKENDS))
def test_backend_matches_numpy_reference(
    backend: str, dtype: str, loss: str, batch_size: int, shuffle: bool, grad: str
) -> None:
    reference = numpy_reference(dtype, loss, batch_size, shuffle)
    result = polylin.fit(
        X_DATA, Y_DATA, backend=backend, dtype=dtype, loss=loss,
        batch_size=batch_size, shuffle=shuffle, epochs=3, seed=5, grad=grad,
    )  # fmt: skip
    tol = tolerance_for(dtype)
    assert result.w.dtype == np.dtype(dtype)
    assert tol.losses_close(result.losses, reference.losses), (result.losses, reference.losses)
    assert tol.params_close(result.w, reference.w), (result.w, reference.w)
    assert tol.params_close(np.array([result.b]), np.array([reference.b])), (result.b, reference.b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tolerances_can_fail(dtype: str) -> None:
    """The parity check rejects a run that differs by one extra SGD step."""
    reference = numpy_reference(dtype, "squared", 10, True)
    longer = polylin.fit(X_DATA, Y_DATA, backend="numpy", dtype=dtype, epochs=4, seed=5)
    tol = tolerance_for(dtype)
    assert not tol.losses_close(longer.losses[:3] * (1 + 10 * tol.loss_rtol), reference.losses)
    assert not tol.params_close(longer.w, reference.w)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("loss", ["squared", "huber"])
def test_lands_near_closed_form_least_squares(backend: str, loss: str) -> None:
    design = np.column_stack([X_DATA, np.ones(N)])
    (w1, w2, b), *_ = np.linalg.lstsq(design, Y_DATA, rcond=None)
    result = polylin.fit(X_DATA, Y_DATA, backend=backend, dtype="float64", loss=loss, epochs=5)
    np.testing.assert_allclose(result.w, [w1, w2], atol=3e-3)
    assert abs(result.b - b) < 3e-3


@pytest.mark.parametrize("backend", backend_params())
def test_different_seeds_give_different_batches(backend: str) -> None:
    a = polylin.fit(X_DATA, Y_DATA, backend=backend, seed=1, epochs=1)
    b = polylin.fit(X_DATA, Y_DATA, backend=backend, seed=2, epochs=1)
    assert not np.array_equal(a.w, b.w)


@pytest.mark.parametrize("grad", ["autodiff", "analytic"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", backend_params(["jax"]))
def test_jax_per_step_path_matches_the_fused_epoch(backend: str, dtype: str, grad: str) -> None:
    """The per-step path, kept for comparison, computes exactly what the fused epoch does
    (also under float64, where JAX's x64 mode makes the Python-int batch starts 64-bit)."""
    X, y = X_DATA[:997], Y_DATA[:997]  # a short last batch too
    options = {"batch_size": 10, "epochs": 2, "seed": 5, "dtype": dtype, "grad": grad}
    fused = polylin.fit(X, y, backend=backend, **options)
    stepwise = polylin.fit(X, y, backend=backend, backend_options={"fused_epoch": False}, **options)
    tol = tolerance_for(dtype)
    assert tol.params_close(stepwise.w, fused.w)
    assert tol.losses_close(stepwise.losses, fused.losses)
