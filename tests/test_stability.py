"""The learning-rate bound's solver and its per-data-set cache (polylin.stability).

The bound's meaning and its warnings are tested in test_divergence.py; here:
each solver path agrees with a direct eigenvalue solve, and a second check of
the same rows reuses the value while changed rows are solved again.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest

import polylin
import polylin.stability as stability
from polylin.stability import clear_cache, largest_curvature, sample_size, warn_if_unstable


def exact_curvature(X: np.ndarray, fit_intercept: bool = True) -> float:
    A = X.astype(np.float64)
    if fit_intercept:
        A = np.hstack([A, np.ones((A.shape[0], 1))])
    return float(np.linalg.eigvalsh(A.T @ A / A.shape[0]).max())


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def solves(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every solve the checks below run, as the shape of the rows it was given."""
    calls: list[tuple[int, int]] = []
    solve = stability._solve_curvature

    def counted(sample: np.ndarray, *, fit_intercept: bool) -> float:
        calls.append(sample.shape)
        return solve(sample, fit_intercept=fit_intercept)

    monkeypatch.setattr(stability, "_solve_curvature", counted)
    return calls


def correlated(n: int, d: int, seed: int = 4) -> np.ndarray:
    """Rows with a spread of eigenvalues (mixed scales, a shifted column), so no solver path is trivial."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0.0, 1.0, (n, d)) @ rng.normal(0.0, 1.0, (d, d)) / np.sqrt(d)
    X[:, 0] += 3.0
    return X.astype(np.float32)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize(
    ("direct", "gram"),
    [(10_000, 10_000), (1, 10_000), (1, 1)],
    ids=["eigvalsh", "lanczos-on-gram", "lanczos-on-rows"],
)
def test_every_solver_path_gives_the_eigenvalue(
    monkeypatch: pytest.MonkeyPatch, direct: int, gram: int, fit_intercept: bool
) -> None:
    monkeypatch.setattr(stability, "DIRECT_MAX_COLUMNS", direct)
    monkeypatch.setattr(stability, "GRAM_MAX_COLUMNS", gram)
    X = correlated(2000, 40)
    assert sample_size(*X.shape) == X.shape[0]  # every row: the value is exact
    value = largest_curvature(X, fit_intercept=fit_intercept)
    assert value == pytest.approx(exact_curvature(X, fit_intercept), rel=1e-8)


def test_lanczos_stops_early_on_an_invariant_space(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rank 1 (every row the same): the first Lanczos step already spans the top eigenvector.
    monkeypatch.setattr(stability, "DIRECT_MAX_COLUMNS", 1)
    X = np.tile(np.arange(1.0, 31.0, dtype=np.float32), (50, 1))
    assert largest_curvature(X, fit_intercept=False) == pytest.approx(float((X[0] ** 2).sum()), rel=1e-9)


def test_the_book_is_solved_directly() -> None:
    X, _ = polylin.synthetic_data(seed=0)
    assert X.shape[1] + 1 <= stability.DIRECT_MAX_COLUMNS
    assert largest_curvature(X) == pytest.approx(exact_curvature(X), rel=1e-12)


def test_a_second_check_of_the_same_rows_does_not_solve_again(solves: list[tuple[int, int]]) -> None:
    X = correlated(3000, 5)
    first = largest_curvature(X)
    assert largest_curvature(X) == first
    assert largest_curvature(X.copy()) == first  # another array with the same rows: the same value
    bound = warn_if_unstable(X, 1e-3, loss="squared", fit_intercept=True)
    assert bound == pytest.approx(2.0 / first)
    assert len(solves) == 1


def test_changed_rows_are_solved_again(solves: list[tuple[int, int]]) -> None:
    X = correlated(3000, 5)
    first = largest_curvature(X)
    X[1234, 2] *= 50.0  # in place, same object: the cached value no longer describes it
    changed = largest_curvature(X)
    assert len(solves) == 2
    assert changed != first
    assert changed == pytest.approx(exact_curvature(X), rel=1e-10)


def test_the_intercept_and_the_dtype_are_part_of_the_key(solves: list[tuple[int, int]]) -> None:
    X = correlated(500, 3)
    with_ones = largest_curvature(X, fit_intercept=True)
    without = largest_curvature(X, fit_intercept=False)
    assert with_ones != without
    largest_curvature(X.astype(np.float64))
    assert len(solves) == 3
    assert largest_curvature(X, fit_intercept=True) == with_ones
    assert largest_curvature(X, fit_intercept=False) == without
    assert len(solves) == 3


def test_a_sampled_data_set_is_keyed_by_the_rows_the_estimate_reads(solves: list[tuple[int, int]]) -> None:
    X = correlated(60_000, 100)
    m = sample_size(*X.shape)
    assert m < X.shape[0]
    first = largest_curvature(X)
    sampled = stability._sample_rows(X.shape[0], m)
    unsampled = int(np.setdiff1d(np.arange(X.shape[0]), sampled)[0])
    X[unsampled] *= 1000.0  # a row the estimate never reads: the value is unchanged, and reused
    assert largest_curvature(X) == first
    assert len(solves) == 1
    X[int(sampled[7])] *= 1000.0  # a row it reads: solved again
    assert largest_curvature(X) != first
    assert len(solves) == 2
    assert solves[0] == (m, 100)


def test_the_cache_holds_a_few_data_sets(solves: list[tuple[int, int]]) -> None:
    sets = [correlated(200, 3, seed=s) for s in range(stability.CACHE_ENTRIES + 1)]
    for X in sets:
        largest_curvature(X)
    largest_curvature(sets[-1])  # the newest is kept
    assert len(solves) == len(sets)
    largest_curvature(sets[0])  # the oldest was dropped
    assert len(solves) == len(sets) + 1


def test_a_cached_value_still_warns(solves: list[tuple[int, int]]) -> None:
    X, _ = polylin.synthetic_data(seed=0)
    for _ in range(2):
        with pytest.warns(polylin.StabilityWarning, match=r"lr=3 is above 2/λ_max = 1.89"):
            warn_if_unstable(X, 3.0, loss="squared", fit_intercept=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", polylin.StabilityWarning)
        warn_if_unstable(X, 0.03, loss="squared", fit_intercept=True)
    assert len(solves) == 1


def test_fits_of_the_same_data_solve_once(solves: list[tuple[int, int]]) -> None:
    X, y = polylin.synthetic_data(seed=0)
    for lr in (0.03, 0.01, 0.1):
        polylin.fit(X, y, backend="numpy", lr=lr, epochs=1)
    assert len(solves) == 1
