"""JAX: a jitted step called once per batch, and a whole epoch fused into one jitted ``lax.scan``."""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.references.base import Reference


def _loss(params: tuple[Any, Any], xb: Any, yb: Any) -> Any:
    w, b = params
    r = xb @ w + b - yb
    return 0.5 * jnp.mean(r * r)


def _grad_autodiff(params: tuple[Any, Any], xb: Any, yb: Any) -> tuple[Any, Any]:
    return jax.grad(_loss)(params, xb, yb)  # type: ignore[no-any-return]


def _grad_analytic(params: tuple[Any, Any], xb: Any, yb: Any) -> tuple[Any, Any]:
    w, b = params
    g = (xb @ w + b - yb) / xb.shape[0]
    return g @ xb, jnp.sum(g, keepdims=True)


class _Jax(Reference):
    backend = "jax"

    def gradient(self, params: tuple[Any, Any], xb: Any, yb: Any) -> tuple[Any, Any]:
        raise NotImplementedError

    def setup(self, X: np.ndarray, y: np.ndarray) -> None:
        self.device = jax.devices("cpu")[0]
        self.X = jax.device_put(X, self.device)
        self.y = jax.device_put(y, self.device)
        lr, gradient = self.lr, self.gradient

        def sgd(params: tuple[Any, Any], X: Any, y: Any, idx: Any) -> tuple[Any, Any]:
            # mode="clip": the indices are a permutation, always in bounds, and clipping compiles to a
            # plain gather, about 4x faster on CPU than the default "fill" (which masks out-of-bounds rows).
            gw, gb = gradient(params, jnp.take(X, idx, axis=0, mode="clip"), jnp.take(y, idx, mode="clip"))
            return params[0] - lr * gw, params[1] - lr * gb

        self.sgd = sgd
        self.loss = jax.jit(_loss)
        self.build()

    def build(self) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self.state = (jax.device_put(self.w0, self.device), jax.device_put(self.b0, self.device))

    def device_order(self, order: np.ndarray) -> Any:
        return jax.device_put(np.asarray(order, dtype=np.int32), self.device)

    def synchronize(self) -> None:
        jax.block_until_ready(self.state)

    def epoch_loss(self) -> float:
        return float(self.loss(self.state, self.X, self.y))

    def params(self) -> tuple[np.ndarray, float]:
        w, b = self.state
        return np.asarray(w, dtype=np.float64), float(np.asarray(b)[0])


class _JaxStep(_Jax):
    """One jitted call per batch; the batch is cut from the order inside the call (``dynamic_slice``)."""

    path = "step"

    def build(self) -> None:
        sgd, batch = self.sgd, self.batch_size

        @partial(jax.jit, donate_argnums=0)
        def full_step(params: tuple[Any, Any], X: Any, y: Any, order: Any, start: Any) -> tuple[Any, Any]:
            return sgd(params, X, y, jax.lax.dynamic_slice_in_dim(order, start, batch))

        self.full_step = full_step
        self.tail_step = jax.jit(sgd, donate_argnums=0)

    def run_epoch(self, order: Any) -> None:
        n_full = len(order) // self.batch_size
        covered = n_full * self.batch_size
        state, X, y, step = self.state, self.X, self.y, self.full_step
        for start in range(0, covered, self.batch_size):
            state = step(state, X, y, order, start)
        if covered < len(order):
            state = self.tail_step(state, X, y, order[covered:])
        self.state = state


class _JaxScan(_Jax):
    """A whole epoch in one jitted function: ``lax.scan`` over the batches, the gather inside it."""

    path = "fused"

    def build(self) -> None:
        sgd, batch = self.sgd, self.batch_size

        @partial(jax.jit, donate_argnums=0)
        def epoch(params: tuple[Any, Any], X: Any, y: Any, order: Any) -> tuple[Any, Any]:
            n_full = order.shape[0] // batch
            covered = n_full * batch

            def body(carry: tuple[Any, Any], idx: Any) -> tuple[tuple[Any, Any], None]:
                return sgd(carry, X, y, idx), None

            params, _ = jax.lax.scan(body, params, order[:covered].reshape(n_full, batch))
            if covered < order.shape[0]:
                params = sgd(params, X, y, order[covered:])
            return params

        self.epoch = epoch

    def run_epoch(self, order: Any) -> None:
        self.state = self.epoch(self.state, self.X, self.y, order)


class JaxStepAutodiff(_JaxStep):
    grad = "autodiff"
    idiom = "jit(step) per batch, jax.grad, take(mode=clip), donated params, batch cut by dynamic_slice"
    gradient = staticmethod(_grad_autodiff)  # type: ignore[assignment]


class JaxStepAnalytic(_JaxStep):
    grad = "analytic"
    idiom = "jit(step) per batch, hand-derived gradient, take(mode=clip), donated params"
    gradient = staticmethod(_grad_analytic)  # type: ignore[assignment]


class JaxScanAutodiff(_JaxScan):
    grad = "autodiff"
    idiom = "jit(epoch) = lax.scan over batches, jax.grad, take(mode=clip) inside the scan"
    gradient = staticmethod(_grad_autodiff)  # type: ignore[assignment]


class JaxScanAnalytic(_JaxScan):
    grad = "analytic"
    idiom = "jit(epoch) = lax.scan over batches, hand-derived gradient, take(mode=clip) inside the scan"
    gradient = staticmethod(_grad_analytic)  # type: ignore[assignment]


REFERENCES: list[type[Reference]] = [JaxStepAutodiff, JaxStepAnalytic, JaxScanAutodiff, JaxScanAnalytic]
