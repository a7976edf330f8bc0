"""The backend registry: names, lazy imports and install hints.

Nothing here imports a framework. :func:`get_backend` imports one only when
it is asked for by name, and says how to install it when it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from polylin.backends.base import Backend, BackendInfo
from polylin.devices import DeviceSpec
from polylin.errors import BackendNotInstalledError


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend's adapter lives and what it needs installed."""

    name: str
    module: str
    class_name: str
    requires: tuple[str, ...]
    install: str


BACKENDS: dict[str, BackendEntry] = {
    "numpy": BackendEntry(
        "numpy",
        "polylin.backends.numpy_backend",
        "NumpyBackend",
        ("numpy", "array_api_compat"),
        "pip install -r environments/numpy.txt",
    ),
    "jax": BackendEntry(
        "jax",
        "polylin.backends.jax_backend",
        "JaxBackend",
        ("jax",),
        "pip install -r environments/jax.txt  (or: pip install 'polylin[jax]')",
    ),
    "torch": BackendEntry(
        "torch",
        "polylin.backends.torch_backend",
        "TorchBackend",
        ("torch",),
        "pip install -r environments/torch.txt  (or: pip install 'polylin[torch]')",
    ),
    "mxnet": BackendEntry(
        "mxnet",
        "polylin.backends.mxnet_backend",
        "MxnetBackend",
        ("mxnet",),
        "pip install -r environments/mxnet.txt  (mxnet 1.9.1 needs Python <= 3.11 and numpy<1.24)",
    ),
    "array-api": BackendEntry(
        "array-api",
        "polylin.backends.array_api_backend",
        "ArrayApiBackend",
        ("numpy", "array_api_compat"),
        "pip install array-api-compat  (plus the array library you want to use)",
    ),
}

KNOWN_BACKENDS: tuple[str, ...] = tuple(BACKENDS)


def _entry(name: str) -> BackendEntry:
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        from polylin.suggest import did_you_mean

        raise ValueError(
            f"backend={name!r} is not a known backend; choose one of {list(KNOWN_BACKENDS)}, "
            f"or 'auto' (the backend X belongs to).{did_you_mean(name, [*KNOWN_BACKENDS, 'auto'])}"
        ) from None


def backend_class(name: str) -> type[Backend]:
    """Import and return a backend's class, or explain how to install its framework."""
    entry = _entry(name)
    try:
        for requirement in entry.requires:
            importlib.import_module(requirement)
        module = importlib.import_module(entry.module)
    except (ImportError, AttributeError) as exc:  # mxnet on numpy>=1.24 fails with AttributeError
        raise BackendNotInstalledError(
            f"The {name} backend needs {', '.join(entry.requires)}, which cannot be "
            f"imported here ({exc}). Install it with: {entry.install}"
        ) from exc
    cls: type[Backend] = getattr(module, entry.class_name)
    return cls


def get_backend(name: str, *, dtype: object = "float32", device: object = None, **options: object) -> Backend:
    """Create the backend ``name`` for ``dtype`` on ``device``."""
    return backend_class(name)(dtype=dtype, device=device, **options)  # type: ignore[call-arg]


def is_installed(name: str) -> bool:
    """Whether every module the backend needs can be found, without importing it."""
    return all(importlib.util.find_spec(module) is not None for module in _entry(name).requires)


def backend_for(X: object) -> str:
    """The backend ``backend="auto"`` picks for ``X``.

    NumPy arrays (and lists, and no data at all) go to ``"numpy"``; torch
    tensors, jax arrays and mxnet arrays to their own backends; any other
    array that array-api-compat recognises (dask, array-api-strict, CuPy, ...)
    to ``"array-api"``, which runs on X's own namespace.
    """
    from polylin.frameworks import framework_of

    framework = framework_of(X)
    if framework in (None, "numpy", "jax", "torch", "mxnet"):
        return framework or "numpy"
    return "array-api"


def resolve_backend(
    backend: Any, X: object = None, options: Mapping[str, Any] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Resolve ``backend="auto"`` from ``X``, and point ``"array-api"`` at X's namespace and device.

    Returns the backend name and the backend options to construct it with;
    anything else passes through unchanged.
    """
    resolved = dict(options or {})
    if backend == "auto":
        backend = backend_for(X)
    if backend == "array-api" and X is not None and not {"namespace", "like"} & set(resolved):
        from polylin.backends.array_api_backend import has_namespace

        if has_namespace(X):
            resolved["like"] = X
    return backend, resolved


def available_backends() -> list[str]:
    """The known backends whose frameworks are installed."""
    return [name for name in KNOWN_BACKENDS if is_installed(name)]


__all__ = [
    "BACKENDS",
    "KNOWN_BACKENDS",
    "Backend",
    "BackendInfo",
    "DeviceSpec",
    "available_backends",
    "backend_class",
    "backend_for",
    "get_backend",
    "is_installed",
    "resolve_backend",
]
