"""MXNet: the legacy ``nd`` operators, ``attach_grad``, ``autograd.record`` and ``backward``.

The backend computes on ``mxnet.nd`` arrays through an Array API-shaped
namespace (:mod:`polylin.backends.mxnet_namespace`): each ``nd`` operator
costs a few µs, against 10 to 30 µs for its ``mxnet.np`` twin, and the update
is the fused ``nd.sgd_update``. Users may pass ``mxnet.np`` or ``mxnet.nd``
arrays; both are read through the host.

MXNet writes each backward pass's gradient over the previous one
(``grad_req='write'``), so, unlike a torch ``.grad``, nothing accumulates.
Its engine is asynchronous: a loop that never waits can queue thousands of
steps (and gigabytes), so the epoch runner waits every :data:`WAIT_EVERY` steps.

On the CPU the data are not copied: ``nd.from_numpy(..., zero_copy=True)``
shares the host buffer. It marks the array it is given read-only, so it is
given a view, and the caller's own array stays writable.

MXNet 1.9.1 is the project's final release and imports only with ``numpy<1.24``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from polylin.backends.base import Backend
from polylin.backends.mxnet_namespace import nd_namespace
from polylin.batching import BatchLayout
from polylin.devices import DeviceSpec
from polylin.types import Array, EpochFn, LossFn, Params, StepFn, TreeFn

#: The epoch runner waits for MXNet's engine every this many steps.
WAIT_EVERY = 32


class MxnetBackend(Backend):
    """Tape-based autograd on legacy ``nd`` arrays, updated in place by ``nd.sgd_update``."""

    name = "mxnet"

    def __init__(self, dtype: object = "float32", device: object = None, *, host_loss: bool = True) -> None:
        import mxnet

        self._mx = mxnet
        self._nd = mxnet.nd
        self.host_loss = bool(host_loss)
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return str(self._mx.__version__)

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

    @property
    def xp(self) -> Any:
        return nd_namespace(self._nd)

    def asarray(self, host: np.ndarray) -> Array:
        host = np.asarray(host)
        dtype = np.dtype(np.int64) if host.dtype.kind in "iu" else self.np_dtype
        return self._nd_array(host, dtype, share=True)

    def _nd_array(self, host: np.ndarray, dtype: np.dtype, *, share: bool) -> Array:
        """``host`` as an ``nd`` array on the device; on the CPU it shares ``host``'s buffer when
        ``share`` and ``host`` already is a C-contiguous array of ``dtype``, else a fresh copy's.

        ``nd.from_numpy`` (zero-copy) is used rather than ``nd.array``, which copies and, with
        SciPy installed, warns on every call (a deprecated ``scipy.sparse.csr`` lookup).
        """
        if share and host.dtype == dtype and host.flags.c_contiguous:
            source = host.view()  # from_numpy marks what it is given read-only: not the caller's array
        else:
            source = np.array(host, dtype=dtype, order="C", copy=True)
        if source.size == 0:
            return self._nd.zeros(source.shape, dtype=dtype, ctx=self.device)
        array = self._nd.from_numpy(source, zero_copy=True)
        return array if self.device_spec.kind == "cpu" else array.as_in_context(self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x.asnumpy())

    @property
    def overlaps_host_loss(self) -> bool:
        """``False``: MXNet's engine runs an epoch's operators on worker threads of its own, and beside
        them the NumPy loss made whole fits on 10⁶ × 100 float32 slower than in line (1.03× in 8
        alternated pairs each for autodiff and analytic; 1.01-1.05× in the bench A/B)."""
        return False

    def host_view(self, array: Array) -> np.ndarray | None:
        """A CPU array's buffer through DLPack (``to_dlpack_for_read``, which waits for the array's
        writers; no copy). MXNet's full-data loss took about 46 ms on 10⁶ × 100 float32, NumPy's
        7-8 ms."""
        if not isinstance(array, self._nd.NDArray) or array.context.device_type != "cpu":
            return None
        try:
            view = np.from_dlpack(_DLPackCapsule(array.to_dlpack_for_read()))
        except (AttributeError, BufferError, RuntimeError, TypeError, self._mx.base.MXNetError):
            return None
        view.flags.writeable = False
        return view

    def holds(self, x: Any) -> bool:
        # A legacy NDArray only: MXNet's NumPy-style arrays (mx.np.ndarray, a subclass) go to the
        # host, as before, since the legacy operators refuse them.
        return type(x) is self._nd.NDArray and x.dtype == self.np_dtype and x.context == self.device

    def parameters(self, w: np.ndarray, b: np.ndarray, *, trainable: bool) -> Params:
        # Always fresh copies: the update writes into them.
        w_, b_ = (self._nd_array(np.asarray(p), self.np_dtype, share=False) for p in (w, b))
        if trainable:
            w_.attach_grad()
            b_.attach_grad()
        return w_, b_

    def gradient(self, f: LossFn) -> TreeFn:
        record = self._mx.autograd.record

        def gradient(params: Params, X: Array, y: Array) -> Params:
            with record():
                value = f(params, X, y)
            value.backward()
            return params[0].grad, params[1].grad

        return gradient

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        # The fused legacy operator computes p − lr·g in one kernel, in place. Its ``lr`` is a
        # float32 attribute, so float64 training keeps the exact two-operator update.
        if self.dtype != "float32":
            for param, grad in zip(params, grads, strict=True):
                param -= lr * grad
            return params
        sgd_update = self._nd.sgd_update
        for param, grad in zip(params, grads, strict=True):
            # wd=0 and rescale_grad=1 are the defaults: leaving them out saves ~2 µs each a call.
            sgd_update(param, grad, lr=lr, out=param)
        return params

    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        """The plain loop, waiting for the engine every :data:`WAIT_EVERY` steps."""
        counter = itertools.count(1)

        def waiting_step(params: Params, X: Array, y: Array, idx: Array) -> Params:
            params = step(params, X, y, idx)
            if next(counter) % WAIT_EVERY == 0:
                params[0].wait_to_read()
            return params

        return super().epoch_runner(waiting_step, loss, X, y, layout)

    def synchronize(self, tree: Any) -> None:
        for leaf in tree if isinstance(tree, (tuple, list)) else (tree,):
            leaf.wait_to_read()


class _DLPackCapsule:
    """A DLPack capsule as ``numpy.from_dlpack`` takes it: MXNet 1.9 exports capsules only."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, stream: Any = None) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU, device 0
