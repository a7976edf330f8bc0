"""The learning-rate stability bound ``lr < 2/λ_max``, checked before training.

For the squared loss ``L(θ) = (1/2n)‖X̃θ − y‖²``, where ``X̃`` is ``X`` with a
column of ones appended when an intercept is fitted and ``θ = (w, b)``, the
Hessian ``H = X̃ᵀX̃/n`` is the same everywhere. A full-batch gradient step maps
the error ``e = θ − θ*`` to ``(I − lr·H) e``, so along the eigenvector of the
largest eigenvalue ``λ_max`` the error is multiplied by ``|1 − lr·λ_max|`` at
every step. It shrinks when ``lr < 2/λ_max`` and grows geometrically when
``lr > 2/λ_max``: that is the whole bound.

What it promises, and what it does not, for polylin's minibatch SGD:

* **Above the bound, expect divergence.** The average minibatch gradient is the
  full-batch gradient, so the mean error follows the full-batch recursion
  and grows along the top eigenvector; the minibatch noise only adds to it.
* **Below the bound, no promise.** Each minibatch has its own Hessian
  ``X̃_Bᵀ X̃_B / B``, whose largest eigenvalue is often larger than the full
  one (with ``batch_size=1`` it is ``‖x̃ᵢ‖²``, up to ``d+1`` times
  ``λ_max`` or more for a row of outliers). SGD can therefore diverge below
  ``2/λ_max``, the more so the smaller the batch and the heavier the tails
  of the rows. Convergence to the exact minimiser also needs a decaying
  learning rate; a constant one leaves SGD jittering around it.
* **Other losses.** The Huber loss has curvature 0 or 1 times the squared
  loss's, so ``2/λ_max`` is still the bound of its smooth region, but its
  gradient is bounded: above the bound it oscillates rather than
  overflowing. The absolute loss has no curvature to bound (its gradient
  has constant size), so it is not checked.

``λ_max`` is computed in float64 from the Gram matrix ``X̃ᵀX̃/m`` of a
deterministic sample of ``m`` rows: all of them when there are at most
``2¹⁹ / (d+1)`` (see :func:`sample_size`), else a fixed-seed draw, so the cost
is bounded whatever ``n`` is (about 3 ms for 10⁶ × 100, from 5 191 rows).
Up to :data:`DIRECT_MAX_COLUMNS` columns the Gram matrix's largest eigenvalue
is solved directly (``numpy.linalg.eigvalsh``: microseconds for the book's
``d = 2``); beyond, a few Lanczos steps find it. On all rows the value is
exact to rounding. From a sample it errs both ways, by a few per cent on
typical data: a sample can miss rare rows of large norm (too low), and for
nearly isotropic data a sample's largest eigenvalue exceeds the
population's by about ``(1 + √((d+1)/m))²`` (too high: 1.30 for ``d = 100``
and ``m = 5 191``). Learning rates within about 10 % of the bound may
therefore be warned about or not.

Out-of-core data (:class:`polylin.streaming.ChunkedArray`: a dask array or a
memory map) is never read whole: the sampled rows are gathered in sorted
order, a memory map's pages released as they are read, and a dask array's
chunks read one request at a time (each chunk that holds a sampled row is
read once). The sample, at most ``SAMPLE_ELEMENTS`` values (or
``MIN_SAMPLE_ROWS`` rows), is all that is held.

The value is cached per data set (:func:`largest_curvature`): a refit of the
same rows (an estimator's ``fit`` again, a grid search's candidates on one
fold) reads the sampled rows and compares them with the cached copy instead
of solving again, so a changed data set is never given a stale bound.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np

from polylin.errors import StabilityWarning

#: The sample of rows: all of them up to ``SAMPLE_ELEMENTS / (d+1)`` rows, and never fewer than
#: ``MIN_SAMPLE_ROWS`` rows (when there are that many).
SAMPLE_ELEMENTS = 1 << 19  # 4 MiB of float64: the check must not add to a large fit's peak memory
MIN_SAMPLE_ROWS = 4096
#: Up to this many columns (``d+1``) the Gram matrix's eigenvalues are solved directly
#: (``eigvalsh``, under 2 ms at 256 columns); beyond, Lanczos steps find the largest.
DIRECT_MAX_COLUMNS = 256
#: Up to this many columns Lanczos multiplies by the sample's Gram matrix; beyond, it multiplies
#: by the sample twice per step instead (forming a larger Gram matrix costs more than the steps).
GRAM_MAX_COLUMNS = 1024
#: Lanczos steps at most, and the relative change of the estimate that ends them early.
LANCZOS_STEPS = 64
RELATIVE_TOLERANCE = 1e-9
#: How many data sets' values are kept (each entry holds a copy of its sampled rows, at most
#: ``SAMPLE_ELEMENTS`` values).
CACHE_ENTRIES = 4
#: The losses whose curvature the bound describes.
CHECKED_LOSSES = ("squared", "huber")
_SAMPLE_SEED = 20240531


def sample_size(n: int, d: int) -> int:
    """How many rows of an ``(n, d)`` matrix enter the estimate of ``λ_max``."""
    return min(n, max(MIN_SAMPLE_ROWS, SAMPLE_ELEMENTS // (d + 1)))


@functools.lru_cache(maxsize=16)
def _sample_rows(n: int, m: int) -> np.ndarray:
    """The sorted rows a sample of ``m`` of ``n`` reads: the same for every data set of ``n`` rows."""
    rows = np.sort(np.random.default_rng(_SAMPLE_SEED).choice(n, size=m, replace=False))
    rows.setflags(write=False)
    return rows


def _sampled(X: Any) -> np.ndarray:
    """The rows of ``X`` the estimate reads, on the host (the rows themselves, uncopied, when all)."""
    # X is indexed, never converted whole unless it is small: data that lives elsewhere
    # (a lazy or device array wrapped for the host) then sends only the sampled rows.
    shape = tuple(X.shape)
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array; got shape {shape}.")
    n, d = int(shape[0]), int(shape[1])
    m = sample_size(n, d)
    if m < n:
        return np.asarray(X[_sample_rows(n, m)])
    # Out-of-core data (polylin.streaming.ChunkedArray) is read through a slice, block by block.
    return np.asarray(X if isinstance(X, np.ndarray) else X[:])


class _CurvatureCache:
    """The last few data sets' ``λ_max``, each with a copy of the rows it was computed from.

    The estimate depends on nothing but the sampled rows, their shape and
    ``fit_intercept``, so an entry whose copy equals the rows read now holds
    exactly the value a new solve would give: no data set is ever given
    another's value, however it was modified in between.
    """

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._values: OrderedDict[tuple[Any, ...], tuple[np.ndarray, float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(shape: tuple[int, ...], sample: np.ndarray, fit_intercept: bool) -> tuple[Any, ...]:
        return (shape, sample.shape, sample.dtype.str, bool(fit_intercept))

    def get(self, key: tuple[Any, ...], sample: np.ndarray) -> float | None:
        with self._lock:
            found = self._values.get(key)
            if found is None:
                return None
            self._values.move_to_end(key)
        rows, value = found
        # np.array_equal's test (a NaN equals nothing, so such rows never match), without its conversions.
        return value if rows.shape == sample.shape and bool((rows == sample).all()) else None

    def put(self, key: tuple[Any, ...], sample: np.ndarray, value: float) -> None:
        with self._lock:
            self._values[key] = (np.array(sample, copy=True), value)
            self._values.move_to_end(key)
            while len(self._values) > self.entries:
                self._values.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_CACHE = _CurvatureCache(CACHE_ENTRIES)


def clear_cache() -> None:
    """Forget every cached ``λ_max`` (the next check of each data set solves again)."""
    _CACHE.clear()


def largest_curvature(X: np.ndarray, *, fit_intercept: bool = True) -> float:
    """``λ_max(X̃ᵀX̃/m)`` on a deterministic sample of ``m`` rows (all rows when there are few).

    ``X̃`` is ``X`` with a column of ones when ``fit_intercept``; ``m`` is
    :func:`sample_size`. Returns ``inf`` when the value is beyond the float64
    range. A second call on the same rows returns the cached value (see
    :class:`_CurvatureCache`).
    """
    sample = _sampled(X)
    key = _CACHE.key(tuple(X.shape), sample, fit_intercept)
    cached = _CACHE.get(key, sample)
    if cached is not None:
        return cached
    value = _solve_curvature(sample, fit_intercept=fit_intercept)
    _CACHE.put(key, sample, value)
    return value


def _solve_curvature(sample: np.ndarray, *, fit_intercept: bool) -> float:
    """``λ_max`` of ``S̃ᵀS̃/m`` for the sampled rows ``S`` (``m × d``), in float64."""
    m, d = sample.shape
    S = np.array(sample, dtype=np.float64)  # at most SAMPLE_ELEMENTS values (the sample's bound)
    # Scale so that every entry (the intercept's ones included) is at most 1:
    # the products below then neither overflow nor underflow, whatever X's magnitude.
    scale = float(np.max(np.abs(S)))
    if fit_intercept:
        scale = max(scale, 1.0)
    if scale == 0.0:
        return 0.0
    S /= scale
    one = 1.0 / scale if fit_intercept else 0.0  # the intercept's column, scaled
    if d + 1 <= GRAM_MAX_COLUMNS:
        gram = np.empty((d + 1, d + 1))
        gram[:d, :d] = S.T @ S
        gram[:d, d] = gram[d, :d] = S.sum(axis=0) * one
        gram[d, d] = m * one * one
        gram /= m
        if d + 1 <= DIRECT_MAX_COLUMNS:
            estimate = float(np.linalg.eigvalsh(gram)[-1])
        else:
            estimate = _lanczos_largest(lambda v: gram @ v, d + 1)
    else:

        def times_hessian(v: np.ndarray) -> np.ndarray:
            u = S @ v[:d] + one * v[d]
            return np.append(S.T @ u, one * u.sum()) / m

        estimate = _lanczos_largest(times_hessian, d + 1)
    with np.errstate(over="ignore"):
        return float(np.float64(max(estimate, 0.0)) * np.float64(scale) ** 2)


def _lanczos_largest(times: Any, size: int) -> float:
    """The largest eigenvalue of a symmetric positive semi-definite operator, by Lanczos.

    Fully reorthogonalised, from a fixed start vector, for at most
    :data:`LANCZOS_STEPS` steps; it stops early once the largest Ritz value
    changes by less than :data:`RELATIVE_TOLERANCE`, or when the Krylov space
    is invariant (the value is then exact).
    """
    steps = min(size, LANCZOS_STEPS)
    basis = np.empty((steps, size))
    v = np.random.default_rng(_SAMPLE_SEED + 1).standard_normal(size)
    basis[0] = v / np.linalg.norm(v)
    alphas: list[float] = []
    betas: list[float] = []
    estimate = 0.0
    for k in range(steps):
        u = times(basis[k])
        alphas.append(float(basis[k] @ u))
        u -= basis[: k + 1].T @ (basis[: k + 1] @ u)  # against every earlier vector (twice: stable)
        u -= basis[: k + 1].T @ (basis[: k + 1] @ u)
        beta = float(np.linalg.norm(u))
        tridiagonal = np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1)
        previous, estimate = estimate, float(np.linalg.eigvalsh(tridiagonal)[-1])
        if beta <= RELATIVE_TOLERANCE * max(estimate, 1e-300) or k + 1 == steps:
            break
        if k > 0 and abs(estimate - previous) <= RELATIVE_TOLERANCE * estimate:
            break
        betas.append(beta)
        basis[k + 1] = u / beta
    return estimate


def stability_bound(X: np.ndarray, *, fit_intercept: bool = True) -> float:
    """``2/λ_max``: the largest learning rate at which full-batch gradient descent converges.

    ``inf`` when ``X̃`` is all zeros; ``0.0`` when ``λ_max`` overflows float64.
    """
    curvature = largest_curvature(X, fit_intercept=fit_intercept)
    return math.inf if curvature == 0.0 else 2.0 / curvature


def warn_if_unstable(
    X: np.ndarray, lr: float, *, loss: str, fit_intercept: bool, stacklevel: int = 2
) -> float | None:
    """Warn with a :class:`~polylin.errors.StabilityWarning` when ``lr > 2/λ_max``.

    Returns the bound, or ``None`` for a loss the bound does not describe.
    """
    if loss not in CHECKED_LOSSES:
        return None
    curvature = largest_curvature(X, fit_intercept=fit_intercept)
    bound = math.inf if curvature == 0.0 else 2.0 / curvature
    if lr > bound:
        columns = "XᵀX/n" + (", X with a column of ones for the intercept" if fit_intercept else "")
        warnings.warn(
            f"lr={lr:g} is above 2/λ_max = {bound:.3g}, the largest learning rate at which "
            f"full-batch gradient descent converges on this data (λ_max = {curvature:.3g}: the "
            f"largest eigenvalue of {columns}); training will most likely diverge. Use a learning "
            f"rate below {bound:.3g}, e.g. lr={bound / 2:.2g}, or standardise the features "
            "(zero mean, unit variance). Pass check_stability=False to skip this check.",
            StabilityWarning,
            stacklevel=stacklevel + 1,
        )
    return bound
