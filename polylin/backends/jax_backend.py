"""JAX: ``jax.grad`` under ``jit``, with a whole epoch fused into one ``lax.scan``.

The fused epoch (the default) compiles the gather of each batch, the
gradient and the update for every step of an epoch into one XLA program, so
an epoch costs one dispatch instead of one per step. ``fused_epoch=False``
keeps the per-step jitted loop for comparison.

float64 is switched on only inside :meth:`JaxBackend.context`, never for the
whole process.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import numpy as np

from polylin.backends.base import (
    Array,
    Backend,
    DeviceSpec,
    EpochFn,
    GradFn,
    Params,
    StepFn,
    ValueAndGradFn,
)
from polylin.backends.jax_transfer import host_for_device, stages_for_alignment
from polylin.batching import BatchLayout

T = TypeVar("T")

#: Jitted epochs (fused, or the per-step pair), reused across fits whose steps compute the
#: same function (same loss, gradient method, learning rate and batch layout). jit itself
#: caches per input shape and dtype, so data of another size still retraces.
_COMPILED_EPOCHS: OrderedDict[Hashable, Callable[..., Params]] = OrderedDict()
_MAX_COMPILED_EPOCHS = 32
#: Jitted full-data losses, keyed by the objective (equal objectives compute the same
#: function). Each fit evaluates its loss before training and after every epoch; a
#: fresh ``jax.jit`` per evaluator would trace and compile it again (≈ 50 ms each, measured).
_COMPILED_OBJECTIVES: OrderedDict[Hashable, Callable[..., Array]] = OrderedDict()
_MAX_COMPILED_OBJECTIVES = 32


class JaxBackend(Backend):
    """Functional autodiff; immutable arrays, so the update returns new ones (donated under jit)."""

    name = "jax"

    def __init__(self, dtype: object = "float32", device: object = None, *, fused_epoch: bool = True) -> None:
        import jax
        import jax.numpy as jnp

        self._jax = jax
        self._jnp = jnp
        self.fused_epoch = fused_epoch
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return str(self._jax.__version__)

    @property
    def xp(self) -> Any:
        return self._jnp

    @property
    def device_name(self) -> str:
        return f"{self.device.platform}:{self.device.id}"

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        platform = spec.kind
        try:
            devices = self._jax.devices(platform)
        except RuntimeError as exc:
            raise self.device_error(spec, f"jax has no {platform} platform ({exc})") from None
        if spec.index >= len(devices):
            raise self.device_error(spec, f"jax sees {len(devices)} {platform} device(s)")
        return devices[spec.index]

    def context(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype != "float64":
            return contextlib.nullcontext()
        enable_x64 = getattr(self._jax, "enable_x64", None)
        if enable_x64 is not None and callable(enable_x64):
            return enable_x64(True)  # type: ignore[no-any-return]
        from jax.experimental import enable_x64 as experimental_enable_x64

        return experimental_enable_x64()  # type: ignore[no-any-return]

    def asarray(self, host: np.ndarray) -> Array:
        return self._jax.device_put(self._host_for_device(host, self.np_dtype), self.device)

    def index_array(self, host: np.ndarray) -> Array:
        return self._jax.device_put(self._host_for_device(host, np.int32), self.device)

    def _host_for_device(self, host: np.ndarray, dtype: Any) -> np.ndarray:
        """On a CPU runtime that aliases only 64-byte aligned host memory, large arrays are handed
        over aligned: a NumPy copy that JAX then uses in place costs a quarter of JAX's own copy."""
        return host_for_device(host, dtype, stages_for_alignment(self._jax, self.device))

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def owns(self, x: object) -> bool:
        return isinstance(x, self._jax.Array)

    def take(self, X: Array, idx: Array) -> Array:
        # Indices come from a permutation and are always in bounds. The default
        # mode="fill" guards every row against out-of-bounds indices, which costs
        # about 4x on the large workload; "clip" is the cheap, equivalent choice here.
        return self._jnp.take(X, idx, axis=0, mode="clip")

    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        return self._jax.value_and_grad(objective)  # type: ignore[no-any-return]

    def grad(self, objective: Any) -> GradFn:
        return self._jax.grad(objective)  # type: ignore[no-any-return]

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        return tuple(p - lr * g for p, g in zip(params, grads, strict=True))  # type: ignore[return-value]

    def compile(self, fn: Callable[..., Any], *, donate_params: bool = False) -> Callable[..., Any]:
        return self._jax.jit(fn, donate_argnums=(0,) if donate_params else ())  # type: ignore[no-any-return]

    def evaluator(self, objective: Callable[..., Any]) -> Callable[[Params, Array, Array], float]:
        compiled = self._jitted_objective(objective)
        return lambda params, X, y: float(compiled(params, X, y))

    def _jitted_objective(self, objective: Callable[..., Any]) -> Callable[..., Array]:
        """``jax.jit(objective)``, shared by every evaluator of an equal objective."""
        try:
            hash(objective)
        except TypeError:  # an unhashable objective: compile it for this evaluator alone
            return self._jax.jit(objective)  # type: ignore[no-any-return]
        return _cached(
            _COMPILED_OBJECTIVES, objective, lambda: self._jax.jit(objective), _MAX_COMPILED_OBJECTIVES
        )

    @property
    def dispatches_asynchronously(self) -> bool:
        """Whether a computation returns before it has run: on a GPU always; on the CPU from JAX
        0.4.32 on (unless ``jax_cpu_enable_async_dispatch`` is off), whereas earlier releases ran
        every non-parallel computation within its dispatch."""
        jax = self._jax
        if self.device.platform != "cpu":
            return True
        if tuple(jax.__version_info__) < (0, 4, 32):
            return False
        try:
            return bool(jax.config.read("jax_cpu_enable_async_dispatch"))
        except (AttributeError, KeyError):  # the option is gone: asynchronous is all that is left
            return True

    def deferred_evaluator(
        self, objective: Callable[..., Any]
    ) -> Callable[[Params, Array, Array], Callable[[], float]]:
        if not self.dispatches_asynchronously:
            return super().deferred_evaluator(objective)  # compute when read: see the base class
        compiled = self._jitted_objective(objective)

        def start(params: Params, X: Array, y: Array) -> Callable[[], float]:
            pending = compiled(params, X, y)  # dispatched; the value is computed asynchronously
            return lambda: float(pending)

        return start

    def synchronize(self, tree: Any) -> None:
        self._jax.block_until_ready(tree)  # type: ignore[no-untyped-call]

    def epoch_runner(
        self,
        step: StepFn,
        X: Array,
        y: Array,
        layout: BatchLayout,
        *,
        cache_key: Hashable | None = None,
    ) -> EpochFn:
        build = self._fused_epoch if self.fused_epoch else self._stepwise_epoch
        if cache_key is None:
            compiled = build(step, layout)
        else:
            key = (cache_key, layout, self.device, self.fused_epoch)
            compiled = _cached(_COMPILED_EPOCHS, key, lambda: build(step, layout), _MAX_COMPILED_EPOCHS)
        return lambda params, order: compiled(params, X, y, order)

    def _stepwise_epoch(self, step: StepFn, layout: BatchLayout) -> Callable[..., Params]:
        """The per-step path: one jitted call per minibatch, kept to compare with the fused epoch.

        Each call cuts its batch from the device-resident order with
        ``lax.dynamic_slice``, so a step costs one dispatch and no host-side slicing.
        """
        jax = self._jax
        batch_size, covered = layout.batch_size, layout.n_full * layout.batch_size

        def full_step(params: Params, X: Array, y: Array, order: Array, start: Array) -> Params:
            return step(params, X, y, jax.lax.dynamic_slice(order, (start,), (batch_size,)))

        def tail_step(params: Params, X: Array, y: Array, order: Array) -> Params:
            return step(params, X, y, order[covered:])

        full = jax.jit(full_step, donate_argnums=0)
        tail = jax.jit(tail_step, donate_argnums=0) if layout.tail else None
        # Plain Python ints: jit hashes and converts them faster than NumPy scalars (~10 % a step).
        starts = [k * batch_size for k in range(layout.n_full)]

        def run_epoch(params: Params, X: Array, y: Array, order: Array) -> Params:
            for start in starts:
                params = full(params, X, y, order, start)
            if tail is not None:
                params = tail(params, X, y, order)
            return params

        return run_epoch

    def _fused_epoch(self, step: StepFn, layout: BatchLayout) -> Callable[..., Params]:
        """One jitted function running every step of an epoch in a ``lax.scan``."""
        jax = self._jax
        n_full, batch_size, tail = layout.n_full, layout.batch_size, layout.tail
        covered = n_full * batch_size

        def one_epoch(params: Params, X: Array, y: Array, order: Array) -> Params:
            full_batches = order[:covered].reshape(n_full, batch_size)

            def body(carry: Params, idx: Array) -> tuple[Params, None]:
                return step(carry, X, y, idx), None

            params, _ = jax.lax.scan(body, params, full_batches)
            if tail:
                params = step(params, X, y, order[covered:])
            return params

        return jax.jit(one_epoch, donate_argnums=0)  # type: ignore[no-any-return]

    def hessian(self, objective: Any) -> Callable[[Params, Array, Array], Array]:
        """``jax.hessian`` (forward over reverse), its four ``(w, b)`` blocks joined into one matrix."""
        blocks = self._jax.hessian(objective)
        jnp = self._jnp

        def hessian(params: Params, X: Array, y: Array) -> Array:
            (ww, wb), (bw, bb) = blocks(params, X, y)
            return jnp.block([[ww, wb], [bw, bb]])

        return hessian


def _cached(cache: OrderedDict[Hashable, T], key: Hashable, build: Callable[[], T], limit: int) -> T:
    """``cache[key]``, built on a miss; the least recently used entries go beyond ``limit``."""
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
        return found
    cache[key] = built = build()
    while len(cache) > limit:
        cache.popitem(last=False)
    return built
