"""MXNet: the legacy ``nd`` operators, ``attach_grad``, ``autograd.record`` and ``backward``.

The backend computes on ``mxnet.nd`` arrays through an Array API-shaped
namespace (:mod:`polylin.backends.mxnet_namespace`): each ``nd`` operator
costs a few µs, against 10 to 30 µs for its ``mxnet.np`` twin, and the update
is the fused ``nd.sgd_update``. Users may pass ``mxnet.np`` or ``mxnet.nd``
arrays; both are read through the host.

MXNet writes each backward pass's gradient over the previous one
(``grad_req='write'``), so, unlike a torch ``.grad``, nothing accumulates.
Its engine is asynchronous: a loop that never waits can queue thousands of
steps, so the epoch loop waits every :attr:`MxnetBackend.sync_every` steps.

On the CPU the data are not copied: ``nd.from_numpy(..., zero_copy=True)``
shares the host buffer. It marks the array it is given read-only, so it is
given a view, and the caller's own array stays writable.

MXNet 1.9.1 is the project's final release and imports only with
``numpy<1.24``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polylin.backends.base import Array, Backend, DeviceSpec, Params, ValueAndGradFn
from polylin.backends.mxnet_namespace import nd_namespace


class MxnetBackend(Backend):
    """Tape-based autograd on legacy ``nd`` arrays, updated in place by ``nd.sgd_update``."""

    name = "mxnet"
    sync_every = 32

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        import mxnet

        self._mx = mxnet
        self._nd = mxnet.nd
        self._xp = nd_namespace(mxnet.nd)
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return str(self._mx.__version__)

    @property
    def xp(self) -> Any:
        return self._xp

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

    def _nd_array(self, host: Any, dtype: np.dtype, *, share: bool) -> Array:
        """``host`` as an ``nd`` array on the device; on the CPU it shares ``host``'s buffer when
        ``share`` and ``host`` already is a C-contiguous array of ``dtype``, else a fresh copy's.

        ``nd.from_numpy`` (zero-copy) is used rather than ``nd.array``, which copies and, with
        SciPy installed, warns on every call (a deprecated ``scipy.sparse.csr`` lookup).
        """
        host = np.asarray(host)
        if share and host.dtype == dtype and host.flags.c_contiguous:
            source = host.view()  # from_numpy marks what it is given read-only: not the caller's array
        else:
            source = np.array(host, dtype=dtype, order="C", copy=True)
        if source.size == 0:
            return self._nd.zeros(source.shape, dtype=dtype, ctx=self.device)
        array = self._nd.from_numpy(source, zero_copy=True)
        return array if self.device_spec.kind == "cpu" else array.as_in_context(self.device)

    def asarray(self, host: np.ndarray) -> Array:
        return self._nd_array(host, self.np_dtype, share=True)

    def index_array(self, host: np.ndarray) -> Array:
        return self._nd_array(host, np.dtype(np.int64), share=True)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.asnumpy()  # type: ignore[no-any-return]

    def owns(self, x: object) -> bool:
        return isinstance(x, (self._mx.np.ndarray, self._nd.NDArray))

    def parameters(self, w: np.ndarray, b: np.ndarray, trainable: bool) -> Params:
        # Always fresh copies: the update writes into them.
        params = tuple(self._nd_array(p, self.np_dtype, share=False) for p in (w, b))
        if trainable:
            for param in params:
                param.attach_grad()
        return params  # type: ignore[return-value]

    def take(self, X: Array, idx: Array) -> Array:
        # axis=0 is nd.take's default; every keyword costs MXNet's front end a few µs a call.
        return self._nd.take(X, idx)

    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        record = self._mx.autograd.record

        def value_and_grad(params: Params, X: Array, y: Array) -> tuple[Array, Params]:
            with record():
                value = objective(params, X, y)
            value.backward()
            return value, tuple(p.grad for p in params)  # type: ignore[return-value]

        return value_and_grad

    def evaluator(self, objective: Any) -> Any:
        # A full reduction in nd has shape (1,): read its one element.
        return lambda params, X, y: float(objective(params, X, y).asnumpy().reshape(-1)[0])

    def deferred_evaluator(self, objective: Any) -> Any:
        def start(params: Params, X: Array, y: Array) -> Any:
            pending = objective(params, X, y)  # queued on MXNet's engine; asnumpy() waits for it
            return lambda: float(pending.asnumpy().reshape(-1)[0])

        return start

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        # The fused legacy operator computes p − lr·g in one kernel, in place. Its ``lr``
        # is a float32 attribute, so float64 training keeps the exact two-operator update.
        if self.dtype != "float32":
            for param, grad in zip(params, grads, strict=True):
                param -= lr * grad
            return params
        sgd_update = self._nd.sgd_update
        for param, grad in zip(params, grads, strict=True):
            # wd=0 and rescale_grad=1 are the defaults: leaving them out saves ~2 µs each a call.
            sgd_update(param, grad, lr=lr, out=param)
        return params

    def descend(self, params: Params, g: Array, X: Array, lr: float) -> Params:
        """``Xᵀg`` by ``nd.dot`` and ``Σg`` by a plain ``nd.sum`` (already shape ``(1,)`` in legacy
        ``nd``, so without the ``axis``/``keepdims`` keywords), then :meth:`update`."""
        return self.update(params, (self._nd.dot(g, X), self._nd.sum(g)), lr)

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
        mx, nd = self._mx, self._nd

        def hessian(params: Params, X: Array, y: Array) -> Array:
            leaves = [p.copy() for p in params]
            for leaf in leaves:
                leaf.attach_grad()
            rows = []
            try:
                with mx.autograd.record():
                    value = objective(tuple(leaves), X, y)
                    grads = mx.autograd.grad(value, leaves, create_graph=True, retain_graph=True)
                    flat = nd.concat(*[g.reshape(-1) for g in grads], dim=0)
                    components = [flat[i] for i in range(flat.shape[0])]
                for component in components:
                    second = mx.autograd.grad(component, leaves, retain_graph=True)
                    rows.append(nd.concat(*[s.reshape(-1) for s in second], dim=0))
                result = nd.stack(*rows)
                result.wait_to_read()
            except mx.base.MXNetError as exc:
                raise NotImplementedError(_mxnet_second_order_message(str(exc), self.version)) from None
            return result

        return hessian


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
