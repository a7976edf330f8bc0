"""Any Array API namespace: the hand-derived-gradient loop run on the caller's own arrays.

array-api-compat gives every compliant library one namespace ``xp`` (NumPy,
PyTorch, CuPy, JAX, dask, array-api-strict, ...). This backend runs the shared
loop and :class:`~polylin.objective.Objective`'s hand-derived gradient on it,
so the data never leaves its library or its device: "everything follows X".

Which namespace
    ``namespace=`` (a module, or its import name such as ``"array_api_strict"``
    or ``"dask.array"``), else the namespace of ``like=`` (an array; the
    device follows it too), else NumPy's. :func:`polylin.fit` passes
    ``like=X`` itself when called with ``backend="array-api"`` or ``"auto"``.

Devices
    ``device=None`` is ``like``'s device, or the namespace's default one.
    ``"cpu"``, ``"gpu"``/``"gpu:N"`` pick from the devices the namespace lists
    (``__array_namespace_info__().devices()``), and so does a device's own name
    (``"device1"`` on array-api-strict) or the device object itself.

Lazy namespaces (dask): the path for data that does not fit in memory
    A lazy library records work instead of doing it. Run step by step, SGD
    would be hopeless there: each minibatch step builds and schedules a task
    graph (measured: about 50 ms a step with dask, for a few hundred flops),
    the parameters' graph grows with every step, and gathering ten random
    rows from a chunked, possibly on-disk, array touches up to ten chunks.

    So, on a lazy namespace, each epoch is cut into blocks of consecutive
    minibatches holding at most ``block_bytes`` of data (64 MiB by default).
    A block's rows are gathered from ``X`` in one request (dask reads each
    chunk at most once for it) and computed into memory as NumPy arrays;
    the block's steps then run there, with NumPy, on exactly the rows, in
    exactly the order, an eager run would use; the parameters go back into
    the namespace at the end of the epoch. The full-data loss after each
    epoch, the validation of ``X`` and ``y`` (one streaming pass for the
    finiteness check) and the sampled checks (data fingerprint, stability
    bound) run through the lazy library, chunk by chunk.

    Memory therefore stays at about one block (plus the chunks the library
    is reading) whatever the size of ``X``, and the fit agrees with the
    NumPy backend: its parameters bitwise, its losses within the parity
    tolerance (the chunked sums add in another order). The price is I/O:
    shuffled blocks draw rows from every chunk, so an epoch reads the data
    about ``n·d·itemsize / block_bytes`` times over; a larger
    ``block_bytes``, or ``shuffle=False`` (one pass), reads less.

    Measured (2 CPU cores, dask 2026.8, float64, ``X`` of 2×10⁶ × 20 and
    4×10⁶ × 20 generated lazily by ``dask.array.random``, i.e. 305 and
    610 MiB, batch 1000, one epoch): peak memory 462 and 488 MiB, so it
    does not grow with ``n``; 38 and 60 seconds.
"""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from types import ModuleType
from typing import Any

import numpy as np

from polylin.backends.base import NoAutodiff, run_steps
from polylin.batching import BatchLayout, batch_bounds
from polylin.devices import DeviceSpec
from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype
from polylin.errors import DeviceNotAvailableError
from polylin.resident import ResidentArray
from polylin.types import Array, EpochFn, LossFn, Params, StepFn

DEFAULT_BLOCK_BYTES = 64 * 2**20
_GPU_WORDS = ("cuda", "gpu", "rocm")


def namespace_of(x: object) -> Any:
    """The array-api-compat namespace of ``x``; ``TypeError`` if it has none."""
    import array_api_compat

    return array_api_compat.array_namespace(x)


def has_namespace(x: object) -> bool:
    """Whether array-api-compat recognises ``x`` as an array."""
    try:
        namespace_of(x)
    except TypeError:
        return False
    return True


def device_of(x: object) -> Any:
    """The device ``x`` lives on (array-api-compat's ``device``)."""
    import array_api_compat

    return array_api_compat.device(x)


def device_label(device: object) -> str:
    """A short readable name: ``'cpu'``, ``'cuda:0'``, ``'CPU_DEVICE'``, ``'device1'``."""
    text = str(device)
    quoted = re.search(r"'([^']*)'", text)
    return quoted.group(1) if quoted else text


def device_request(device: object) -> str | None:
    """A native device as a polylin device string (``'cpu'`` or ``'gpu:N'``), if it is one."""
    text = str(device).lower()
    if "cpu" in text:
        return "cpu"
    match = re.search(r"(?:cuda|gpu|rocm)\D*(\d+)", text)
    return f"gpu:{match.group(1)}" if match else None


def namespace_label(xp: Any) -> str:
    """``'numpy'``, ``'torch'``, ``'dask.array'``, ``'array_api_strict'``, ...: the library behind ``xp``."""
    name = str(getattr(xp, "__name__", type(xp).__name__))
    return name.removeprefix("array_api_compat.")


def namespace_version(xp: Any) -> str:
    """The version of the library behind ``xp``."""
    top = namespace_label(xp).split(".")[0]
    module = sys.modules.get(top)
    return str(getattr(module, "__version__", "unknown"))


def load_namespace(namespace: object) -> Any:
    """The compatible namespace for a module or an import name (``"dask.array"``)."""
    module = namespace
    if isinstance(namespace, str):
        try:
            module = importlib.import_module(namespace)
        except ImportError as exc:
            raise ValueError(
                f"namespace={namespace!r} cannot be imported ({exc}); install it, or name an "
                "Array API library that is installed (e.g. 'numpy', 'array_api_strict', 'dask.array')."
            ) from exc
    if not isinstance(module, ModuleType) or not hasattr(module, "asarray"):
        raise ValueError(
            f"namespace={namespace!r} is not an array library; pass a module such as "
            "array_api_strict, or its name."
        )
    try:
        return namespace_of(module.asarray(0.0))
    except TypeError as exc:
        raise ValueError(
            f"namespace={namespace!r} is not a library array-api-compat recognises ({exc})."
        ) from exc


def to_namespace(value: Any, xp: Any, device: Any = None, dtype: Any = None) -> Array:
    """``value`` (NumPy, a Python number or any library's array) as an array of ``xp`` on ``device``."""
    if has_namespace(value) and namespace_of(value) is xp:
        array = value
        if device is not None and device_of(array) != device:
            array = xp.asarray(array, device=device)
    else:
        host = value if isinstance(value, np.ndarray | np.generic | float | int) else host_array(value)
        if isinstance(host, np.ndarray) and not host.flags.writeable:
            host = host.copy()  # some libraries (torch) refuse to wrap read-only memory
        array = xp.asarray(host) if device is None else xp.asarray(host, device=device)
    return array if dtype is None or array.dtype == dtype else xp.astype(array, dtype)


def host_array(x: Any) -> np.ndarray:
    """A NumPy copy or view of any array: through DLPack where the library offers it, else ``__array__``.

    Arrays on a device the host cannot read (a GPU) are first copied to a CPU
    device of their own namespace.
    """
    if isinstance(x, np.ndarray):
        return x
    if has_namespace(x):
        xp = namespace_of(x)
        if device_request(device_of(x)) != "cpu":
            cpu = _cpu_device(xp)
            if cpu is not None:
                x = xp.asarray(x, device=cpu)
    try:
        return np.from_dlpack(x)
    except (AttributeError, TypeError, BufferError, RuntimeError, ValueError):
        return np.asarray(x)


def _cpu_device(xp: Any) -> Any:
    return next((d for d in namespace_devices(xp) if "cpu" in str(d).lower()), None)


def namespace_devices(xp: Any) -> list[Any]:
    """The devices ``xp`` reports, or its default device when it reports none."""
    info = getattr(xp, "__array_namespace_info__", None)
    if info is not None:
        try:
            with warnings.catch_warnings():  # torch warns while it probes device types it has retired
                warnings.simplefilter("ignore")
                return list(info().devices())
        except Exception:
            pass
    return [device_of(xp.asarray(0.0))]


def _is_lazy(sample: Array) -> bool:
    """Whether operations on ``sample`` record work instead of doing it.

    array-api-compat calls every JAX array lazy, because one may be a tracer
    inside ``jit``; the arrays a fit holds are concrete, and JAX computes
    them eagerly, so they take the eager path.
    """
    import array_api_compat

    return bool(array_api_compat.is_lazy_array(sample)) and not array_api_compat.is_jax_array(sample)


class FollowArguments:
    """A view of an array namespace whose functions run in the namespace of their array arguments.

    ``FollowArguments(dask_xp).matmul(a, b)`` is NumPy's ``matmul`` when ``a``
    and ``b`` are NumPy arrays, and dask's when they are dask arrays; with no
    array argument, or arrays of several namespaces, it is the wrapped one's.
    """

    def __init__(self, default: Any) -> None:
        self._default = default
        self.__name__ = str(getattr(default, "__name__", "namespace"))

    def __getattr__(self, name: str) -> Any:
        member = getattr(self._default, name)
        if not callable(member) or isinstance(member, type):
            return member
        default = self._default

        def call(*args: Any, **kwargs: Any) -> Any:
            arrays = [a for a in args if not isinstance(a, int | float | complex | bool) and has_namespace(a)]
            try:
                xp = namespace_of(*arrays) if arrays else default
            except TypeError:  # arrays from several namespaces: the wrapped one decides
                xp = default
            return getattr(xp, name)(*args, **kwargs)

        return call


class ArrayApiBackend(NoAutodiff):
    """Hand-derived gradients on any Array API namespace, with functional updates.

    Options (``backend_options`` of :func:`polylin.fit`): ``namespace`` (a
    module or its import name), ``like`` (an array whose namespace and device
    to use), ``lazy`` (``None``: array-api-compat decides; ``True`` forces the
    blockwise path described in the module docstring) and ``block_bytes``
    (how much data a lazy namespace holds in memory at once).
    """

    name = "array-api"

    def __init__(
        self,
        dtype: object = "float32",
        device: object = None,
        *,
        namespace: object = None,
        like: object = None,
        lazy: bool | None = None,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
    ) -> None:
        # The base constructor only understands "cpu"/"gpu:N"; this one also takes the
        # namespace's own device names and objects, so it sets the same fields itself.
        self.dtype = canonical_dtype(dtype)
        self.np_dtype = SUPPORTED_DTYPES[self.dtype]
        if namespace is not None:
            self._xp = load_namespace(namespace)
        elif like is not None:
            if not has_namespace(like):
                raise TypeError(
                    f"like= is a {type(like).__module__}.{type(like).__name__}, which is not an array "
                    "array-api-compat recognises; pass namespace= instead."
                )
            self._xp = namespace_of(like)
        else:
            self._xp = load_namespace("numpy")
        self.xp_dtype = getattr(self._xp, self.dtype)
        if isinstance(block_bytes, bool) or not isinstance(block_bytes, int) or block_bytes < 1:
            raise ValueError(f"block_bytes={block_bytes!r} must be a whole number of bytes >= 1.")
        self.block_bytes = block_bytes
        self.device = self._choose_device(device, like)
        request = device_request(self.device)
        self.device_spec = DeviceSpec.parse(request or "cpu")
        sample = self._xp.asarray(0.0, device=self.device)
        self.lazy = bool(lazy) if lazy is not None else _is_lazy(sample)
        self._following = FollowArguments(self._xp)

    # -- description --------------------------------------------------------
    @property
    def version(self) -> str:
        """The version of the array library, and its name: ``'2.6.1 (array_api_strict)'``."""
        return f"{namespace_version(self._xp)} ({namespace_label(self._xp)})"

    @property
    def xp(self) -> Any:
        """The namespace; on a lazy one, a view of it whose functions run in the namespace
        of their arguments (NumPy for the in-memory blocks, the lazy library for X itself)."""
        return self._following if self.lazy else self._xp

    @property
    def device_name(self) -> str:
        return device_label(self.device)

    def context(self) -> Any:
        # Namespaces computing with NumPy underneath warn on every overflowing operation of a
        # diverging fit; the training loop detects and reports that itself (DivergenceError).
        return np.errstate(over="ignore", invalid="ignore", divide="ignore")

    def devices(self) -> list[Any]:
        """The devices the namespace reports."""
        return namespace_devices(self._xp)

    def _choose_device(self, device: object, like: object) -> Any:
        devices = self.devices()
        if device is None:
            return device_of(like) if like is not None else device_of(self._xp.asarray(0.0))
        if isinstance(device, str):
            return self._named_device(device, devices)
        if devices and not any(device == d for d in devices):
            raise DeviceNotAvailableError(
                f"device={device!r} is not one of the devices {namespace_label(self._xp)} reports: "
                f"{[device_label(d) for d in devices]}."
            )
        return device

    def _named_device(self, name: str, devices: list[Any]) -> Any:
        for candidate in devices:
            if name in (str(candidate), device_label(candidate)):
                return candidate
        try:
            spec: DeviceSpec | None = DeviceSpec.parse(name)
        except ValueError:
            spec = None
        if spec is not None:
            if spec.kind == "cpu":
                matching = [d for d in devices if "cpu" in str(d).lower()]
            else:
                matching = [d for d in devices if any(word in str(d).lower() for word in _GPU_WORDS)]
            if spec.index < len(matching):
                return matching[spec.index]
        shown = name if spec is None else str(spec)
        raise DeviceNotAvailableError(
            f"device={shown!r} is not available to the array-api backend on {namespace_label(self._xp)}, "
            f"which sees {[device_label(d) for d in devices]}. Use device='cpu', one of those names, "
            "or 'gpu:N' for the N-th GPU it lists."
        )

    # -- arrays ---------------------------------------------------------------
    def asarray(self, host: Any) -> Array:
        """An array of the namespace on its device: floats in the fit's dtype, integers as row
        indices; arrays of the namespace itself are moved without a trip through the host."""
        xp = self._xp
        if isinstance(host, ResidentArray):
            host = host.array
        if self._owns(host):
            return host if xp.isdtype(host.dtype, "integral") else self._float(host)
        host = np.asarray(host)
        dtype = np.int64 if host.dtype.kind in "iu" else self.np_dtype
        return xp.asarray(np.asarray(host, dtype=dtype), device=self.device)

    def _float(self, x: Array) -> Array:
        """One of the namespace's own arrays in the fit's float dtype, on the fit's device."""
        xp = self._xp
        x = x if x.dtype == self.xp_dtype else xp.astype(x, self.xp_dtype)
        return x if device_of(x) == self.device else xp.asarray(x, device=self.device)

    def to_numpy(self, x: Array) -> np.ndarray:
        return host_array(x)

    def _owns(self, x: object) -> bool:
        return has_namespace(x) and namespace_of(x) is self._xp

    def parameters(self, w: np.ndarray, b: np.ndarray, *, trainable: bool) -> Params:
        return self.asarray(w), self.asarray(b)

    # -- the update ---------------------------------------------------------------
    def update(self, params: Params, grads: Params, lr: float) -> Params:
        # Functional: not every namespace has in-place operations (JAX, dask).
        (w, b), (grad_w, grad_b) = params, grads
        return w - lr * grad_w, b - lr * grad_b

    # -- running an epoch -----------------------------------------------------------
    def block_rows(self, layout: BatchLayout, n_features: int) -> int:
        """Rows gathered at once on a lazy namespace: whole batches, about ``block_bytes`` of data."""
        per_row = max(1, n_features) * self.np_dtype.itemsize
        batches = max(1, self.block_bytes // (per_row * layout.batch_size))
        return batches * layout.batch_size

    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        """On a lazy namespace, the epoch's steps run in memory, block by block (module docstring)."""
        if not self.lazy:
            return super().epoch_runner(step, loss, X, y, layout)
        rows = self.block_rows(layout, int(X.shape[1]))
        blocks = batch_bounds(layout.n_examples, rows)
        np_dtype = self.np_dtype

        def run_epoch(params: Params, order: Array) -> tuple[Params, Array]:
            # The steps run on NumPy copies of the parameters and of each block; ``self.xp``
            # follows its arguments, so the same step code serves both.
            current: Params = (
                np.array(host_array(params[0]), dtype=np_dtype),
                np.array(host_array(params[1]), dtype=np_dtype),
            )
            order_host = host_array(order)
            for lo, hi in blocks:
                index = self.asarray(order_host[lo:hi])
                X_block = np.asarray(host_array(self._xp.take(X, index, axis=0)), dtype=np_dtype)
                y_block = np.asarray(host_array(self._xp.take(y, index, axis=0)), dtype=np_dtype)
                local = np.arange(hi - lo)
                current = run_steps(
                    step, current, X_block, y_block, local, batch_bounds(hi - lo, layout.batch_size)
                )
            params = self.asarray(current[0]), self.asarray(current[1])
            return params, loss(params, X, y)

        return run_epoch

    # -- data -------------------------------------------------------------------
    def training_data(self, X: Any, y: Any, probe: Any = None) -> tuple[Any, Any]:
        """Validate ``X`` and ``y`` and return them, as :class:`ResidentArray` s of the namespace.

        Arrays of the namespace itself are checked where they are, with the
        namespace's own operations (one streaming pass for the finiteness
        check on dask) and never copied to the host. Anything else goes
        through polylin's host validation first. ``probe`` is not used: the fit's
        initial loss is evaluated on the namespace.
        """
        if X is None or y is None:
            raise ValueError("Pass both X and y, or neither (to train on the book's synthetic data).")
        if not self._owns(X):
            from polylin.validation import host_training_data

            X_host, y_host = host_training_data(X, y, self)
            return self._resident(self.asarray(X_host)), self._resident(self.asarray(y_host))
        xp = self._xp
        if not self._owns(y):
            if has_namespace(y) and not isinstance(y, np.ndarray):
                raise TypeError(
                    f"X is a {namespace_label(xp)} array but y is a {namespace_label(namespace_of(y))} "
                    "array; pass both from the same library."
                )
            y = xp.asarray(np.asarray(y), device=device_of(X))
        if X.ndim != 2:
            raise ValueError(
                f"X must be 2-D with shape (n_examples, n_features); got shape {tuple(X.shape)}. "
                "For a single feature use X.reshape(-1, 1)."
            )
        n, d = X.shape
        if n is None or d is None or n != n or d != d:  # unknown sizes are None or NaN
            raise ValueError(
                f"X has shape {tuple(X.shape)}, with sizes the library does not know yet; make them "
                "known first (for dask: X.compute_chunk_sizes())."
            )
        if n == 0 or d == 0:
            raise ValueError(f"X has shape {tuple(X.shape)}; it needs at least one example and one feature.")
        if y.ndim == 2 and y.shape[1] == 1:
            y = xp.reshape(y, (-1,))
        if y.ndim != 1:
            raise ValueError(
                f"y must have shape (n,) or (n, 1); got shape {tuple(y.shape)}. polylin fits one target."
            )
        if y.shape[0] != n:
            raise ValueError(
                f"y has {y.shape[0]} values but X has {n} rows; they must describe the same examples."
            )
        X = self._float(self._numeric("X", X))
        y = self._float(self._numeric("y", y))
        self._check_finite("X", X)
        self._check_finite("y", y)
        return self._resident(X), self._resident(y)

    def _resident(self, x: Array) -> ResidentArray:
        return ResidentArray(x, self.np_dtype)

    def _numeric(self, name: str, x: Array) -> Array:
        xp = self._xp
        if xp.isdtype(x.dtype, "real floating"):
            return x
        if xp.isdtype(x.dtype, "integral"):
            warnings.warn(
                f"{name} has integer dtype {x.dtype}; polylin converts it to {self.dtype} "
                f"(convert {name} to {self.dtype} yourself to silence this warning).",
                UserWarning,
                stacklevel=4,
            )
            return x
        raise TypeError(
            f"{name} has dtype {x.dtype}, which is not numeric data polylin can train on; "
            "pass real numbers (float32 or float64)."
        )

    def _check_finite(self, name: str, x: Array) -> None:
        xp = self._xp
        finite = xp.isfinite(x)
        if bool(xp.all(finite)):
            return
        flat = xp.reshape(finite, (-1,))
        first = int(host_array(xp.argmin(xp.astype(flat, xp.int8))))
        position = first if x.ndim == 1 else divmod(first, int(x.shape[1]))
        value = host_array(xp.reshape(x, (-1,))[first : first + 1])[0]
        raise ValueError(
            f"{name} contains a non-finite value ({float(value)!r} at index {position}); remove or impute "
            "NaN and inf before fitting."
        )
