"""Checks on what the user passes, each failing with the argument, the problem and the fix.

Every check runs before any training starts. Nothing here changes the
caller's arrays: conversions make new arrays.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from polylin.frameworks import framework_of


def _foreign(framework: str | None) -> bool:
    """Whether arrays of ``framework`` (see :func:`polylin.frameworks.framework_of`) are another
    library's arrays, rather than NumPy's or plain Python data."""
    return framework not in (None, "numpy")


def check_seed(seed: object) -> int:
    """A seed is a whole number >= 0 (NumPy's ``SeedSequence`` takes no negative entropy)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a whole number >= 0, e.g. seed=0.")
    return int(seed)


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
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}; pass one of those.")
    return str(value)


def _host_array(name: str, value: Any, backend: Any) -> np.ndarray:
    if isinstance(value, str | bytes) or (
        isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "SU"
    ):
        text = repr(value if isinstance(value, str | bytes) else value.item())
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise TypeError(
            f"{name} is a string ({shown}), not an array of numbers; pass a NumPy array of real "
            f"numbers{' with shape (n_examples, n_features)' if name == 'X' else ' with shape (n,)'}. "
            "To train on a file, load it first, e.g. numpy.loadtxt(path, delimiter=',')."
        )
    framework = framework_of(value)
    if framework == backend.name:
        return np.asarray(backend.to_numpy(value))
    if _foreign(framework):
        from polylin.backends import backend_for

        raise TypeError(
            f"{name} is a {framework} array ({_type_name(value)}), but "
            f"backend={backend.name!r} takes NumPy arrays or its own arrays. Convert {name} to NumPy, "
            f"or pass backend={backend_for(value)!r}."
        )
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise TypeError(
            f"{name} cannot be converted to an array ({exc}); pass a NumPy array of real numbers."
        ) from exc
    return array


# Integers up to 2**(mantissa bits + 1) are exactly representable in each training dtype.
_EXACT_INTEGER_LIMIT = {"float32": 2**24, "float64": 2**53}


def _check_numeric(name: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Floating-point data passes; integer, boolean and numeric object data are converted
    with a :class:`~polylin.errors.DataConversionWarning`; anything else is refused."""
    kind = array.dtype.kind
    if kind == "f":
        return array
    if kind == "c":
        raise TypeError(
            f"{name} has complex dtype {array.dtype}; polylin fits real numbers. "
            f"Pass {name}.real (or abs({name})) if that is what you mean."
        )
    if kind == "O":
        try:
            converted = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} has dtype object and holds a value that is not a number ({exc}); "
                f"pass real numbers (float32 or float64)."
            ) from None
        _warn_conversion(name, array.dtype, dtype, exact=True)
        return converted
    if kind in "iub":
        exact = True
        if kind in "iu" and array.size:
            limit = _EXACT_INTEGER_LIMIT[dtype.name]
            exact = bool(np.abs(array.astype(np.float64)).max() <= limit)
        _warn_conversion(name, array.dtype, dtype, exact=exact)
        return array.astype(dtype)
    raise TypeError(
        f"{name} has dtype {array.dtype}, which is not numeric data polylin can train on; "
        f"pass real numbers (float32 or float64), e.g. {name}.astype('float32')."
    )


def _warn_conversion(name: str, source: np.dtype, dtype: np.dtype, *, exact: bool) -> None:
    from polylin.errors import DataConversionWarning

    precision = (
        ""
        if exact
        else f" Some of its values are too large to be represented exactly in {dtype.name}; "
        "pass dtype='float64' to keep more digits."
    )
    warnings.warn(
        f"{name} has dtype {source}; polylin converts it to {dtype.name}.{precision} "
        f"Pass {name}.astype('{dtype.name}') to silence this warning.",
        DataConversionWarning,
        stacklevel=5,
    )


#: Rows per block of the finiteness check (at most this many values when X has one column).
_CHUNK_ROWS = 1 << 16
#: Values per block when the data is cast to a narrower training dtype to check its range
#: (a 2 MiB float32 buffer, reused block after block).
_CAST_BLOCK_VALUES = 1 << 19
#: From this many columns on, a block's row sums are one BLAS matrix-vector product (two threads);
#: narrower blocks are summed by NumPy, which is faster there.
_MATVEC_MIN_COLUMNS = 16
#: Data in the training dtype up to this many values is checked whole, by ``np.isfinite`` (a
#: temporary of at most 64 KiB, and no floating-point error state to set and restore).
_WHOLE_CHECK_VALUES = 1 << 16
#: Rows per block where the probed check (:class:`Probe`) looks for a non-finite value.
_PROBE_ROWS = 1 << 14


@dataclass
class Probe:
    """Weights the value check of ``X`` also multiplies ``X`` by, in the same read of it.

    ``fit`` passes its initial ``w`` (``weights_for(d)``), so that the loss before
    training costs no second pass over ``X``: after the check, ``fitted`` holds
    ``X @ w`` (shape ``(n,)``, the training dtype), or stays ``None`` where the
    check could not compute it (data cast to a narrower dtype, a backend that
    validates elsewhere), and the loss is then evaluated as usual.
    """

    weights_for: Callable[[int], np.ndarray]
    fitted: np.ndarray | None = None


def _probed_values(array: np.ndarray, dtype: np.dtype, probe: Probe) -> np.ndarray | None:
    """``X @ w`` and the value check of ``X`` in one read (the check's argument holds for any finite
    weights without a zero: an infinity or a NaN times one is still one); ``None`` where it does not
    apply. Raises as :func:`_check_values` does."""
    if array.ndim != 2 or array.dtype != dtype or dtype not in _BLAS_DTYPES:
        return None
    weights = np.ascontiguousarray(probe.weights_for(array.shape[1]), dtype=dtype)
    if not np.isfinite(weights).all():
        return None
    if not weights.all():
        if weights.any():
            return None
        _check_values("X", array, dtype)  # w = 0 (init="zeros"): X w is 0 once X is known finite
        return np.zeros(array.shape[0], dtype=dtype)
    fitted = np.empty(array.shape[0], dtype=dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        # One product over all of X: blocks would cost a BLAS call, and its threads' wake-up, each.
        if math.isfinite(np.add.reduce(np.matmul(array, weights, out=fitted))):
            return fitted
        for start in range(0, array.shape[0], _PROBE_ROWS):  # find the bad value, block by block
            part = fitted[start : start + _PROBE_ROWS]
            if not math.isfinite(np.add.reduce(part)):
                _raise_on_bad_value("X", array[start : start + _PROBE_ROWS], start, dtype, None)
    return fitted


def _check_values(name: str, array: np.ndarray, dtype: np.dtype, first_row: int = 0) -> None:
    """Every value is finite and fits the training dtype.

    One read of the data, in blocks of rows, and no temporary the size of the
    data: a block whose sum is finite holds only finite values, since a NaN
    or an infinity in any term makes every sum of it NaN or infinite (with
    IEEE arithmetic, whatever the order of the additions). A non-finite sum
    (a NaN, an inf, or finite values that overflow when added) sends the
    block to the exact check, which finds the first bad value or clears the
    block. Data in a wider float type than the training dtype is cast block
    by block into one small buffer of the training dtype first, so that a
    value beyond its range shows up as an infinity in the same sums.
    """
    if not array.size:
        return
    if array.dtype == dtype and array.size <= _WHOLE_CHECK_VALUES:  # one small test, no errstate
        if not np.isfinite(array).all():
            _raise_on_bad_value(name, array, first_row, dtype, None)
        return
    largest = float(np.finfo(dtype).max)
    # Only data in a wider float type than the training dtype can hold values beyond its range.
    check_range = array.dtype.kind == "f" and float(np.finfo(array.dtype).max) > largest
    if check_range:
        rows = max(1, _CAST_BLOCK_VALUES // _row_values(array))
        buffer = np.empty((min(rows, array.shape[0]), *array.shape[1:]), dtype=dtype)
    else:
        rows, buffer = _CHUNK_ROWS, None
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, array.shape[0], rows):
            chunk = array[start : start + rows]
            summed = chunk
            if buffer is not None:
                summed = buffer[: len(chunk)]
                np.copyto(summed, chunk, casting="unsafe")  # beyond the range: inf
            if not np.isfinite(_block_sum(summed)):
                _raise_on_bad_value(name, chunk, first_row + start, dtype, largest if check_range else None)


def _row_values(array: np.ndarray) -> int:
    return max(1, int(np.prod(array.shape[1:], dtype=np.int64)))


def _block_sum(block: np.ndarray) -> Any:
    """A sum of every value of ``block``, non-finite if any value is (see :func:`_check_values`)."""
    if block.ndim == 2 and block.shape[1] >= _MATVEC_MIN_COLUMNS and block.dtype in _BLAS_DTYPES:
        row_sums = block @ np.ones(block.shape[1], dtype=block.dtype)
        return np.add.reduce(row_sums)
    return np.add.reduce(block, axis=None)


_BLAS_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _raise_on_bad_value(
    name: str, chunk: np.ndarray, start: int, dtype: np.dtype, largest: float | None
) -> None:
    """The exact check of one block: raise for its first non-finite (or, with ``largest``, too large)
    value; return when it holds none (its sum overflowed)."""
    finite = np.isfinite(chunk)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise ValueError(
            f"{name} contains a non-finite value ({float(chunk[tuple(bad)])} at index "
            f"{_position(bad, start)}); remove or impute NaN and inf before fitting."
        )
    if largest is None:
        return
    magnitude = np.abs(chunk)
    if float(magnitude.max()) > largest:
        bad = np.argwhere(magnitude > largest)[0]
        value, where = float(chunk[tuple(bad)]), _position(bad, start)
        raise ValueError(
            f"{name} holds {value:.4g} (at index {where}), beyond the largest {dtype.name} "
            f"({largest:.4g}); pass dtype='float64', or rescale {name}."
        )


def _type_name(x: object) -> str:
    return f"{type(x).__module__}.{type(x).__name__}"


def _position(index: np.ndarray, row_offset: int) -> object:
    position = tuple(int(i) + (row_offset if k == 0 else 0) for k, i in enumerate(index))
    return position if len(position) > 1 else position[0]


def _checked_shapes(shape: tuple[int, ...], y: Any) -> Any:
    """Check that ``X`` of ``shape`` is ``(n, d)`` with n, d ≥ 1 and that ``y`` has ``n`` targets,
    as ``(n,)`` or ``(n, 1)``; return ``y`` as ``(n,)``. ``y`` is a NumPy or dask array, or a memory map."""
    if len(shape) != 2:
        hint = "For a single feature use X.reshape(-1, 1)." if len(shape) < 2 else "Flatten the features."
        raise ValueError(f"X must be 2-D with shape (n_examples, n_features); got shape {shape}. {hint}")
    n, d = shape
    if n == 0 or d == 0:
        raise ValueError(
            f"X has shape {shape}, with no {'examples' if n == 0 else 'features'}; "
            "pass at least one example (row) and one feature (column)."
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    if y.ndim != 1:
        raise ValueError(
            f"y must have shape (n,) or (n, 1); got shape {tuple(y.shape)}. polylin fits one target: "
            "pass one column of y at a time."
        )
    if y.shape[0] != n:
        raise ValueError(
            f"y has {y.shape[0]} values but X has {n} rows; they must describe the same examples "
            "(one target per row of X)."
        )
    return y


def host_training_data(
    X: Any, y: Any, backend: Any, probe: Probe | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``X`` and ``y`` and return them as host arrays: ``X (n, d)``, ``y (n,)``.

    ``y`` may have shape ``(n,)`` or ``(n, 1)``; both mean the same thing. The
    arrays returned may share memory with the caller's: nothing writes to them.
    With a :class:`Probe`, the check of ``X``'s values also computes ``X @ w``.
    """
    if X is None or y is None:
        missing = "X" if X is None else "y"
        raise ValueError(
            f"{missing} is missing: pass both X and y, or neither (to train on the book's synthetic data)."
        )
    fx, fy = framework_of(X), framework_of(y)
    if fx != fy and (_foreign(fx) or _foreign(fy)):
        raise TypeError(
            f"X comes from {fx} ({_type_name(X)}) but y from {fy} ({_type_name(y)}); pass both "
            "from the same framework, or both as NumPy arrays."
        )
    X_host = _host_array("X", X, backend)
    y_host = _host_array("y", y, backend)
    y_host = _checked_shapes(tuple(X_host.shape), y_host)
    X_host = _check_numeric("X", X_host, backend.np_dtype)
    y_host = _check_numeric("y", y_host, backend.np_dtype)
    fitted = None if probe is None else _probed_values(X_host, backend.np_dtype, probe)
    if fitted is None:
        _check_values("X", X_host, backend.np_dtype)
    elif probe is not None:
        probe.fitted = fitted
    _check_values("y", y_host, backend.np_dtype)
    return X_host, y_host


def device_training_data(X: Any, y: Any, backend: Any) -> tuple[Any, Any]:
    """Validate ``X`` and ``y``, the backend's own arrays in the fit's dtype (``backend.holds``),
    where they are, and return them as :class:`~polylin.resident.ResidentArray` s, uncopied.

    The same checks and messages as :func:`host_training_data`: shapes from the arrays, then one
    sum of each on the device, which is finite exactly when every value is (see
    :func:`_check_values`); only a non-finite sum brings the array to the host, to name the value.
    """
    from polylin.resident import ResidentArray

    y = _checked_shapes(tuple(int(s) for s in X.shape), y)
    for name, array in (("X", X), ("y", y)):
        with backend.context():  # JAX sums float64 only with x64 on
            total = float(np.asarray(backend.to_numpy(backend.xp.sum(array))).reshape(-1)[0])
        if not math.isfinite(total):
            _check_values(name, np.asarray(backend.to_numpy(array)), backend.np_dtype)
    return ResidentArray(X, backend.np_dtype, backend), ResidentArray(y, backend.np_dtype, backend)


# -- out-of-core data: checked chunk by chunk ------------------------------------------------
#: Rows per block of the out-of-core checks: about this many bytes of the source at once.
_OUT_OF_CORE_BLOCK_BYTES = 8 * 2**20


def out_of_core_training_data(X: Any, y: Any, backend: Any) -> tuple[Any, Any]:
    """Validate out-of-core ``X`` and ``y`` (dask arrays, memory maps) without reading them whole.

    The same checks as :func:`host_training_data`, the same messages: shapes and
    dtypes from the arrays' metadata, then one pass, block by block (releasing a
    memory map's pages as it goes), for non-finite values, values beyond the
    training dtype's range and integers it cannot hold exactly. Returns ``X``
    and ``y`` as they are (``y`` of shape ``(n, 1)`` as a view of shape ``(n,)``);
    blocks are converted to the training dtype as they are read.
    """
    from polylin.streaming import ChunkedArray

    if y is None:
        raise ValueError(
            "y is missing: pass both X and y, or neither (to train on the book's synthetic data)."
        )
    fx, fy = framework_of(X), framework_of(y)
    if fy not in (None, "numpy", fx):
        raise TypeError(
            f"X comes from {fx} ({_type_name(X)}) but y from {fy} ({_type_name(y)}); pass both "
            "from the same framework, or y as a NumPy array."
        )
    if fy is None:
        y = _host_array("y", y, backend)
    shape = tuple(X.shape)
    if any(not isinstance(s, int | np.integer) for s in shape):
        raise ValueError(
            f"X has shape {shape}, with sizes dask does not know yet; make them known first "
            "(X.compute_chunk_sizes())."
        )
    y = _checked_shapes(shape, y)
    for name, value in (("X", X), ("y", y)):
        _check_chunked(name, ChunkedArray(value, backend.np_dtype), backend.np_dtype)
    return X, y


def _check_chunked(name: str, data: Any, dtype: np.dtype) -> None:
    """:func:`_check_numeric` and :func:`_check_values`, one block at a time."""
    source_dtype = np.dtype(data.source.dtype)
    kind = source_dtype.kind
    if kind == "O":
        raise TypeError(
            f"{name} has dtype object; polylin streams numeric data only: pass real numbers, "
            f"e.g. {name}.astype('float32')."
        )
    if kind not in "fiub":
        _check_numeric(name, np.empty(0, dtype=source_dtype), dtype)  # raises, with its message
    rows = max(1, _OUT_OF_CORE_BLOCK_BYTES // max(1, data.row_bytes))
    largest = 0.0
    for start, block in data.raw_blocks(rows):
        if kind == "f":
            _check_values(name, block, dtype, first_row=start)
        elif kind in "iu" and block.size:
            largest = max(largest, float(np.abs(block.astype(np.float64)).max()))
    if kind in "iub":
        _warn_conversion(name, source_dtype, dtype, exact=largest <= _EXACT_INTEGER_LIMIT[dtype.name])
