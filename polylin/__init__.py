"""polylin: linear regression from scratch, one training loop on four array frameworks.

>>> import polylin
>>> result = polylin.fit(backend="numpy")
>>> result.final_loss < 1e-4
True

Importing polylin imports no framework, not even NumPy: the public names are
loaded on first use (the lazy loading of Scientific Python's SPEC 1), so
``import polylin`` costs a few milliseconds and a command-line call such as
``polylin --help`` starts at once. JAX, PyTorch and MXNet are loaded only
when a fit asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polylin._version import __version__
from polylin.errors import (
    BackendNotInstalledError,
    CheckpointError,
    DataConversionWarning,
    DeviceNotAvailableError,
    DivergenceError,
    DivergenceWarning,
    PolylinError,
    StabilityWarning,
    TrainingInterruptedWarning,
)

if TYPE_CHECKING:  # what the lazy names below are, for type checkers and IDEs
    from polylin.api import fit
    from polylin.backends import KNOWN_BACKENDS, available_backends, get_backend
    from polylin.data import BOOK_TRUE_B, BOOK_TRUE_W, minibatches, synthetic_data
    from polylin.estimator import SGDLinearRegressor as SGDLinearRegressor
    from polylin.losses import LOSSES
    from polylin.report import compare as compare
    from polylin.result import FitResult, load

#: Public name → the module that defines it, imported on first access.
_LAZY_ATTRIBUTES = {
    "fit": "polylin.api",
    "KNOWN_BACKENDS": "polylin.backends",
    "available_backends": "polylin.backends",
    "get_backend": "polylin.backends",
    "load": "polylin.result",
    "BOOK_TRUE_B": "polylin.data",
    "BOOK_TRUE_W": "polylin.data",
    "minibatches": "polylin.data",
    "synthetic_data": "polylin.data",
    "LOSSES": "polylin.losses",
    "FitResult": "polylin.result",
    "SGDLinearRegressor": "polylin.estimator",
    "compare": "polylin.report",
}
#: Sub-modules loaded on first use (``polylin.plot`` imports matplotlib).
_LAZY_SUBMODULES = ("experiments", "plot")


def __getattr__(name: str) -> object:
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"polylin.{name}")
    module = _LAZY_ATTRIBUTES.get(name)
    if module is None:
        raise AttributeError(f"module 'polylin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_ATTRIBUTES, *_LAZY_SUBMODULES})


# SGDLinearRegressor (scikit-learn) and compare (matplotlib) stay out of __all__, so that
# ``from polylin import *`` does not import those libraries.
__all__ = [
    "BOOK_TRUE_B",
    "BOOK_TRUE_W",
    "KNOWN_BACKENDS",
    "LOSSES",
    "BackendNotInstalledError",
    "CheckpointError",
    "DataConversionWarning",
    "DeviceNotAvailableError",
    "DivergenceError",
    "DivergenceWarning",
    "FitResult",
    "PolylinError",
    "StabilityWarning",
    "TrainingInterruptedWarning",
    "__version__",
    "available_backends",
    "fit",
    "get_backend",
    "load",
    "minibatches",
    "synthetic_data",
]
