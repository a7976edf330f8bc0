"""What every hand-written loop provides, so the runner can time them all alike."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


def batch_slices(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each minibatch of an epoch over ``n`` ordered examples; the last may be short."""
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]


class Reference(ABC):
    """One hand-written training loop.

    ``run_epoch(order)`` queues one epoch's steps (``order`` from
    :meth:`device_order`); the runner reads its clock only after
    :meth:`synchronize` returns. :meth:`reset` puts the initial parameters
    back, so one instance (and one compilation) serves every repeat.
    """

    #: polylin's name for the framework, the gradient mode, and the execution path.
    backend: ClassVar[str]
    grad: ClassVar[str]
    path: ClassVar[str] = "eager"
    #: One line naming the idiom, for the printed table.
    idiom: ClassVar[str]

    def __init__(
        self, X: np.ndarray, y: np.ndarray, w0: np.ndarray, b0: np.ndarray, lr: float, batch_size: int
    ) -> None:
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.n, self.d = X.shape
        self.dtype = X.dtype
        self.w0 = np.asarray(w0, dtype=X.dtype).copy()
        self.b0 = np.asarray(b0, dtype=X.dtype).reshape(1).copy()
        self.setup(X, y)
        self.reset()

    @property
    def name(self) -> str:
        return type(self).__name__

    @abstractmethod
    def setup(self, X: np.ndarray, y: np.ndarray) -> None:
        """Move the data to the framework (not timed)."""

    @abstractmethod
    def reset(self) -> None:
        """Set the parameters to ``(w0, b0)``."""

    @abstractmethod
    def device_order(self, order: np.ndarray) -> Any:
        """The epoch's example order as the framework's index array (not timed, as in polylin)."""

    @abstractmethod
    def run_epoch(self, order: Any) -> None:
        """One epoch of minibatch SGD steps in ``order``."""

    def synchronize(self) -> None:  # noqa: B027 - synchronous frameworks have nothing to wait for
        """Block until every queued step has finished."""

    @abstractmethod
    def epoch_loss(self) -> float:
        """The full-data mean ½ squared loss, computed in the framework, as the book's loop prints
        it after every epoch. The runner times it with the epoch, as polylin's epoch times cover
        its per-epoch loss."""

    @abstractmethod
    def params(self) -> tuple[np.ndarray, float]:
        """The current ``(w, b)`` on the host."""

    def train(self, orders: list[np.ndarray]) -> tuple[np.ndarray, float]:
        """Reset, run one epoch per order (each followed by its loss, as in the book), and return
        the final parameters."""
        self.reset()
        for order in orders:
            self.run_epoch(self.device_order(order))
            self.synchronize()
            self.epoch_loss()
        return self.params()
