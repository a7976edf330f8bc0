"""JAX: ``jax.grad`` under ``jit``, with a whole epoch compiled into one ``lax.scan``.

The epoch runner compiles every step of an epoch, and the full-data loss
after it, into one XLA program: an epoch costs one dispatch instead of one
per step (13× faster on the book's setup). ``fused_epoch=False`` keeps a
jitted call per step instead, for comparison.

Compiled programs are cached across fits: steps, losses and backends
compare equal when they compute the same function (see
:class:`~polylin.training.SGDStep`), so a second fit of the same setup
compiles nothing. float64 is switched on only inside :meth:`JaxBackend.context`,
never for the whole process.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from polylin.backends.base import Backend
from polylin.backends.jax_transfer import MIN_STAGED_BYTES, host_for_device, stages_for_alignment
from polylin.backends.namespaces import namespace_with
from polylin.batching import BatchLayout
from polylin.devices import DeviceSpec
from polylin.host_loss import BESIDE_MIN_BYTES, numpy_view, read_only
from polylin.types import Array, EpochFn, LossFn, Params, StepFn, TreeFn

#: Compiled gradients and epochs, least recently used dropped beyond :data:`CACHE_SIZE`. jit
#: itself caches per input shape and dtype, so data of another size still traces again. A plain
#: dict, in order of use: a hit is taken out and put back last (see :func:`_cached`).
_COMPILED: dict[Hashable, Any] = {}
CACHE_SIZE = 64


def _cached(key: Hashable, build: Callable[[], Any]) -> Any:
    """What ``build`` made for ``key``, the first time or from the cache; then the most recent.

    A hit compares the key (a tuple of a step, a loss and a backend: about 3 µs) once: ``dict.pop``
    looks it up once, where an ``OrderedDict``'s ``get`` and ``move_to_end`` (or its ``pop``) look
    it up twice each time.
    """
    found = _COMPILED.pop(key, None)
    if found is None:
        found = build()
    _COMPILED[key] = found
    while len(_COMPILED) > CACHE_SIZE:
        del _COMPILED[next(iter(_COMPILED))]
    return found


def _function_key(f: Callable[..., Any]) -> Hashable:
    """A cache key under which equal functions meet: a bound method by its object's value (Python
    compares bound methods by their object's identity), anything else as itself."""
    owner = getattr(f, "__self__", None)
    return f if owner is None else (owner, f.__func__)  # type: ignore[attr-defined]


class _StepwisePrograms(NamedTuple):
    """The per-step path's programs (:meth:`JaxBackend._stepwise_epoch`), cached across fits."""

    #: ``(θ, X, y, idx) -> θ``: one step on the joined parameters, the rows ``idx`` a host array.
    step: Callable[..., Any]
    #: ``(θ, X, y) -> ((w, b), loss)``: the parameters split, and the full-data loss.
    finish: Callable[..., Any]
    #: ``(params, X, y, order) -> (params, loss)``: an epoch in an order already on the device.
    device_epoch: Callable[..., Any]


@functools.cache
def _moved_by_jit(jax: Any) -> Callable[..., Any]:
    """``f(*host) -> host on the default device``: a jitted identity. Its call moves small host
    arrays in the dispatch, 5-15 µs for the book's data and parameters where one ``device_put``
    costs 30-60 µs per array, once it has compiled for their shapes and dtypes (about 12 ms, the
    first time only). The results are copies, uncommitted, as ``device_put`` without a device
    leaves them."""
    return jax.jit(lambda *arrays: arrays)  # type: ignore[no-any-return]


@functools.cache
def _namespace() -> Any:
    """``jax.numpy`` with ``take`` in ``mode="clip"``: the rows come from a permutation, always in
    bounds, and the default ``mode="fill"`` guards each of them (about 4× slower on ``large``)."""
    import jax.numpy as jnp

    return namespace_with(jnp, take=functools.partial(jnp.take, mode="clip"))


class JaxBackend(Backend):
    """Functional autodiff; immutable arrays, so the update returns new ones (donated under jit)."""

    name = "jax"
    #: Parameters are host arrays until a computation needs them on the device, and the compiled
    #: epoch takes them as such: jit's own dispatch moves ``d + 1`` numbers in about 1 µs, where
    #: a ``device_put`` of each costs 20-30 µs (two of them were a tenth of a warm book fit).
    host_parameters: ClassVar[bool] = True
    #: Data up to this many bytes an array stays on the host for the compiled epoch, when the fit
    #: runs on the default device, a CPU: jit reads a host buffer in place for about 2 µs a call,
    #: where a ``device_put`` costs 30-75 µs of dispatch (two of them were a fifth of a warm book
    #: fit). Larger data is moved once, aligned (:mod:`polylin.backends.jax_transfer`).
    host_data_max_bytes: ClassVar[int] = MIN_STAGED_BYTES
    #: XLA's loss is about as fast as NumPy's on one thread: the host loss gains only beside the
    #: next epoch, on large data.
    host_loss_min_bytes: ClassVar[int] = BESIDE_MIN_BYTES

    def __init__(
        self,
        dtype: object = "float32",
        device: object = None,
        *,
        fused_epoch: bool = True,
        host_loss: bool = True,
    ) -> None:
        import jax

        self._jax = jax
        self.fused_epoch = fused_epoch
        self.host_loss = bool(host_loss)
        super().__init__(dtype, device)

    def _identity(self) -> tuple[Any, ...]:
        return (*super()._identity(), self.fused_epoch)

    @property
    def version(self) -> str:
        return str(self._jax.__version__)

    @property
    def device_name(self) -> str:
        return f"{self.device.platform}:{self.device.id}"

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        try:
            devices = self._jax.devices(spec.kind)
        except RuntimeError as exc:
            raise self.device_error(spec, f"jax has no {spec.kind} platform ({exc})") from None
        if spec.index >= len(devices):
            raise self.device_error(spec, f"jax sees {len(devices)} {spec.kind} device(s)")
        return devices[spec.index]

    @property
    def xp(self) -> Any:
        return _namespace()

    def asarray(self, host: np.ndarray) -> Array:
        return self._jax.device_put(self._staged(host), self.device)

    def _staged(self, host: Any) -> np.ndarray:
        """``host`` as :meth:`asarray` hands it to ``device_put``: row indices as int32, floats in the
        fit's dtype, large arrays aligned (:mod:`polylin.backends.jax_transfer`)."""
        host = np.asarray(host)
        dtype = np.int32 if host.dtype.kind in "iu" else self.np_dtype
        return host_for_device(host, dtype, stages_for_alignment(self._jax, self.device))

    def _on_device_together(self, *arrays: Any, by_jit: bool = False) -> list[Array]:
        """``arrays`` on the device: the host ones moved together, the device ones as they are;
        :meth:`asarray` of each where a subclass places arrays its own way.

        One ``device_put`` of them all: each costs 30-60 µs of dispatch, a batch of two about 1.5
        times one. With ``by_jit``, small arrays on the default CPU device go through a jitted
        identity instead (:func:`_moved_by_jit`: 5-15 µs, after one compile per shapes). On jax's
        default device the arrays are left uncommitted, as host arrays are: a jitted function then
        takes a host argument beside them with the program it compiled for device ones (the
        per-step path's first step takes the host parameters so, see :meth:`_stepwise_runner`).
        Elsewhere they are committed to the fit's device.
        """
        if type(self).asarray is not JaxBackend.asarray:
            return [a if isinstance(a, self._jax.Array) else self.asarray(a) for a in arrays]
        out = list(arrays)
        host = [k for k, a in enumerate(arrays) if not isinstance(a, self._jax.Array)]
        if host:
            staged = [self._staged(arrays[k]) for k in host]
            if by_jit and self._on_default_cpu() and all(a.nbytes < MIN_STAGED_BYTES for a in staged):
                moved = _moved_by_jit(self._jax)(*staged)
            else:
                placement = None if self._on_default_device() else self.device
                moved = self._jax.device_put(staged, placement)
            for k, array in zip(host, moved, strict=True):
                out[k] = array
        return out

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def host_view(self, array: Array) -> np.ndarray | None:
        """A CPU buffer as NumPy reads it (``np.asarray``, no copy; a host array kept for the
        compiled epoch, as it is). XLA's product over 10⁶ × 100 float32 takes 13-15 ms, NumPy's on
        one thread 11-14 ms: the gain is that it runs beside the next epoch (:mod:`polylin.host_loss`)."""
        if isinstance(array, np.ndarray):
            return numpy_view(array)
        jax = self._jax
        on_this_cpu = isinstance(array, jax.Array) and array.devices() == {self.device}
        if not on_this_cpu or self.device.platform != "cpu":
            return None
        return read_only(np.asarray(array), array.unsafe_buffer_pointer())

    def device_data(self, X: np.ndarray, y: np.ndarray) -> tuple[Array, Array]:
        """Small data on the default CPU device stays on the host in the fit's dtype, and the
        compiled epoch reads it there (:attr:`host_data_max_bytes`); other data is moved, ``X`` and
        ``y`` together (small data on the default CPU by a jitted identity, see
        :meth:`_on_device_together`)."""
        small = max(np.asarray(a).size for a in (X, y)) * self.np_dtype.itemsize <= self.host_data_max_bytes
        if small and self.fused_epoch and self._on_default_cpu():
            return np.ascontiguousarray(X, dtype=self.np_dtype), np.ascontiguousarray(y, dtype=self.np_dtype)
        X_dev, y_dev = self._on_device_together(X, y, by_jit=True)
        return X_dev, y_dev

    def _on_default_cpu(self) -> bool:
        """Whether computations on host arrays run on this fit's device (a CPU, jax's default)."""
        return bool(self.device.platform == "cpu" and self._on_default_device())

    def _on_default_device(self) -> bool:
        """Whether this fit's device is jax's default, where host and uncommitted arrays are."""
        return bool(self._jax.devices()[0] == self.device)

    def holds(self, x: Any) -> bool:
        jax = self._jax
        return isinstance(x, jax.Array) and x.dtype == self.np_dtype and x.devices() == {self.device}

    def parameters(self, w: np.ndarray, b: np.ndarray, *, trainable: bool) -> Params:
        """Fresh host arrays in the fit's dtype (see :attr:`host_parameters`); every jax function
        takes them, and the first computation moves them to the data's device."""
        if not self.host_parameters:
            return self.asarray(w), self.asarray(b)
        return np.array(w, dtype=self.np_dtype), np.array(b, dtype=self.np_dtype)

    def _on_device(self, params: Params) -> Params:
        """``params`` with host arrays moved to the device: a jitted function then meets one kind
        of argument, and compiles once (a host and a device argument are two signatures)."""
        if isinstance(params[0], np.ndarray) or isinstance(params[1], np.ndarray):
            w, b = self._on_device_together(*params)
            return w, b
        return params

    def gradient(self, f: LossFn) -> TreeFn:
        jax = self._jax
        jitted = _cached(("gradient", _function_key(f)), lambda: jax.jit(jax.grad(f)))
        on_device = self._on_device

        def gradient(params: Params, X: Array, y: Array) -> Params:
            return jitted(on_device(params), X, y)  # type: ignore[no-any-return]

        return gradient

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        w, b = params
        grad_w, grad_b = grads
        return w - lr * grad_w, b - lr * grad_b

    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        build = self._fused_epoch if self.fused_epoch else self._stepwise_epoch
        compiled = _cached(
            ("epoch", step, _function_key(loss), layout, self), lambda: build(step, loss, layout)
        )
        if not self.fused_epoch:
            return self._stepwise_runner(compiled, X, y, layout)
        # The host order (and, with host parameters, the parameters) go into the compiled call as
        # they are: jit moves them to X's device in the same dispatch, about 1 µs, against 15-30 µs
        # for a device_put of each. Every epoch gets host parameters, so one program serves all.
        host = self.host_parameters

        def run_epoch(params: Params, order: np.ndarray) -> tuple[Params, Array]:
            if host:
                params = np.asarray(params[0]), np.asarray(params[1])
            return compiled(params, X, y, order.astype(np.int32, copy=False))  # type: ignore[no-any-return]

        return run_epoch

    def _fused_epoch(self, step: StepFn, loss: LossFn, layout: BatchLayout) -> Callable[..., Any]:
        """One jitted program: every step of the epoch in a ``lax.scan``, the short last batch,
        then the full-data loss."""
        jax = self._jax
        n_full, batch_size, covered = layout.n_full, layout.batch_size, layout.n_full * layout.batch_size

        def one_epoch(params: Params, X: Array, y: Array, order: Array) -> tuple[Params, Array]:
            def body(carry: Params, idx: Array) -> tuple[Params, None]:
                return step(carry, X, y, idx), None

            params, _ = jax.lax.scan(body, params, order[:covered].reshape(n_full, batch_size))
            if layout.tail:
                params = step(params, X, y, order[covered:])
            return params, loss(params, X, y)

        # Parameters are d + 1 numbers: donating their buffers would save nothing measurable.
        return jax.jit(one_epoch)  # type: ignore[no-any-return]

    def _stepwise_epoch(self, step: StepFn, loss: LossFn, layout: BatchLayout) -> _StepwisePrograms:
        """The per-step path's jitted programs (:meth:`_stepwise_runner` runs them).

        For a host order, one call per minibatch on the parameters joined into one vector
        ``θ = (w, b)`` (``b`` is its last entry), and the batch's rows passed as a host array: jit
        moves them in its dispatch, and a call with one parameter buffer in and one out costs
        about three quarters of one with two of each (measured on the book's setup, 100 steps an
        epoch). The same arithmetic on the same numbers as the step on ``(w, b)``: slicing and
        joining are exact. After the last step, one call splits ``θ`` and evaluates the full-data
        loss. For a device order (:class:`~polylin.backends.jax_sharding.ShardedJaxBackend`), one
        call per minibatch cuts its batch from the order with ``lax.dynamic_slice``.
        """
        jax = self._jax
        jnp = jax.numpy
        batch_size, covered = layout.batch_size, layout.n_full * layout.batch_size

        def split(theta: Array) -> Params:
            return theta[:-1], theta[-1:]

        def vector_step(theta: Array, X: Array, y: Array, idx: Array) -> Array:
            return jnp.concatenate(step(split(theta), X, y, idx))

        def finish(theta: Array, X: Array, y: Array) -> tuple[Params, Array]:
            params = split(theta)
            return params, loss(params, X, y)

        def full_step(params: Params, X: Array, y: Array, order: Array, start: Array) -> Params:
            return step(params, X, y, jax.lax.dynamic_slice(order, (start,), (batch_size,)))

        def tail_step(params: Params, X: Array, y: Array, order: Array) -> Params:
            return step(params, X, y, order[covered:])

        full, tail = jax.jit(full_step, donate_argnums=0), jax.jit(tail_step, donate_argnums=0)
        full_loss = jax.jit(loss)
        # Plain Python ints: jit hashes and converts them faster than NumPy scalars (~10 % a step).
        starts = [k * batch_size for k in range(layout.n_full)]

        def device_epoch(params: Params, X: Array, y: Array, order: Array) -> tuple[Params, Array]:
            for start in starts:
                params = full(params, X, y, order, start)
            if layout.tail:
                params = tail(params, X, y, order)
            return params, full_loss(params, X, y)

        return _StepwisePrograms(jax.jit(vector_step, donate_argnums=0), jax.jit(finish), device_epoch)

    def _stepwise_runner(
        self, programs: _StepwisePrograms, X: Array, y: Array, layout: BatchLayout
    ) -> EpochFn:
        """One fit's per-step epochs. The first epoch's host parameters are joined on the host; on
        jax's default device the first step takes them as they are (jit moves them in its dispatch,
        about 1 µs, where a ``device_put`` costs 30-60 µs), elsewhere they are moved first. Each
        later epoch starts from the vector the previous one ended with, when it is handed the
        parameters that epoch returned."""
        X, y = self._on_device_together(X, y)
        n_full, batch_size, covered = layout.n_full, layout.batch_size, layout.n_full * layout.batch_size
        dtype, host_start = self.np_dtype, self._on_default_device()
        last: list[Any] = [None, None]  # the parameters the last epoch returned, and their θ

        def run_epoch(params: Params, order: np.ndarray) -> tuple[Params, Array]:
            if not isinstance(order, np.ndarray):  # already on the device: cut there
                return programs.device_epoch(self._on_device(params), X, y, order)  # type: ignore[no-any-return]
            returned, theta = last
            last[:] = None, None  # θ is donated to the first step below
            if params is not returned:
                theta = np.concatenate([np.asarray(p, dtype=dtype).reshape(-1) for p in params])
                if not host_start:
                    (theta,) = self._on_device_together(theta)
            order = order.astype(np.int32, copy=False)
            step = programs.step
            for idx in order[:covered].reshape(n_full, batch_size):
                theta = step(theta, X, y, idx)
            if covered < order.shape[0]:
                theta = step(theta, X, y, order[covered:])
            params, loss = programs.finish(theta, X, y)
            last[:] = params, theta
            return params, loss

        return run_epoch

    def synchronize(self, tree: Any) -> None:
        self._jax.block_until_ready(tree)  # type: ignore[no-untyped-call]

    def context(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype != "float64":
            return contextlib.nullcontext()
        enable_x64 = getattr(self._jax, "enable_x64", None)
        if callable(enable_x64):
            return enable_x64(True)  # type: ignore[no-any-return]
        from jax.experimental import enable_x64 as experimental_enable_x64

        return experimental_enable_x64()  # type: ignore[no-any-return]
