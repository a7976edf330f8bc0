"""The shapes in which a user may give the model's parameters (the book's and seed 000's)."""

from __future__ import annotations

from typing import Any

import numpy as np


def weight_vector(value: Any, name: str = "w") -> np.ndarray:
    """``w`` given as ``(d,)`` or as a column ``(d, 1)``, as a float64 array of shape ``(d,)``."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array.reshape(-1)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name} has shape {array.shape}; give one weight per feature, as shape (d,) or a column (d, 1)."
        )
    return array


def intercept(value: Any, name: str = "b") -> float:
    """``b`` given as a number or as an array of shape ``(1,)`` or ``(1, 1)``, as a float."""
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1 or array.ndim > 2:
        raise ValueError(f"{name} has shape {array.shape}; give one intercept, as a number, (1,) or (1, 1).")
    return float(array.reshape(-1)[0])
