"""MXNet: ``mxnet.np`` arrays, ``attach_grad``, ``autograd.record`` and ``backward``.

MXNet writes each backward pass's gradient over the previous one
(``grad_req='write'``), so, unlike a torch ``.grad``, nothing accumulates.
Its engine is asynchronous: a loop that never waits can queue thousands of
steps, so the epoch loop waits every :attr:`MxnetBackend.sync_every` steps.

MXNet 1.9.1 is the project's final release and imports only with
``numpy<1.24``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polylin.backends.base import Array, Backend, DeviceSpec, Params, ValueAndGradFn


class MxnetBackend(Backend):
    """Tape-based autograd on ``mxnet.np`` arrays, updated in place."""

    name = "mxnet"
    sync_every = 32

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        import mxnet

        self._mx = mxnet
        self._mnp = mxnet.np
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return str(self._mx.__version__)

    @property
    def xp(self) -> Any:
        return self._mnp

    @property
    def device_name(self) -> str:
        return str(self.device)

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        mx = self._mx
        if spec.kind == "cpu":
            return mx.cpu()
        n_gpus = mx.context.num_gpus()
        if spec.index >= n_gpus:
            raise self.device_error(spec, f"mxnet sees {n_gpus} GPU(s)")
        return mx.gpu(spec.index)

    def asarray(self, host: np.ndarray) -> Array:
        return self._mnp.array(host, dtype=self.np_dtype, ctx=self.device)

    def index_array(self, host: np.ndarray) -> Array:
        return self._mnp.array(host, dtype=np.int64, ctx=self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.asnumpy()  # type: ignore[no-any-return]

    def owns(self, x: object) -> bool:
        return isinstance(x, (self._mnp.ndarray, self._mx.nd.NDArray))

    def parameters(self, w: np.ndarray, b: np.ndarray, trainable: bool) -> Params:
        params = (self.asarray(w), self.asarray(b))
        if trainable:
            for param in params:
                param.attach_grad()
        return params

    def take(self, X: Array, idx: Array) -> Array:
        return self._mnp.take(X, idx, axis=0)

    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        record = self._mx.autograd.record

        def value_and_grad(params: Params, X: Array, y: Array) -> tuple[Array, Params]:
            with record():
                value = objective(params, X, y)
            value.backward()
            return value, tuple(p.grad for p in params)  # type: ignore[return-value]

        return value_and_grad

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        for param, grad in zip(params, grads, strict=True):
            param -= lr * grad
        return params

    def synchronize(self, tree: Any) -> None:
        for leaf in tree if isinstance(tree, (tuple, list)) else (tree,):
            leaf.wait_to_read()
