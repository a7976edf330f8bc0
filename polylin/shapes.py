"""The shapes a user may write parameters in: the book's and seed 000's conventions.

The book writes the true weights as a vector, ``w = [2, -3.4]``, and the
intercept as a number; seed 000 (the chapter's forum post) and many readers
write ``w`` as a column of shape ``(d, 1)`` and ``b`` as an array of shape
``(1,)``. These helpers accept all of them and return polylin's one form: a
1-D float64 weight vector and a Python float.
"""

from __future__ import annotations

import numpy as np

WEIGHT_SHAPES = "(d,) or (d, 1)"
INTERCEPT_SHAPES = "a number, or an array of shape (1,) or (1, 1)"


def _as_float_array(value: object, name: str, accepted: str) -> np.ndarray:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be {accepted}; got the string {value!r}.")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be {accepted}; got {value!r} ({exc}).") from None
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite numbers; got {value!r}.")
    return array


def weight_vector(value: object, name: str = "w") -> np.ndarray:
    """``value`` as a 1-D float64 array of shape ``(d,)``; accepts shape ``(d,)`` or a column ``(d, 1)``.

    Raises ``ValueError`` for any other shape (a row ``(1, d)`` with d > 1, a
    matrix, a scalar, an empty array), naming the accepted shapes.
    """
    weights = _as_float_array(value, name, f"numbers of shape {WEIGHT_SHAPES}")
    if weights.ndim == 2 and weights.shape[1] == 1:
        weights = weights[:, 0]
    if weights.ndim != 1 or weights.size == 0:
        hint = (
            " (a row; pass it as a vector or a column)" if weights.ndim == 2 and weights.shape[0] == 1 else ""
        )
        raise ValueError(
            f"{name} must have shape {WEIGHT_SHAPES} with d >= 1 weights; got shape {weights.shape}{hint}."
        )
    return weights


def intercept(value: object, name: str = "b") -> float:
    """``value`` as a float; accepts a number or an array of shape ``()``, ``(1,)`` or ``(1, 1)``.

    Raises ``ValueError`` for an array of more than one number, naming the accepted shapes.
    """
    array = _as_float_array(value, name, INTERCEPT_SHAPES)
    if array.shape not in ((), (1,), (1, 1)):
        raise ValueError(f"{name} must be {INTERCEPT_SHAPES}; got shape {array.shape}.")
    return float(array.reshape(()))


__all__ = ["INTERCEPT_SHAPES", "WEIGHT_SHAPES", "intercept", "weight_vector"]
