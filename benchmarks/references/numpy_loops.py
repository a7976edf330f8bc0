"""NumPy: ``take`` into reused buffers, the gradient and the update in place."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.references.base import Reference, batch_slices


class NumpyInPlace(Reference):
    """Gather with ``np.take(..., out=)`` into preallocated buffers; ``dot(..., out=)``; in-place update."""

    backend = "numpy"
    grad = "analytic"
    idiom = "np.take(out=) into reused buffers, dot(out=), in-place w -= lr/m * X_bᵀr"

    def setup(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X, self.y = X, y
        batch = self.batch_size
        self.xb = np.empty((batch, self.d), dtype=self.dtype)
        self.yb = np.empty(batch, dtype=self.dtype)
        self.r = np.empty(batch, dtype=self.dtype)
        self.gw = np.empty(self.d, dtype=self.dtype)

    def reset(self) -> None:
        self.w = self.w0.copy()
        self.b = self.b0.copy()

    def device_order(self, order: np.ndarray) -> Any:
        return np.asarray(order, dtype=np.intp)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, gw, lr = self.X, self.y, self.w, self.b, self.gw, self.lr
        for start, stop in batch_slices(len(order), self.batch_size):
            m = stop - start
            idx = order[start:stop]
            xb, yb, r = self.xb[:m], self.yb[:m], self.r[:m]
            np.take(X, idx, axis=0, out=xb)
            np.take(y, idx, out=yb)
            np.dot(xb, w, out=r)
            r += b
            r -= yb  # r = X_b w + b − y_b, the gradient of ½r² with respect to ŷ
            np.dot(r, xb, out=gw)
            gw *= lr / m
            w -= gw
            b -= (lr / m) * r.sum()

    def epoch_loss(self) -> float:
        r = self.X @ self.w + self.b - self.y
        return float(0.5 * np.mean(r * r))

    def params(self) -> tuple[np.ndarray, float]:
        return self.w.astype(np.float64), float(self.b[0])


class NumpyInPlaceOneThread(NumpyInPlace):
    """The same loop with BLAS limited to one thread (threadpoolctl): no thread wake-ups on small batches."""

    idiom = "as above, BLAS limited to 1 thread (threadpoolctl)"

    def run_epoch(self, order: Any) -> None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            super().run_epoch(order)


def _references() -> list[type[Reference]]:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return [NumpyInPlace]
    return [NumpyInPlace, NumpyInPlaceOneThread]


REFERENCES = _references()
