"""Checks on what the user passes, each failing with the argument, the problem and the fix.

Every check runs before any training starts. Nothing here changes the
caller's arrays: conversions make new arrays.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np

_FRAMEWORK_MODULES = ("torch", "jax", "jaxlib", "mxnet", "tensorflow", "cupy", "dask")
_CHUNK_ROWS = 1 << 16


def framework_of(x: object) -> str:
    """The top-level module of an array's type (``'numpy'``, ``'torch'``, ...)."""
    return type(x).__module__.split(".")[0]


def check_positive_int(name: str, value: object, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}={value!r} must be a whole number >= 1; {hint}.")
    return int(value)


def check_learning_rate(lr: object) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr={lr!r} must be a finite number > 0; the book uses lr=0.03.")
    return float(lr)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}.")
    return str(value)


def _host_array(name: str, value: Any, backend: Any) -> np.ndarray:
    framework = framework_of(value)
    if backend.owns(value):
        return np.asarray(backend.to_numpy(value))
    if framework in _FRAMEWORK_MODULES:
        raise TypeError(
            f"{name} is a {type(value).__module__}.{type(value).__name__}, but backend="
            f"{backend.name!r} takes NumPy arrays or its own arrays. Convert {name} to NumPy, "
            f"or choose the backend that owns it."
        )
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise TypeError(f"{name} cannot be converted to an array: {exc}") from exc
    return array


def _check_numeric(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    kind = array.dtype.kind
    if kind == "f":
        return array
    if kind in "iu":
        warnings.warn(
            f"{name} has integer dtype {array.dtype}; polylin converts it to {dtype.name} "
            f"(pass {name}.astype('{dtype.name}') to silence this warning).",
            UserWarning,
            stacklevel=4,
        )
        return array.astype(dtype)
    raise TypeError(
        f"{name} has dtype {array.dtype}, which is not numeric data polylin can train on; "
        f"pass real numbers (float32 or float64)."
    )


def _check_finite(name: str, array: np.ndarray) -> None:
    for start in range(0, array.shape[0], _CHUNK_ROWS):
        chunk = array[start : start + _CHUNK_ROWS]
        if not np.isfinite(chunk).all():
            bad = np.argwhere(~np.isfinite(chunk))[0]
            position = tuple(int(i) + (start if k == 0 else 0) for k, i in enumerate(bad))
            raise ValueError(
                f"{name} contains a non-finite value ({chunk[tuple(bad)]!r} at index "
                f"{position if len(position) > 1 else position[0]}); remove or impute NaN and inf "
                "before fitting."
            )


def host_training_data(X: Any, y: Any, backend: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``X`` and ``y`` and return them as host arrays: ``X (n, d)``, ``y (n,)``.

    ``y`` may have shape ``(n,)`` or ``(n, 1)``; both mean the same thing.
    """
    if X is None or y is None:
        raise ValueError("Pass both X and y, or neither (to train on the book's synthetic data).")
    fx, fy = framework_of(X), framework_of(y)
    if fx != fy and {fx, fy} & set(_FRAMEWORK_MODULES):
        raise TypeError(f"X is a {fx} array but y is a {fy} array; pass both from the same framework.")
    X_host = _host_array("X", X, backend)
    y_host = _host_array("y", y, backend)
    if X_host.ndim != 2:
        raise ValueError(
            f"X must be 2-D with shape (n_examples, n_features); got shape {X_host.shape}. "
            "For a single feature use X.reshape(-1, 1)."
        )
    n, d = X_host.shape
    if n == 0 or d == 0:
        raise ValueError(f"X has shape {X_host.shape}; it needs at least one example and one feature.")
    if y_host.ndim == 2 and y_host.shape[1] == 1:
        y_host = y_host.reshape(-1)
    if y_host.ndim != 1:
        raise ValueError(
            f"y must have shape (n,) or (n, 1); got shape {y_host.shape}. polylin fits one target."
        )
    if y_host.shape[0] != n:
        raise ValueError(
            f"y has {y_host.shape[0]} values but X has {n} rows; they must describe the same examples."
        )
    X_host = _check_numeric("X", X_host, backend.np_dtype)
    y_host = _check_numeric("y", y_host, backend.np_dtype)
    _check_finite("X", X_host)
    _check_finite("y", y_host)
    return X_host, y_host
