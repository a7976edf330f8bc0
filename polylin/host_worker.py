"""One background thread for the host work that runs beside a fit's epochs.

Two kinds of host work can overlap an epoch: drawing the next epoch's order
(:class:`~polylin.randomness.EpochOrders`) and evaluating the last epoch's
full-data loss with NumPy (:mod:`polylin.host_loss`). Both release the GIL in
their kernels. They share one thread, which takes them in the order they were
given: on two cores, a thread each made the epoch's own kernels share their
core with two others at its start, and a JAX epoch beside both took about as
long as the epoch and the loss one after the other (10⁶ × 100 float32).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

T = TypeVar("T")


class HostWorker:
    """A single worker thread, started by the first :meth:`submit`; :meth:`close` abandons what it
    has not started."""

    def __init__(self, name: str = "polylin-host") -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # here: importing polylin starts no thread pool

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
