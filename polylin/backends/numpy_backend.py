"""NumPy: no autodiff library; the gradients are the objective's hand-derived ones.

The arithmetic goes through array-api-compat's NumPy namespace, so the
objective and its gradient are the same Array API code any compliant
library runs. Three of the namespace's functions are bound straight to
NumPy's kernels (see :func:`_fast_namespace`).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np

from polylin.backends.base import NoAutodiff
from polylin.backends.namespaces import namespace_with
from polylin.host_loss import BESIDE_MIN_BYTES, blas_threads, numpy_view
from polylin.types import Array, Params


def _sum(x: Array, /, *, axis: int | None = None, keepdims: bool = False) -> Array:
    # np.sum goes through two Python layers before it reaches the ufunc; this is the ufunc.
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


@functools.cache
def _fast_namespace() -> Any:
    """array-api-compat's NumPy namespace, with the per-step calls bound straight to NumPy.

    ``ndarray.take`` gathers rows about twice as fast as ``X[idx]`` or ``np.take``
    (NumPy 1.23), and ``matmul`` and ``sum`` skip the compat wrappers.
    """
    import array_api_compat.numpy as compat

    return namespace_with(compat, matmul=np.matmul, sum=_sum, take=np.ndarray.take)


class NumpyBackend(NoAutodiff):
    """Hand-derived gradients on NumPy arrays, updated in place."""

    name = "numpy"
    #: Its loss is NumPy's anyway: the host loss gains only beside the next epoch, on large data.
    host_loss_min_bytes = BESIDE_MIN_BYTES

    def __init__(self, dtype: object = "float32", device: object = None, *, host_loss: bool = True) -> None:
        self.host_loss = bool(host_loss)
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return np.__version__

    @property
    def xp(self) -> Any:
        return _fast_namespace()

    def asarray(self, host: np.ndarray) -> Array:
        host = np.asarray(host)
        if host.dtype.kind in "iu":
            return np.asarray(host, dtype=np.intp)
        # C-contiguous: ndarray.take copies a strided array whole on every call (a column slice
        # such as M[:, :-1] made an epoch on 1M × 21 take 12 s instead of 0.3 s).
        return np.asarray(host, dtype=self.np_dtype, order="C")

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def host_view(self, array: Array) -> np.ndarray | None:
        """The array itself, read-only: the loop's NumPy loss is this backend's own, and it runs
        beside the next epoch's steps (:mod:`polylin.host_loss`)."""
        return numpy_view(array)

    def parameters(self, w: np.ndarray, b: np.ndarray, *, trainable: bool) -> Params:
        # Always fresh copies: the update writes into them.
        return np.array(w, dtype=self.np_dtype), np.array(b, dtype=self.np_dtype)

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        for param, grad in zip(params, grads, strict=True):
            param -= lr * grad
        return params

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """NumPy's floating-point warnings off, and one BLAS thread, for the duration of a fit.

        A diverging fit overflows; the loop detects and reports that itself
        (DivergenceError), so NumPy's per-operation RuntimeWarnings are only noise.
        A minibatch step's products are too small to share between threads: on the
        ``large`` workload (batches of 1024 × 100) one OpenBLAS thread runs an epoch
        25-40 % faster than two. The previous thread count is restored afterwards.
        """
        stack = contextlib.ExitStack()
        stack.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore"))
        stack.enter_context(blas_threads().limit(limits=1, user_api="blas"))
        return stack
