"""The backend interface: everything the shared training loop needs from a framework.

A backend turns host (NumPy) data into its own arrays on its own device,
converts them back, differentiates an objective, applies the SGD update in
place, optionally compiles, and synchronises for honest timing. It may also
run a whole epoch itself (JAX fuses one into a single ``lax.scan``); the
default here is the plain loop every eager framework shares.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from polylin.batching import BatchLayout, batch_bounds
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.errors import DeviceNotAvailableError
from polylin.objective import chain_rule

Array = Any
Params = tuple[Any, Any]
GradFn = Callable[[Params, Array, Array], Params]
ValueAndGradFn = Callable[[Params, Array, Array], tuple[Array, Params]]
StepFn = Callable[[Params, Array, Array, Array], Params]
EpochFn = Callable[[Params, Array], Params]


def namespace_with(namespace: Any, **fast_paths: Any) -> SimpleNamespace:
    """A copy of an array namespace with some functions replaced by faster equivalents.

    Backends use it to bind the few functions the training step calls on every
    step directly to the framework's own kernels, skipping compatibility
    wrappers; the replacements must have the Array API semantics of the
    functions they replace for the arguments polylin passes.
    """
    members = {name: getattr(namespace, name) for name in dir(namespace) if not name.startswith("__")}
    members.update(fast_paths)
    return SimpleNamespace(**members)


@dataclass(frozen=True)
class BackendInfo:
    """What a result records about the backend that produced it."""

    name: str
    version: str
    device: str
    dtype: str


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device request: a kind (``"cpu"`` or ``"gpu"``) and an index."""

    kind: str
    index: int

    @classmethod
    def parse(cls, device: object) -> DeviceSpec:
        """Parse ``None``, ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"gpu:1"`` or ``"cuda:1"``."""
        if device is None:
            return cls("cpu", 0)
        text = str(device).strip().lower()
        kind, _, index_text = text.partition(":")
        kind = {"cuda": "gpu"}.get(kind, kind)
        if kind not in ("cpu", "gpu") or (index_text and not index_text.isdigit()):
            raise ValueError(
                f"device={device!r} is not a device polylin understands; "
                "use 'cpu', 'gpu' (or 'cuda'), or 'gpu:N' for the N-th GPU."
            )
        return cls(kind, int(index_text or 0))

    def __str__(self) -> str:
        return self.kind if self.kind == "cpu" else f"{self.kind}:{self.index}"


class Backend(ABC):
    """One array framework, as seen by the shared training loop.

    Subclasses set :attr:`name` and the class attributes below and implement
    the abstract methods. Construction resolves the dtype and the device and
    fails with :class:`~polylin.errors.DeviceNotAvailableError` for a device
    that is not present.
    """

    name: ClassVar[str]
    #: Whether the framework can differentiate an objective itself.
    has_autodiff: ClassVar[bool] = True
    #: For asynchronous engines: wait for the queue every this many steps.
    sync_every: ClassVar[int | None] = None

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        self.dtype = canonical_dtype(dtype)
        self.np_dtype = SUPPORTED_DTYPES[self.dtype]
        self.device_spec = DeviceSpec.parse(device)
        self.device = self._resolve_device(self.device_spec)

    # -- description -------------------------------------------------------
    @property
    @abstractmethod
    def version(self) -> str:
        """The framework's version string."""

    @property
    def device_name(self) -> str:
        """A readable name of the device the arrays live on."""
        return str(self.device_spec)

    def info(self) -> BackendInfo:
        return BackendInfo(self.name, self.version, self.device_name, self.dtype)

    @property
    @abstractmethod
    def xp(self) -> Any:
        """The array namespace the shared objective is written against."""

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

    def context(self) -> contextlib.AbstractContextManager[Any]:
        """A context the whole fit runs inside (JAX uses it to enable float64 locally)."""
        return contextlib.nullcontext()

    # -- arrays -------------------------------------------------------------
    @abstractmethod
    def asarray(self, host: np.ndarray) -> Array:
        """A float array in this backend's dtype, on its device, holding ``host``."""

    @abstractmethod
    def index_array(self, host: np.ndarray) -> Array:
        """An integer array of row indices on this backend's device."""

    @abstractmethod
    def to_numpy(self, x: Array) -> np.ndarray:
        """A NumPy copy (or view) of a backend array."""

    def owns(self, x: object) -> bool:
        """Whether ``x`` is one of this framework's own array types."""
        return False

    def training_data(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Validate the user's ``X`` and ``y``; return ``X (n, d)`` and ``y (n,)`` ready for :meth:`asarray`.

        The default converts them to checked NumPy arrays on the host; a backend
        whose data should stay where it is (a lazy dask array) validates it there.
        """
        from polylin.validation import host_training_data

        return host_training_data(X, y, self)

    def parameters(self, w: np.ndarray, b: np.ndarray, trainable: bool) -> Params:
        """Fresh parameter arrays; ``trainable`` marks them for the framework's autodiff."""
        return self.asarray(w), self.asarray(b)

    def take(self, X: Array, idx: Array) -> Array:
        """Rows (or elements) of ``X`` at ``idx``."""
        return self.xp.take(X, idx, axis=0)

    @property
    def affine(self) -> Callable[[Array, Array, Array], Array] | None:
        """A fused ``(X, w, b) -> X w + b``, or ``None`` for ``xp.matmul(X, w) + b``.

        It must be the same function object for every instance (not a bound
        method): objectives built on it compare equal across fits, so that a
        compiling backend's caches, keyed by the objective, are hit again.
        """
        return None

    @property
    def fused_residual(self) -> Callable[[Array, Array, Array, Array], Array] | None:
        """A fused ``(X, w, b, y) -> X w + b − y``, or ``None`` for :attr:`affine`, then ``− y``.

        The same function object for every instance, as for :attr:`affine`.
        """
        return None

    # -- differentiation and the update -----------------------------------------
    @abstractmethod
    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        """A function ``(params, X, y) -> (value, grads)`` for ``objective``."""

    def grad(self, objective: Any) -> GradFn:
        """A function ``(params, X, y) -> grads``; backends may skip computing the value."""
        value_and_grad = self.value_and_grad(objective)
        return lambda params, X, y: value_and_grad(params, X, y)[1]

    @abstractmethod
    def update(self, params: Params, grads: Params, lr: float) -> Params:
        """``p ← p − lr·g`` for each parameter, in place where the framework allows.

        Returns the parameters, so that ``params = update(params, grads, lr)``
        also serves frameworks whose arrays are immutable.
        """

    def descend(self, params: Params, g: Array, X: Array, lr: float) -> Params:
        """One hand-derived SGD step from ``g``, the derivative of a batch's summed loss in each
        prediction (``gᵢ = l'(rᵢ)``): ``w ← w − lr·Xᵀg`` and ``b ← b − lr·Σᵢ gᵢ``.

        The default forms the gradient (:func:`polylin.objective.chain_rule`) and
        applies :meth:`update`; a backend may fuse the product with the update
        (torch's ``addmv_``), which saves an array operation and a temporary per step.
        """
        return self.update(params, chain_rule(self.xp, g, X), lr)

    def compile(self, fn: Callable[..., Any], *, donate_params: bool = False) -> Callable[..., Any]:
        """Compile ``fn(params, ...)``; the identity for eager frameworks.

        ``donate_params`` lets a compiler reuse the buffers of the first
        argument for the result (the caller promises not to read them again).
        """
        return fn

    def evaluator(self, objective: Callable[..., Any]) -> Callable[[Params, Array, Array], float]:
        """A function ``(params, X, y) -> float`` that evaluates ``objective`` without recording gradients."""
        to_numpy = self.to_numpy
        return lambda params, X, y: float(to_numpy(objective(params, X, y)))

    def deferred_evaluator(
        self, objective: Callable[..., Any]
    ) -> Callable[[Params, Array, Array], Callable[[], float]]:
        """Like :meth:`evaluator`, but the function it returns starts the evaluation and returns a
        function that waits for the value and returns it.

        A backend whose engine runs asynchronously (MXNet, a GPU) starts the
        computation at once, so that it runs while the host goes on with other
        work, such as drawing the next epoch's order. The default, for
        synchronous engines, computes the value only when it is read: the host
        work then comes first, and the framework's own work last, right before
        the next epoch (on a 20 µs JAX epoch, host work in between costs 20 %).
        The parameters must not change between the start and the read.
        """
        evaluate = self.evaluator(objective)

        def start(params: Params, X: Array, y: Array) -> Callable[[], float]:
            return lambda: evaluate(params, X, y)

        return start

    def synchronize(self, tree: Any) -> None:  # noqa: B027 - a no-op for synchronous frameworks
        """Block until every pending computation producing ``tree`` has finished."""

    # -- running an epoch -------------------------------------------------------
    def epoch_runner(
        self,
        step: StepFn,
        X: Array,
        y: Array,
        layout: BatchLayout,
        *,
        cache_key: Hashable | None = None,
    ) -> EpochFn:
        """A function ``(params, order) -> params`` that runs one epoch of ``step``.

        ``order`` is this backend's index array of the epoch's example order;
        batch ``k`` is ``order[k*B : (k+1)*B]`` and the last one may be short.
        Steps built with equal ``cache_key`` compute the same function, so a
        compiling backend may reuse what it compiled for an earlier fit.
        """
        compiled = self.compile(step, donate_params=True)
        bounds = batch_bounds(layout.n_examples, layout.batch_size)
        sync_every = self.sync_every
        synchronize = self.synchronize

        def run_epoch(params: Params, order: Array) -> Params:
            for count, (start, stop) in enumerate(bounds, start=1):
                params = compiled(params, X, y, order[start:stop])
                if sync_every is not None and count % sync_every == 0:
                    synchronize(params)
            return params

        return run_epoch

    # -- second derivatives (the book's exercise on second derivatives) ---------
    def hessian(self, objective: Any) -> Callable[[Params, Array, Array], Array]:
        """A function ``(params, X, y) -> H``, the ``(d+1)×(d+1)`` Hessian of ``objective``.

        Rows and columns are ordered ``w₁ … w_d, b``; ``H`` is one of this
        backend's arrays, computed by the framework's own autodiff (the NumPy
        backend derives it by hand). Backends that cannot do this raise.
        """
        raise NotImplementedError(
            f"The {self.name} backend does not compute Hessians; use the numpy backend "
            "(hand-derived) or jax / torch (their autodiff)."
        )


class HandDerivedGradients(Backend):
    """A backend with no autodiff library: its "gradient" is the objective's hand-derived one."""

    has_autodiff = False

    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        hand_derived = getattr(objective, "value_and_gradient", None)
        if hand_derived is None:
            raise TypeError(
                f"The {self.name} backend has no autodiff: it needs an objective with a "
                "hand-derived gradient (a polylin.objective.Objective)."
            )
        return hand_derived  # type: ignore[no-any-return]

    def grad(self, objective: Any) -> GradFn:
        self.value_and_grad(objective)  # the same check and message
        return objective.gradient  # type: ignore[no-any-return]
