"""PyTorch: functional autograd with ``torch.autograd.grad``; the update in place under ``no_grad``.

``torch.autograd.grad`` returns fresh gradients and never writes ``.grad``,
so nothing accumulates from one step to the next and no ``zero_grad`` is
needed (the book's ``param.grad.zero_()``).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import numpy as np

from polylin.backends.base import Backend
from polylin.backends.namespaces import namespace_with
from polylin.batching import BatchLayout
from polylin.devices import DeviceSpec
from polylin.host_loss import read_only
from polylin.types import Array, EpochFn, LossFn, Params, StepFn, TreeFn


@functools.cache
def _fast_namespace() -> Any:
    """array-api-compat's torch namespace, with the per-step calls bound straight to torch.

    The compat wrappers check and promote dtypes on every call (about 4 µs for a
    small ``matmul``); polylin's arrays always share one float dtype, so the plain
    torch functions mean the same here.
    """
    import array_api_compat.torch as compat
    import torch

    def sum_(x: Array, /, *, axis: int | None = None, keepdims: bool = False) -> Array:
        return torch.sum(x) if axis is None else torch.sum(x, dim=axis, keepdim=keepdims)

    def take(x: Array, indices: Array, /, *, axis: int = 0) -> Array:
        return torch.index_select(x, axis, indices)

    return namespace_with(
        compat, matmul=torch.matmul, mean=torch.mean, sum=sum_, take=take,
        abs=torch.abs, sign=torch.sign, clip=torch.clamp, zeros_like=torch.zeros_like,
    )  # fmt: skip


def _fused_step(step: Any) -> StepFn | None:
    """The SGD step (:class:`polylin.training.SGDStep`) with torch's fused kernels, for a plain
    :class:`~polylin.objective.Objective`; ``None`` for any other step.

    ``ŷ = X_b w + b`` is one ``addmv`` (one autograd node instead of two). By hand
    (``grad="analytic"``), ``r = ŷ − y_b`` is subtracted in place, then ``w.addmv_(X_bᵀ, g)`` and
    ``b.sub_(Σg)`` with ``g = l'(r)`` apply the step with no gradient tensor. It is the same
    arithmetic as the plain step. Measured per step, medians of alternating timeit runs on
    20000 × 10 float32 data at batch 1: analytic 0.77× the plain step (10.9 against 14.2 µs),
    and whole-fit ratios against the hand-written loops of 1.07-1.12× without the fused autodiff
    step (``python -m benchmarks.ab``, book and tiny-batch).
    """
    from polylin.objective import Objective

    objective = getattr(step, "objective", None)
    if type(objective) is not Objective:
        return None
    import torch

    xp, loss, lr, intercept = objective.xp, objective.loss, step.lr, objective.fit_intercept
    addmv, index_select, autograd_grad, no_grad = (
        torch.addmv,
        torch.index_select,
        torch.autograd.grad,
        torch.no_grad,
    )

    def residual(w: Array, b: Array, X_batch: Array, y_batch: Array) -> Array:
        return (addmv(b, X_batch, w) if intercept else X_batch @ w) - y_batch

    def analytic(params: Params, X: Array, y: Array, idx: Array) -> Params:
        w, b = params
        X_batch = index_select(X, 0, idx)
        m = X_batch.shape[0]
        fitted = addmv(b, X_batch, w) if intercept else X_batch @ w
        g = loss.derivative(xp, fitted.sub_(index_select(y, 0, idx)))
        w.addmv_(X_batch.t(), g, alpha=-lr / m)
        if intercept:
            b.sub_(g.sum(), alpha=lr / m)
        return params

    def autodiff(params: Params, X: Array, y: Array, idx: Array) -> Params:
        w, b = params
        X_batch = index_select(X, 0, idx)
        total = xp.sum(loss.pointwise(xp, residual(w, b, X_batch, index_select(y, 0, idx))))
        grad_w, grad_b = autograd_grad(total, params, materialize_grads=True)
        step_size = lr / X_batch.shape[0]
        with no_grad():
            w.add_(grad_w, alpha=-step_size)
            b.add_(grad_b, alpha=-step_size)
        return params

    return {"analytic": analytic, "autodiff": autodiff}.get(str(getattr(step, "grad", "")))


class TorchBackend(Backend):
    """Autograd on torch tensors, updated in place with ``add_(alpha=-lr)``."""

    name = "torch"

    def __init__(self, dtype: object = "float32", device: object = None, *, host_loss: bool = True) -> None:
        import torch

        self._torch = torch
        self.host_loss = bool(host_loss)
        super().__init__(dtype, device)
        self.torch_dtype = getattr(torch, self.dtype)
        self._no_grad = torch.no_grad()  # one reusable context for every update

    @property
    def version(self) -> str:
        return str(self._torch.__version__)

    @property
    def device_name(self) -> str:
        return str(self.device)

    @property
    def overlaps_host_work(self) -> bool:
        """On the CPU torch's kernels run on every core (``torch.get_num_threads()``), so a thread
        drawing the next order slows the epoch about as much as it saves (measured 1.03× the
        whole fit on ``large``); on a GPU the host is free."""
        return bool(self.device.type != "cpu")

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        torch = self._torch
        if spec.kind == "cpu":
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise self.device_error(spec, "torch.cuda.is_available() is False")
        if spec.index >= torch.cuda.device_count():
            raise self.device_error(spec, f"torch sees {torch.cuda.device_count()} GPU(s)")
        return torch.device("cuda", spec.index)

    @property
    def xp(self) -> Any:
        return _fast_namespace()

    def asarray(self, host: np.ndarray) -> Array:
        host = np.asarray(host)
        dtype = self._torch.int64 if host.dtype.kind in "iu" else self.torch_dtype
        if host.flags.writeable:  # an epoch's order, fresh host data: nothing to warn of
            return self._torch.as_tensor(host, dtype=dtype, device=self.device)
        with warnings.catch_warnings():
            # as_tensor shares a read-only buffer and warns that torch could write to it;
            # polylin never writes to the data.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            return self._torch.as_tensor(host, dtype=dtype, device=self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x.detach().cpu().numpy())

    def host_view(self, array: Array) -> np.ndarray | None:
        """A CPU tensor's buffer through ``Tensor.numpy`` (no copy). torch's ``X @ w`` on the CPU
        runs on one thread: 25-26 ms on 10⁶ × 100 float32, where NumPy's BLAS takes 7-8 ms."""
        torch = self._torch
        if not isinstance(array, torch.Tensor) or array.device.type != "cpu" or array.requires_grad:
            return None
        try:
            view = array.numpy()
        except (RuntimeError, TypeError):
            return None
        return read_only(view, array.data_ptr())

    def holds(self, x: Any) -> bool:
        torch = self._torch
        return (
            isinstance(x, torch.Tensor) and x.dtype == self.torch_dtype and x.device == self.device
            and not x.requires_grad
        )  # fmt: skip

    def parameters(self, w: np.ndarray, b: np.ndarray, *, trainable: bool) -> Params:
        torch = self._torch
        w_, b_ = (
            torch.tensor(p, dtype=self.torch_dtype, device=self.device, requires_grad=trainable)
            for p in (w, b)
        )
        return w_, b_

    def gradient(self, f: LossFn) -> TreeFn:
        autograd_grad = self._torch.autograd.grad

        def gradient(params: Params, X: Array, y: Array) -> Params:
            # materialize_grads: b's gradient is 0, not None, for a model without intercept.
            grad_w, grad_b = autograd_grad(f(params, X, y), params, materialize_grads=True)
            return grad_w, grad_b

        return gradient

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        if params[0].requires_grad:  # leaves of a graph: keep the update out of it
            with self._no_grad:
                for param, grad in zip(params, grads, strict=True):
                    param.add_(grad, alpha=-lr)
        else:
            for param, grad in zip(params, grads, strict=True):
                param.add_(grad, alpha=-lr)
        return params

    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        """The plain loop, with the step's fused kernels where it can have them (:func:`_fused_step`);
        the full-data loss is evaluated without recording a graph.

        The batches' rows come from one ``split`` of the order (one call, where slicing it batch by
        batch costs about 1 µs a batch), and the fused hand-derived step runs in
        ``torch.inference_mode``: it records nothing and reads no gradient, and the mode skips
        autograd's bookkeeping on every kernel (together about 0.8× the plain loop's epoch on the
        book's setup, the same kernels on the same numbers).
        """
        torch = self._torch
        no_grad, batch_size, asarray = torch.no_grad, layout.batch_size, self.asarray
        fused = _fused_step(step)
        untracked = fused is not None and getattr(step, "grad", None) == "analytic"
        steps = fused or step
        mode: Any = torch.inference_mode if untracked else contextlib.nullcontext

        def run_epoch(params: Params, order: np.ndarray) -> tuple[Params, Array]:
            with mode():
                for idx in asarray(order).split(batch_size):
                    params = steps(params, X, y, idx)
            with no_grad():
                return params, loss(params, X, y)

        return run_epoch

    def synchronize(self, tree: Any) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)
