"""The backend registry: names, lazy imports and install hints.

Nothing here imports a framework. :func:`get_backend` imports one only when
it is asked for by name, and says how to install it when it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from polylin.backends.base import Backend, BackendInfo, DeviceSpec
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
        "pip install -r backends/numpy.txt",
    ),
    "jax": BackendEntry(
        "jax",
        "polylin.backends.jax_backend",
        "JaxBackend",
        ("jax",),
        "pip install -r backends/jax.txt  (or: pip install 'polylin[jax]')",
    ),
    "torch": BackendEntry(
        "torch",
        "polylin.backends.torch_backend",
        "TorchBackend",
        ("torch",),
        "pip install -r backends/torch.txt  (or: pip install 'polylin[torch]')",
    ),
    "mxnet": BackendEntry(
        "mxnet",
        "polylin.backends.mxnet_backend",
        "MxnetBackend",
        ("mxnet",),
        "pip install -r backends/mxnet.txt  (mxnet 1.9.1 needs Python <= 3.11 and numpy<1.24)",
    ),
}

KNOWN_BACKENDS: tuple[str, ...] = tuple(BACKENDS)


def _entry(name: str) -> BackendEntry:
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"backend={name!r} is not a known backend; choose one of {list(KNOWN_BACKENDS)}."
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
    "get_backend",
    "is_installed",
]
