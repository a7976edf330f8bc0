"""MXNet: the legacy ``nd`` operators with the fused ``sgd_update``, with autograd or gradients by hand.

MXNet's engine is asynchronous: every operator call returns at once and the
work is queued. The loops wait for the queue every :data:`SYNC_EVERY`
steps, as polylin does, so a long epoch of tiny steps does not queue tens of
thousands of operations.
"""

from __future__ import annotations

from typing import Any

import mxnet as mx
import numpy as np
from mxnet import autograd, nd

from benchmarks.references.base import Reference, batch_slices

SYNC_EVERY = 32


class _Mxnet(Reference):
    backend = "mxnet"
    context = mx.cpu()

    def setup(self, X: np.ndarray, y: np.ndarray) -> None:
        self.X = nd.array(X, ctx=self.context, dtype=X.dtype)
        self.y = nd.array(y, ctx=self.context, dtype=y.dtype)

    def device_order(self, order: np.ndarray) -> Any:
        return nd.array(order, ctx=self.context, dtype=np.int64)

    def synchronize(self) -> None:
        self.w.wait_to_read()
        self.b.wait_to_read()

    def epoch_loss(self) -> float:
        r = nd.dot(self.X, self.w) + self.b - self.y
        return float((0.5 * nd.mean(r * r)).asscalar())

    def params(self) -> tuple[np.ndarray, float]:
        return self.w.asnumpy().astype(np.float64), float(self.b.asnumpy()[0])


class MxnetNdAutograd(_Mxnet):
    """``attach_grad``, ``autograd.record``, ``backward``, then ``nd.sgd_update(out=w)``."""

    grad = "autodiff"
    idiom = "nd.take, autograd.record + backward, nd.sgd_update(out=) (legacy nd API)"

    def reset(self) -> None:
        self.w = nd.array(self.w0, ctx=self.context, dtype=self.dtype)
        self.b = nd.array(self.b0, ctx=self.context, dtype=self.dtype)
        self.w.attach_grad()
        self.b.attach_grad()

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        for count, (start, stop) in enumerate(batch_slices(order.shape[0], self.batch_size), start=1):
            idx = order[start:stop]
            xb, yb = nd.take(X, idx), nd.take(y, idx)
            with autograd.record():
                r = nd.dot(xb, w) + b - yb
                loss = 0.5 * nd.mean(r * r)
            loss.backward()
            nd.sgd_update(w, w.grad, lr=lr, out=w)
            nd.sgd_update(b, b.grad, lr=lr, out=b)
            if count % SYNC_EVERY == 0:
                w.wait_to_read()


class MxnetNdAnalytic(_Mxnet):
    """Hand-derived gradient; ``nd.sgd_update`` with ``rescale_grad=1/m`` folds the mean into the update."""

    grad = "analytic"
    idiom = "nd.take, nd.dot, nd.sgd_update(rescale_grad=1/m, out=) (legacy nd API)"

    def reset(self) -> None:
        self.w = nd.array(self.w0, ctx=self.context, dtype=self.dtype)
        self.b = nd.array(self.b0, ctx=self.context, dtype=self.dtype)

    def run_epoch(self, order: Any) -> None:
        X, y, w, b, lr = self.X, self.y, self.w, self.b, self.lr
        for count, (start, stop) in enumerate(batch_slices(order.shape[0], self.batch_size), start=1):
            m = stop - start
            idx = order[start:stop]
            xb = nd.take(X, idx)
            r = nd.dot(xb, w) + b - nd.take(y, idx)
            nd.sgd_update(w, nd.dot(r, xb), lr=lr, rescale_grad=1.0 / m, out=w)
            nd.sgd_update(b, nd.sum(r), lr=lr, rescale_grad=1.0 / m, out=b)
            if count % SYNC_EVERY == 0:
                w.wait_to_read()


REFERENCES: list[type[Reference]] = [MxnetNdAutograd, MxnetNdAnalytic]
