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

``λ_max`` is estimated, not computed exactly: by the power method, in
float64, on the Gram matrix of a sample of rows drawn with a fixed seed (all
rows when there are at most ``2²² / (d+1)`` of them; see :func:`sample_size`).
The estimate is therefore deterministic, and its cost is bounded whatever
``n`` is: about 0.1 s for a 10⁶ × 100 matrix, from a sample of 41 527 rows.
It errs both ways, by a few per cent on typical data: the power method
approaches the sample's ``λ_max`` from below, a sample can miss rare rows
of large norm (too low), and for nearly isotropic data a sample's largest
eigenvalue exceeds the population's by about ``(1 + √((d+1)/m))²`` (too
high: 1.10 for ``d = 100`` and ``m = 41 527``). Learning rates within about
10 % of the bound may therefore be warned about or not.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from polylin.errors import StabilityWarning

#: The sample of rows: all of them up to ``SAMPLE_ELEMENTS / (d+1)`` rows, and never fewer than
#: ``MIN_SAMPLE_ROWS`` rows (when there are that many).
SAMPLE_ELEMENTS = 1 << 19  # 4 MiB of float64: the check must not add to a large fit's peak memory
MIN_SAMPLE_ROWS = 4096
#: Up to this many columns (``d+1``) the power method runs on the sample's Gram matrix;
#: beyond, it multiplies by the sample twice per iteration instead.
GRAM_MAX_COLUMNS = 1024
#: Power-method iterations at most, and the relative change that ends them early.
MAX_ITERATIONS = 500
RELATIVE_TOLERANCE = 1e-9
#: The losses whose curvature the bound describes.
CHECKED_LOSSES = ("squared", "huber")
_SAMPLE_SEED = 20240531


def sample_size(n: int, d: int) -> int:
    """How many rows of an ``(n, d)`` matrix enter the estimate of ``λ_max``."""
    return min(n, max(MIN_SAMPLE_ROWS, SAMPLE_ELEMENTS // (d + 1)))


def largest_curvature(X: np.ndarray, *, fit_intercept: bool = True) -> float:
    """Estimate ``λ_max(X̃ᵀX̃/m)`` by the power method on a deterministic sample of ``m`` rows.

    ``X̃`` is ``X`` with a column of ones when ``fit_intercept``; ``m`` is
    :func:`sample_size`. Returns ``inf`` when the value is beyond the float64 range.
    """
    # X is indexed, never converted whole unless it is small: data that lives elsewhere
    # (a lazy or device array wrapped for the host) then sends only the sampled rows.
    shape = tuple(X.shape)
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"X must be a non-empty 2-D array; got shape {shape}.")
    n, d = int(shape[0]), int(shape[1])
    m = sample_size(n, d)
    A = np.empty((m, d + 1))  # the sampled rows, then the intercept's column
    if m < n:
        rows = np.sort(np.random.default_rng(_SAMPLE_SEED).choice(n, size=m, replace=False))
        A[:, :d] = np.asarray(X[rows])
    else:
        A[:, :d] = np.asarray(X)
    # Scale so that every entry (the intercept's ones included) is at most 1:
    # the products below then neither overflow nor underflow, whatever X's magnitude.
    scale = float(np.max(np.abs(A[:, :d])))
    if fit_intercept:
        scale = max(scale, 1.0)
    if scale == 0.0:
        return 0.0
    A[:, :d] /= scale
    A[:, d] = 1.0 / scale if fit_intercept else 0.0

    if d + 1 <= GRAM_MAX_COLUMNS:
        gram = (A.T @ A) / m

        def times_hessian(v: np.ndarray) -> np.ndarray:
            return gram @ v  # type: ignore[no-any-return]

    else:

        def times_hessian(v: np.ndarray) -> np.ndarray:
            return (A.T @ (A @ v)) / m  # type: ignore[no-any-return]

    v = np.random.default_rng(_SAMPLE_SEED + 1).standard_normal(d + 1)
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(MAX_ITERATIONS):
        u = times_hessian(v)
        previous, estimate = estimate, float(v @ u)  # the Rayleigh quotient vᵀHv, ‖v‖ = 1
        norm = float(np.linalg.norm(u))
        if norm == 0.0:
            break
        v = u / norm
        if abs(estimate - previous) <= RELATIVE_TOLERANCE * estimate:
            break
    with np.errstate(over="ignore"):
        return float(np.float64(estimate) * np.float64(scale) ** 2)


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
