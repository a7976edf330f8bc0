"""The backend contract: what the shared training loop needs from an array framework.

A backend is small. Six members are required and five are optional:

=================================  ========  ==========================================================
member                             required  what it must guarantee
=================================  ========  ==========================================================
``xp``                             yes       an Array API namespace the objective runs on; its
                                             ``take(X, idx, axis=0)`` gathers a batch's rows
``asarray(host)``                  yes       a NumPy array as this backend's array on its device:
                                             floats in the fit's dtype, integers as row indices
``to_numpy(x)``                    yes       a NumPy copy (or read-only view) of a backend array
``parameters(w, b, trainable)``    yes       fresh ``(w, b)`` arrays the update may write into;
                                             ``trainable`` marks them for the framework's autodiff
``gradient(f)``                    yes       ``(params, X, y) -> grads`` of a scalar ``f``, by the
                                             framework's autodiff (NumPy has none, and says so)
``update(params, grads, lr)``      yes       ``p ← p − lr·g`` for each parameter, in place where the
                                             framework allows; returns the parameters
``epoch_runner(step, loss, ...)``  no        runs one epoch of ``step`` in a host order and evaluates
                                             ``loss`` on the full data; the default is the plain loop
``device_data(X, y)``              no        the validated host data where the epochs read it; the
                                             default is ``asarray`` of each
``host_view(array)``               no        the array's memory as a read-only NumPy array, no copy,
                                             where it is host memory (the loop's NumPy loss, beside
                                             the next epoch where ``overlaps_host_loss``)
``synchronize(tree)``              no        blocks until ``tree`` is computed (asynchronous engines)
``context()``                      no        a context the whole fit runs in (JAX: float64 scope)
=================================  ========  ==========================================================

Besides these, a backend describes itself: ``name``, ``version``,
``device_name``, ``has_autodiff``, ``overlaps_host_work`` and ``overlaps_host_loss``. Every
speed trick lives inside the backend that needs it, in its namespace (a faster ``take``) or in
its own :meth:`Backend.epoch_runner` (JAX compiles a whole epoch into one ``lax.scan``); the
loop and the objective never ask for one.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from polylin.batching import BatchLayout, batch_bounds
from polylin.devices import DeviceSpec
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.errors import DeviceNotAvailableError
from polylin.host_loss import HOST_LOSS_MIN_BYTES
from polylin.types import Array, EpochFn, LossFn, Params, StepFn, TreeFn

if TYPE_CHECKING:
    from polylin.validation import Probe


@dataclass(frozen=True)
class BackendInfo:
    """What a result records about the backend that produced it."""

    name: str
    version: str
    device: str
    dtype: str


class Backend(ABC):
    """One array framework, as the shared training loop sees it (the table above).

    A subclass sets :attr:`name` and implements the required members.
    Construction resolves the dtype and the device, and fails with
    :class:`~polylin.errors.DeviceNotAvailableError` for a device that is not
    present. Backends with equal class, dtype and device compare equal, so
    that what a compiling backend caches for one fit serves the next.
    """

    name: ClassVar[str]
    #: Whether :meth:`gradient` works (the framework has autodiff).
    has_autodiff: ClassVar[bool] = True
    #: Whether the loop may evaluate the full-data loss with NumPy, in place, where
    #: :meth:`host_view` gives a view of the data (:mod:`polylin.host_loss`); a backend that has
    #: views takes ``host_loss=False`` to keep every loss in its framework.
    host_loss: bool = True
    #: From this many bytes of X on (:data:`polylin.host_loss.HOST_LOSS_MIN_BYTES`).
    host_loss_min_bytes: ClassVar[int] = HOST_LOSS_MIN_BYTES

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        self.dtype = canonical_dtype(dtype)
        self.np_dtype = SUPPORTED_DTYPES[self.dtype]
        self.device_spec = DeviceSpec.parse(device)
        self.device = self._resolve_device(self.device_spec)

    def _identity(self) -> tuple[Any, ...]:
        return (type(self), self.dtype, str(self.device_spec))

    def _key(self) -> tuple[Any, ...]:
        """:meth:`_identity`, built once: a fit hashes and compares its backend several times
        (the compiled programs' cache keys), and a backend's settings do not change."""
        key: tuple[Any, ...] | None = self.__dict__.get("_identity_key")
        if key is None:
            key = self.__dict__["_identity_key"] = self._identity()
        return key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    # -- description ----------------------------------------------------------------
    @property
    @abstractmethod
    def version(self) -> str:
        """The framework's version string."""

    @property
    def device_name(self) -> str:
        """A readable name of the device the arrays live on."""
        return str(self.device_spec)

    @property
    def overlaps_host_work(self) -> bool:
        """Whether host work (drawing the next epoch's order) can run beside an epoch without
        slowing it; ``False`` where the framework's kernels keep every CPU core busy."""
        return True

    @property
    def overlaps_host_loss(self) -> bool:
        """Whether the loop's NumPy loss of an epoch (:mod:`polylin.host_loss`, a pass over ``X`` on
        one core) runs beside the next epoch, rather than in line after it: where host work can run
        beside an epoch (:attr:`overlaps_host_work`), unless the backend says otherwise."""
        return self.overlaps_host_work

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.version, self.device_name, self.dtype)

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        """Map a parsed device request to the framework's device object."""
        if spec.kind != "cpu":
            raise self.device_error(spec, "this backend runs on the CPU only")
        return "cpu"

    def device_error(self, spec: DeviceSpec, why: str) -> DeviceNotAvailableError:
        return DeviceNotAvailableError(
            f"device={str(spec)!r} is not available to the {self.name} backend: {why}. "
            "Use device='cpu', or install a GPU build of the framework on a machine with a GPU."
        )

    def training_data(self, X: Any, y: Any, probe: Probe | None = None) -> tuple[Any, Any]:
        """Validate the user's ``X`` and ``y``: ``X (n, d)`` and ``y (n,)``, ready for :meth:`asarray`.

        Not part of the contract: the default checks them on the host (computing
        ``probe``'s ``X @ w`` in the same read, see :class:`~polylin.validation.Probe`),
        and only the array-api backend, whose data stay in their own library,
        validates them there.
        """
        from polylin.validation import device_training_data, host_training_data

        if self.holds(X) and self.holds(y):  # checked where they are, and not moved
            return device_training_data(X, y, self)
        return host_training_data(X, y, self, probe)

    def check_same_data(self, X: Any, y: Any) -> None:  # noqa: B027 - one process: nothing to compare
        """Fail unless every process of the fit holds the same validated ``X`` and ``y`` (a backend
        whose ranks each load their own data, under ``torchrun``); one process has nothing to compare."""

    def holds(self, x: Any) -> bool:
        """Whether ``x`` is already this backend's array in the fit's dtype on its device, which
        :func:`polylin.fit` validates there and trains on without a copy (default: never)."""
        return False

    # -- required -------------------------------------------------------------------
    @property
    @abstractmethod
    def xp(self) -> Any:
        """The Array API namespace the shared objective is written against."""

    @abstractmethod
    def asarray(self, host: np.ndarray) -> Array:
        """``host`` on this backend's device: floats in the fit's dtype, integers as row indices."""

    @abstractmethod
    def to_numpy(self, x: Array) -> np.ndarray:
        """A NumPy copy (or view) of a backend array."""

    @abstractmethod
    def parameters(self, w: np.ndarray, b: np.ndarray, *, trainable: bool) -> Params:
        """Fresh parameter arrays the update may write into; ``trainable`` marks them for autodiff."""

    @abstractmethod
    def gradient(self, f: LossFn) -> TreeFn:
        """``(params, X, y) -> grads``, the gradient of the scalar ``f`` in ``params``, by autodiff."""

    @abstractmethod
    def update(self, params: Params, grads: Params, lr: float) -> Params:
        """``p ← p − lr·g`` for each parameter, in place where the framework allows.

        Returns the parameters, so that ``params = update(params, grads, lr)``
        also serves frameworks whose arrays are immutable.
        """

    # -- optional -------------------------------------------------------------------
    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        """A function ``(params, order) -> (params, loss)``: one epoch of ``step``, then ``loss``
        on the full data.

        ``order`` is the epoch's example order as a host NumPy integer array:
        batch ``k`` is ``order[k*B : (k+1)*B]`` and the last one may be short.
        Moving it to the device is the runner's job, so that a backend can fold
        the transfer into a call it makes anyway (JAX passes it to the compiled
        epoch). The default moves it with :meth:`asarray` and runs
        :func:`run_steps`, the plain loop every eager framework shares.
        """
        bounds = batch_bounds(layout.n_examples, layout.batch_size)

        def run_epoch(params: Params, order: np.ndarray) -> tuple[Params, Array]:
            params = run_steps(step, params, X, y, self.asarray(order), bounds)
            return params, loss(params, X, y)

        return run_epoch

    def host_view(self, array: Array) -> np.ndarray | None:
        """``array``'s own memory as a read-only NumPy array, with no copy and nothing computed, or
        ``None`` where there is no such view (the default; data on a GPU, or over several devices).
        The loop then evaluates the full-data loss there with NumPy (:mod:`polylin.host_loss`)."""
        return None

    def device_data(self, X: np.ndarray, y: np.ndarray) -> tuple[Array, Array]:
        """The validated host ``X`` and ``y`` where the epochs read them: :meth:`asarray` of each.

        A backend whose compiled calls read host arrays more cheaply than it can
        move them once keeps them on the host (JAX on its default CPU device).
        """
        return self.asarray(X), self.asarray(y)

    def synchronize(self, tree: Any) -> None:  # noqa: B027 - a no-op for synchronous frameworks
        """Block until every pending computation producing ``tree`` has finished."""

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """A context the whole fit runs inside (JAX enables float64 in it)."""
        return contextlib.nullcontext()


def run_steps(
    step: StepFn,
    params: Params,
    X: Array,
    y: Array,
    order: Array,
    bounds: list[tuple[int, int]],
    on_step: Callable[[int, Params], None] | None = None,
) -> Params:
    """The minibatch steps of one epoch, in order; ``on_step(k, params)`` after the k-th (1-based)."""
    for count, (start, stop) in enumerate(bounds, start=1):
        params = step(params, X, y, order[start:stop])
        if on_step is not None:
            on_step(count, params)
    return params


class NoAutodiff(Backend):
    """A backend with no autodiff library: only the objective's hand-derived gradient runs on it."""

    has_autodiff = False

    def gradient(self, f: LossFn) -> TreeFn:
        raise ValueError(
            f"The {self.name} backend has no autodiff library; its gradients are derived by hand: "
            "use grad='analytic' (the default there)."
        )
