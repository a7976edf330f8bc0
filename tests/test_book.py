"""The book's setup reaches the book's accuracy on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import backend_params

import polylin

BOOK_SIGMA = 0.01
LOSS_FLOOR = BOOK_SIGMA**2 / 2  # the best achievable mean ½r² is σ²/2 = 5e-5


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", backend_params())
def test_book_setup_converges(backend: str, dtype: str) -> None:
    result = polylin.fit(backend=backend, dtype=dtype)
    assert result.epochs_completed == 3
    assert result.losses[0] < result.initial_loss
    assert result.final_loss < 1e-4
    assert result.final_loss > 0.5 * LOSS_FLOOR  # cannot beat the noise by much
    assert np.all(np.abs(result.w_error) < 1e-2)
    assert abs(result.b_error) < 1e-2


@pytest.mark.parametrize("backend", backend_params())
def test_result_describes_the_run(backend: str) -> None:
    result = polylin.fit(backend=backend, epochs=2)
    assert result.backend == backend
    assert result.backend_version and result.backend_version[0].isdigit()
    assert "cpu" in result.device.lower()
    assert result.dtype == "float32"
    assert result.w.dtype == np.float32 and result.w.shape == (2,)
    assert isinstance(result.b, float)
    assert result.losses.shape == (2,) and result.epoch_times.shape == (2,)
    assert np.all(result.epoch_times > 0)
    assert result.config["lr"] == 0.03 and result.config["batch_size"] == 10
    np.testing.assert_array_equal(result.true_w, [2.0, -3.4])
    assert result.true_b == 4.2
    np.testing.assert_allclose(result.w_error, result.true_w - result.w, rtol=0, atol=0)


def test_synthetic_data_follows_the_model() -> None:
    X, y = polylin.synthetic_data([2.0, -3.4], 4.2, 5000, noise=0.01, seed=7, dtype="float64")
    assert X.shape == (5000, 2) and y.shape == (5000,)
    residual = y - (X @ np.array([2.0, -3.4]) + 4.2)
    assert abs(residual.std() - 0.01) < 0.001
    assert abs(X.mean()) < 0.05 and abs(X.std() - 1) < 0.05


def test_synthetic_data_same_numbers_in_both_dtypes() -> None:
    X32, y32 = polylin.synthetic_data(seed=1, dtype="float32")
    X64, y64 = polylin.synthetic_data(seed=1, dtype="float64")
    assert X32.dtype == np.float32 and X64.dtype == np.float64
    np.testing.assert_array_equal(X32, X64.astype(np.float32))
    np.testing.assert_array_equal(y32, y64.astype(np.float32))


def test_seed_changes_the_data() -> None:
    a, _ = polylin.synthetic_data(seed=1)
    b, _ = polylin.synthetic_data(seed=2)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(("n", "batch_size"), [(1000, 10), (1000, 7), (5, 5), (5, 1)])
def test_minibatches_visit_every_example_once(n: int, batch_size: int) -> None:
    X, y = polylin.synthetic_data(n=n, seed=0)
    batches = list(polylin.minibatches(X, y, batch_size, seed=3))
    sizes = [len(xb) for xb, _ in batches]
    assert sizes[:-1] == [batch_size] * (len(sizes) - 1)
    assert sizes[-1] == n - batch_size * (len(sizes) - 1)  # the last partial batch is kept
    seen = np.concatenate([xb for xb, _ in batches])
    assert sorted(map(tuple, seen)) == sorted(map(tuple, X))


def test_minibatches_without_shuffle_keep_data_order() -> None:
    X, y = polylin.synthetic_data(n=25, seed=0)
    first_X, first_y = next(polylin.minibatches(X, y, 10, shuffle=False))
    np.testing.assert_array_equal(first_X, X[:10])
    np.testing.assert_array_equal(first_y, y[:10])
