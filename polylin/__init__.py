"""polylin: linear regression from scratch, one training loop on four array frameworks.

>>> import polylin
>>> result = polylin.fit(backend="numpy")
>>> result.final_loss < 1e-4
True

Importing polylin imports no framework: JAX, PyTorch and MXNet are loaded
only when a fit asks for them.
"""

from polylin._version import __version__
from polylin.api import fit
from polylin.backends import KNOWN_BACKENDS, available_backends, get_backend
from polylin.checkpoint import load
from polylin.data import BOOK_TRUE_B, BOOK_TRUE_W, minibatches, synthetic_data
from polylin.errors import (
    BackendNotInstalledError,
    CheckpointError,
    DataConversionWarning,
    DeviceNotAvailableError,
    DivergenceError,
    PolylinError,
    StabilityWarning,
    TrainingInterruptedWarning,
)
from polylin.losses import LOSSES
from polylin.result import FitResult

#: Sub-modules loaded on first use, so that ``import polylin`` does not import matplotlib.
_LAZY_SUBMODULES = ("experiments", "plot")


#: Public names loaded on first use, so that ``import polylin`` does not import scikit-learn or matplotlib.
_LAZY_ATTRIBUTES = {"SGDLinearRegressor": "polylin.estimator", "compare": "polylin.report"}


def __getattr__(name: str) -> object:
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module(f"polylin.{name}")
    if name in _LAZY_ATTRIBUTES:
        import importlib

        return getattr(importlib.import_module(_LAZY_ATTRIBUTES[name]), name)
    raise AttributeError(f"module 'polylin' has no attribute {name!r}")


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
