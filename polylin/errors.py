"""Exceptions raised by polylin, each naming what went wrong and how to fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class PolylinError(Exception):
    """Base class for polylin's own errors."""


class BackendNotInstalledError(ImportError, PolylinError):
    """A known backend whose framework cannot be imported."""


class DeviceNotAvailableError(ValueError, PolylinError):
    """The requested device does not exist on this machine for this backend."""


class DivergenceError(FloatingPointError, PolylinError):
    """Training produced a non-finite loss or parameter.

    Attributes
    ----------
    epoch, step:
        1-based epoch and 1-based step within that epoch where the first
        non-finite value appeared.
    last_finite_w, last_finite_b:
        The parameters at the end of the last epoch that was still finite.
    result:
        The partial :class:`~polylin.FitResult` up to the last finite epoch.
    """

    def __init__(
        self,
        message: str,
        *,
        epoch: int,
        step: int,
        last_finite_w: np.ndarray,
        last_finite_b: float,
        result: Any = None,
    ) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.last_finite_w = last_finite_w
        self.last_finite_b = last_finite_b
        self.result = result


class DivergenceWarning(UserWarning):
    """Training diverged and ``fit(on_divergence="stop")`` returned the last finite epoch."""


class CheckpointError(ValueError, PolylinError):
    """A checkpoint that cannot be read, or that cannot resume the requested fit."""


class StabilityWarning(UserWarning):
    """The learning rate is above the gradient-descent stability bound ``2/λ_max``.

    See :func:`polylin.stability.stability_bound` for what the bound does and
    does not promise for minibatch SGD.
    """


class DataConversionWarning(UserWarning):
    """Integer, boolean or object data was converted to the floating-point training dtype."""


class TrainingInterruptedWarning(UserWarning):
    """Ctrl-C stopped :func:`polylin.fit`; the result holds the last completed epoch."""
