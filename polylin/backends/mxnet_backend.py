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
        self._sgd_update = mxnet.nd.sgd_update
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
        # The fused legacy operator computes p − lr·g in one kernel, writing into p
        # through a zero-copy ``nd`` view; ``p -= lr * g`` on ``mxnet.np`` costs two
        # operator dispatches and about 2.5x the time per step. Its ``lr`` is a
        # float32 attribute, so float64 training keeps the exact two-operator update.
        if self.dtype != "float32":
            for param, grad in zip(params, grads, strict=True):
                param -= lr * grad
            return params
        sgd_update = self._sgd_update
        for param, grad in zip(params, grads, strict=True):
            view = param.as_nd_ndarray()
            sgd_update(view, grad.as_nd_ndarray(), lr=lr, wd=0.0, rescale_grad=1.0, out=view)
        return params

    def synchronize(self, tree: Any) -> None:
        for leaf in tree if isinstance(tree, (tuple, list)) else (tree,):
            leaf.wait_to_read()

    def hessian(self, objective: Any) -> Any:
        """Reverse over reverse with ``autograd.grad(..., create_graph=True)``, as far as MXNet allows.

        MXNet 1.9.1 can differentiate twice only a few elementwise operators
        (``sin``, ``cos``, ``log``, ``exp``, ``square``, ``abs``, ``clip``,
        ``relu`` on legacy ``nd`` arrays). The backward passes of the operators
        every loss needs (matrix product, broadcast multiply, sum, reshape)
        register no gradient of their own, so the second pass fails; this
        raises :class:`NotImplementedError` naming the operator MXNet reports.
        """
        mx, mnp = self._mx, self._mnp

        def hessian(params: Params, X: Array, y: Array) -> Array:
            leaves = [p.copy() for p in params]
            for leaf in leaves:
                leaf.attach_grad()
            rows = []
            try:
                with mx.autograd.record():
                    value = objective(tuple(leaves), X, y)
                    grads = mx.autograd.grad(value, leaves, create_graph=True, retain_graph=True)
                    flat = mnp.concatenate([_as_np(g).reshape(-1) for g in grads])
                    components = [flat[i] for i in range(flat.shape[0])]
                for component in components:
                    second = mx.autograd.grad(component, leaves, retain_graph=True)
                    rows.append(mnp.concatenate([_as_np(s).reshape(-1) for s in second]))
                result = mnp.stack(rows)
                result.wait_to_read()
            except mx.base.MXNetError as exc:
                raise NotImplementedError(_mxnet_second_order_message(str(exc), self.version)) from None
            return result

        return hessian


def _as_np(array: Any) -> Any:
    """``autograd.grad`` hands back legacy ``nd`` arrays; the objective works on ``mxnet.np``."""
    return array.as_np_ndarray() if hasattr(array, "as_np_ndarray") else array


def _mxnet_second_order_message(error: str, version: str) -> str:
    import re

    found = re.search(r"Operator (\S+) is non-differentiable", error)
    culprit = f"operator {found.group(1)} has" if found else "an operator in the objective has"
    return (
        f"The mxnet backend cannot compute this Hessian: in MXNet {version}, {culprit} no "
        "gradient of its own (no FGradient), so autograd cannot differentiate the first "
        "derivative again. MXNet's second-order autograd covers only a few elementwise "
        "operators (sin, cos, log, exp, square, abs, clip, relu), not the products and sums a "
        "loss is made of. Use the numpy backend (hand-derived Hessian) or jax / torch."
    )
