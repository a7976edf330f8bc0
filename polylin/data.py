"""Synthetic data, ``y = X w + b + noise``, and the book's minibatch reader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from polylin.batching import batch_bounds
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.randomness import data_generator, epoch_order
from polylin.shapes import intercept, weight_vector

BOOK_TRUE_W: tuple[float, ...] = (2.0, -3.4)
BOOK_TRUE_B: float = 4.2
BOOK_N = 1000
BOOK_NOISE = 0.01


def synthetic_data(
    w: Sequence[float] | np.ndarray = BOOK_TRUE_W,
    b: float | np.ndarray = BOOK_TRUE_B,
    n: int = BOOK_N,
    *,
    noise: float = BOOK_NOISE,
    seed: int = 0,
    dtype: str = "float32",
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` examples of ``y = X w + b + ε`` with ``X ~ N(0, 1)`` and ``ε ~ N(0, noise²)``.

    ``w`` may be a vector ``(d,)`` or a column ``(d, 1)``, and ``b`` a number or
    an array of shape ``(1,)`` or ``(1, 1)`` (the book's and seed 000's
    conventions, see :mod:`polylin.shapes`); all give the same data.

    The numbers are drawn in float64 and then rounded to ``dtype``, so a
    float32 and a float64 data set from the same seed hold the same values.

    Returns
    -------
    X : ndarray of shape (n, len(w))
    y : ndarray of shape (n,)
    """
    true_w = weight_vector(w, "w")
    true_b = intercept(b, "b")
    if int(n) != n or n < 1:
        raise ValueError(f"n={n!r} must be a positive whole number of examples.")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise={noise!r} must be a finite standard deviation >= 0.")
    np_dtype = SUPPORTED_DTYPES[canonical_dtype(dtype)]
    rng = data_generator(seed)
    X = rng.normal(0.0, 1.0, (int(n), true_w.size))
    y = X @ true_w + true_b + rng.normal(0.0, noise, int(n))
    return X.astype(np_dtype), y.astype(np_dtype)


def minibatches(
    X: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int = 0,
    epoch: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X_batch, y_batch)`` pairs covering every example once, like the book's ``data_iter``.

    The last batch is kept even when it is shorter than ``batch_size``. The
    order is the one :func:`polylin.fit` uses for the same ``seed`` and ``epoch``.
    """
    order = epoch_order(seed, epoch, len(X), shuffle)
    for start, stop in batch_bounds(len(X), batch_size):
        idx = order[start:stop]
        yield X[idx], y[idx]
