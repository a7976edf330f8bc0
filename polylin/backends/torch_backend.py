"""PyTorch: functional autograd with ``torch.autograd.grad``; the update under ``no_grad``.

``torch.autograd.grad`` returns fresh gradients and never writes ``.grad``,
so nothing accumulates from one step to the next and no ``zero_grad`` is
needed.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from polylin.backends.base import (
    Array,
    Backend,
    DeviceSpec,
    GradFn,
    Params,
    ValueAndGradFn,
    namespace_with,
)


@functools.cache
def _fast_namespace() -> Any:
    """array-api-compat's torch namespace, with the per-step calls bound straight to torch.

    The compat wrappers check and promote dtypes on every call (about 4 µs for a
    small ``matmul``); polylin's arrays always share one float dtype, so the
    plain torch functions have the same meaning here.
    """
    import array_api_compat.torch as compat
    import torch

    def sum_(x: Array, /, *, axis: int | None = None, keepdims: bool = False) -> Array:
        if axis is None:
            return torch.sum(x)
        return torch.sum(x, dim=axis, keepdim=keepdims)

    return namespace_with(
        compat,
        matmul=torch.matmul,
        mean=torch.mean,
        sum=sum_,
        abs=torch.abs,
        sign=torch.sign,
        clip=torch.clamp,
    )


@functools.cache
def _addmv() -> Any:
    """``X w + b`` as one fused kernel (and one autograd node) instead of a matmul, then an add."""
    import torch

    addmv = torch.addmv

    def affine(X: Array, w: Array, b: Array) -> Array:
        return addmv(b, X, w)

    return affine


@functools.cache
def _addmv_sub() -> Any:
    """``X w + b − y`` as ``addmv``, then the subtraction in place on its fresh output, so a step
    allocates one tensor fewer. Under autograd the subtraction stays out of place: the in-place
    node measured 1-2 % slower there."""
    import torch

    addmv = torch.addmv

    def residual(X: Array, w: Array, b: Array, y: Array) -> Array:
        fitted = addmv(b, X, w)
        return fitted - y if fitted.requires_grad else fitted.sub_(y)

    return residual


def _descend_in_place(params: Params, g: Array, X: Array, lr: float) -> Params:
    w, b = params
    w.addmv_(X.t(), g, alpha=-lr)
    b.sub_(g.sum(), alpha=lr)
    return params


class TorchBackend(Backend):
    """Autograd on torch tensors, updated in place with ``add_(alpha=-lr)``."""

    name = "torch"

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        import torch

        self._torch = torch
        self._xp = _fast_namespace()
        super().__init__(dtype, device)
        self.torch_dtype = getattr(torch, self.dtype)
        self._no_grad = torch.no_grad()  # one reusable context for every update
        self._index_select = torch.index_select  # looked up once, not on every step

    @property
    def version(self) -> str:
        return str(self._torch.__version__)

    @property
    def xp(self) -> Any:
        return self._xp

    @property
    def device_name(self) -> str:
        return str(self.device)

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        torch = self._torch
        if spec.kind == "cpu":
            return torch.device("cpu")
        if not torch.cuda.is_available():
            raise self.device_error(spec, "torch.cuda.is_available() is False")
        if spec.index >= torch.cuda.device_count():
            raise self.device_error(spec, f"torch sees {torch.cuda.device_count()} GPU(s)")
        return torch.device("cuda", spec.index)

    def asarray(self, host: np.ndarray) -> Array:
        if isinstance(host, np.ndarray) and not host.flags.writeable:
            # as_tensor shares the buffer and warns that torch could write to it;
            # polylin never writes to the data, so share it without the warning.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                return self._torch.as_tensor(host, dtype=self.torch_dtype, device=self.device)
        return self._torch.as_tensor(host, dtype=self.torch_dtype, device=self.device)

    def index_array(self, host: np.ndarray) -> Array:
        return self._torch.as_tensor(host, dtype=self._torch.int64, device=self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return x.detach().cpu().numpy()  # type: ignore[no-any-return]

    def owns(self, x: object) -> bool:
        return isinstance(x, self._torch.Tensor)

    def parameters(self, w: np.ndarray, b: np.ndarray, trainable: bool) -> Params:
        torch = self._torch
        return tuple(  # type: ignore[return-value]
            torch.tensor(p, dtype=self.torch_dtype, device=self.device, requires_grad=trainable)
            for p in (w, b)
        )

    def take(self, X: Array, idx: Array) -> Array:
        return self._index_select(X, 0, idx)

    @property
    def affine(self) -> Any:
        return _addmv()

    @property
    def fused_residual(self) -> Any:
        return _addmv_sub()

    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        autograd_grad = self._torch.autograd.grad

        def value_and_grad(params: Params, X: Array, y: Array) -> tuple[Array, Params]:
            value = objective(params, X, y)
            grads = autograd_grad(value, params)
            return value.detach(), tuple(grads)  # type: ignore[return-value]

        return value_and_grad

    def grad(self, objective: Any) -> GradFn:
        autograd_grad = self._torch.autograd.grad

        def grad(params: Params, X: Array, y: Array) -> Params:
            return autograd_grad(objective(params, X, y), params)  # type: ignore[no-any-return,return-value]

        return grad

    def evaluator(self, objective: Any) -> Any:
        no_grad = self._torch.no_grad

        def evaluate(params: Params, X: Array, y: Array) -> float:
            with no_grad():
                return float(objective(params, X, y))

        return evaluate

    def deferred_evaluator(self, objective: Any) -> Any:
        if self.device.type == "cpu":  # torch computes on the CPU at once: compute when read
            return super().deferred_evaluator(objective)
        no_grad = self._torch.no_grad

        def start(params: Params, X: Array, y: Array) -> Any:
            with no_grad():
                pending = objective(params, X, y)  # on a GPU, queued; float() waits for it
            return lambda: float(pending)

        return start

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        if not params[0].requires_grad:  # the analytic path: no graph to keep the update out of
            for param, grad in zip(params, grads, strict=True):
                param.add_(grad, alpha=-lr)
            return params
        with self._no_grad:
            for param, grad in zip(params, grads, strict=True):
                param.add_(grad, alpha=-lr)
        return params

    def descend(self, params: Params, g: Array, X: Array, lr: float) -> Params:
        """``w ← w − lr·Xᵀg`` as one fused ``addmv_`` (no gradient tensor), ``b ← b − lr·Σg``."""
        if params[0].requires_grad:  # leaves of a graph: keep the update out of it
            with self._no_grad:
                return _descend_in_place(params, g, X, lr)
        return _descend_in_place(params, g, X, lr)

    def synchronize(self, tree: Any) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def hessian(self, objective: Any) -> Any:
        """Reverse over reverse: the gradient is taken with ``create_graph=True``, so that
        autograd records it, then each of its components is differentiated again.

        Without ``create_graph`` the gradient is a plain tensor with no history
        and the second ``torch.autograd.grad`` fails ("element 0 of tensors does
        not require grad"); calling ``.backward()`` twice only adds the first
        derivative to ``.grad`` a second time.
        """
        torch = self._torch

        def hessian(params: Params, X: Array, y: Array) -> Array:
            leaves = tuple(p.detach().clone().requires_grad_(True) for p in params)
            grads = torch.autograd.grad(objective(leaves, X, y), leaves, create_graph=True)
            flat = torch.cat([g.reshape(-1) for g in grads])
            rows = []
            for component in flat:
                if component.requires_grad:
                    second = torch.autograd.grad(component, leaves, retain_graph=True, allow_unused=True)
                else:  # this component does not depend on the parameters at all
                    second = (None,) * len(leaves)
                rows.append(
                    torch.cat([
                        (torch.zeros_like(p) if s is None else s).reshape(-1)
                        for p, s in zip(leaves, second, strict=True)
                    ])
                )  # fmt: skip
            return torch.stack(rows).detach()

        return hessian
