"""NumPy: no autodiff library; the gradients are the hand-derived ones.

The arithmetic goes through array-api-compat's NumPy namespace, so the
objective and its gradient are the same Array API code any compliant
library can run.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np

from polylin.backends.base import Array, HandDerivedGradients, Params, namespace_with


def _sum(x: Array, /, *, axis: int | None = None, keepdims: bool = False) -> Array:
    # np.sum goes through two Python layers before reaching the ufunc; this is the ufunc.
    return np.add.reduce(x, axis=axis, keepdims=keepdims)


@functools.cache
def _blas_threads() -> Any:
    """One threadpoolctl controller, made once: making one scans the loaded libraries (~0.4 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.cache
def _fast_namespace() -> Any:
    """array-api-compat's NumPy namespace, with the per-step calls bound straight to NumPy."""
    import array_api_compat.numpy as compat

    return namespace_with(compat, matmul=np.matmul, sum=_sum)


class NumpyBackend(HandDerivedGradients):
    """Hand-derived gradients on NumPy arrays, updated in place."""

    name = "numpy"

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        self._xp = _fast_namespace()
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return np.__version__

    @property
    def xp(self) -> Any:
        return self._xp

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """NumPy's floating-point warnings off, and one BLAS thread, for the duration of a fit.

        A diverging fit overflows; the training loop detects and reports that itself
        (DivergenceError), so NumPy's per-operation RuntimeWarnings are only noise.
        The products of a minibatch step are too small to share between threads:
        on the ``large`` workload (batches of 1024 × 100) one OpenBLAS thread runs an
        epoch 25-40 % faster than two, and the full-data loss is memory-bound either way.
        The previous thread count is restored when the fit ends.
        """
        stack = contextlib.ExitStack()
        stack.enter_context(np.errstate(over="ignore", invalid="ignore", divide="ignore"))
        stack.enter_context(_blas_threads().limit(limits=1, user_api="blas"))
        return stack

    def asarray(self, host: np.ndarray) -> Array:
        return np.asarray(host, dtype=self.np_dtype)

    def index_array(self, host: np.ndarray) -> Array:
        return np.asarray(host, dtype=np.intp)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def owns(self, x: object) -> bool:
        return isinstance(x, np.ndarray)

    def parameters(self, w: np.ndarray, b: np.ndarray, trainable: bool) -> Params:
        # Always fresh copies: the update writes into them.
        return np.array(w, dtype=self.np_dtype), np.array(b, dtype=self.np_dtype)

    def take(self, X: Array, idx: Array) -> Array:
        return X.take(idx, axis=0)

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        for param, grad in zip(params, grads, strict=True):
            param -= lr * grad
        return params

    def hessian(self, objective: Any) -> Any:
        """The hand-derived Hessian ``Aᵀ diag(l''(r)) A / m`` with ``A = [X 1]``.

        The model is linear in ``(w, b)``, so only the loss's second derivative
        ``l''`` enters: 1 for the squared loss (``H = AᵀA/m``, the ``XᵀX/n`` of
        the normal equations), 0 for the absolute loss (its curvature is all at
        ``r = 0``, where ``l''`` does not exist; 0 is reported there) and, for
        Huber, 1 where ``|r| ≤ δ`` and 0 outside.
        """
        loss = getattr(objective, "loss", None)
        second = _SECOND_DERIVATIVES.get(getattr(loss, "name", None))  # type: ignore[arg-type]
        if second is None:
            raise TypeError(
                "The numpy backend derives Hessians by hand only for a polylin.objective.Objective "
                f"with one of the losses {sorted(_SECOND_DERIVATIVES)}; got {objective!r}."
            )

        def hessian(params: Params, X: Array, y: Array) -> np.ndarray:
            w, b = params
            residual = X @ w + b - y
            design = np.concatenate([X, np.ones((X.shape[0], 1), dtype=X.dtype)], axis=1)
            curvature: np.ndarray = second(residual).astype(X.dtype)
            result: np.ndarray = (design.T * curvature) @ design / X.shape[0]
            return result

        return hessian


def _huber_second_derivative(r: np.ndarray) -> np.ndarray:
    from polylin.losses import HUBER_DELTA

    inside: np.ndarray = (np.abs(r) <= HUBER_DELTA).astype(r.dtype)
    return inside


#: ``l''(r)`` of each loss, as the numpy backend's Hessian uses it.
_SECOND_DERIVATIVES: dict[str, Any] = {
    "squared": np.ones_like,
    "absolute": np.zeros_like,
    "huber": _huber_second_derivative,
}
