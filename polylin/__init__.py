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
