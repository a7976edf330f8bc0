"""Training data that stays where the user put it: validated there, and never copied to the host.

:func:`polylin.fit` takes the user's arrays through
:meth:`~polylin.backends.base.Backend.training_data`. When they are already
the backend's own arrays in the fit's dtype on its device (a JAX array, a
torch tensor, an MXNet NDArray, or any Array API library's array on the
array-api backend), they come back wrapped in a :class:`ResidentArray`. The
fit reads their shape, samples rows from them for the data fingerprint and the
learning-rate bound (only those rows cross to the host), and trains on the
array itself: no device → host → device round trip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polylin.types import Array


class ResidentArray:
    """A validated backend array, seen from the host through the few operations the fit needs."""

    def __init__(self, array: Array, dtype: Any, backend: Any = None) -> None:
        self.array = array
        self.dtype = np.dtype(dtype)
        #: The backend whose array it is; ``None``: any Array API library's (array-api-compat).
        self.backend = backend

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(size) for size in self.array.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: Any) -> np.ndarray:
        """The rows ``rows`` (a slice or NumPy indices) on the host; nothing else is copied."""
        if isinstance(rows, slice):  # the Array API asks for every axis to be indexed
            return self._host(self.array[rows, ...] if self.backend is None else self.array[rows])
        if self.backend is None:
            from polylin.backends.array_api_backend import device_of, namespace_of

            xp = namespace_of(self.array)
            index = xp.asarray(np.asarray(rows, dtype=np.int64), device=device_of(self.array))
        else:  # in the backend's context: JAX keeps float64 only with x64 on
            with self.backend.context():
                index = self.backend.asarray(np.asarray(rows, dtype=np.int64))
                return self._host(self.backend.xp.take(self.array, index, axis=0))
        return self._host(xp.take(self.array, index, axis=0))

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        host = self._host(self.array)
        return host if dtype is None else host.astype(dtype)

    def _host(self, x: Array) -> np.ndarray:
        if self.backend is None:
            from polylin.backends.array_api_backend import host_array

            return host_array(x)
        return np.asarray(self.backend.to_numpy(x))


def device_arrays(X: Any, y: Any) -> tuple[Any, Any] | None:
    """The backend arrays inside validated training data, or ``None`` for host data."""
    if isinstance(X, ResidentArray) and isinstance(y, ResidentArray):
        return X.array, y.array
    return None
