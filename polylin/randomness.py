"""Every random number polylin draws comes from NumPy, from one seed.

Data, initial parameters and the order of minibatches each take their own
stream, derived from the user's seed through :class:`numpy.random.SeedSequence`
entropy lists ``[seed, stream, ...]``. Drawing on the host and converting means
every backend sees bit-identical numbers for a seed, so parity between
backends is a question of floating point alone. Giving each epoch its own
order stream means a run resumed after ``k`` epochs sees exactly the batches
an uninterrupted run would have seen.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from polylin.host_worker import HostWorker

_DATA_STREAM = 0
_INIT_STREAM = 1
_ORDER_STREAM = 2

INIT_SCHEMES = ("normal", "zeros")

T = TypeVar("T")


_WORD = 1 << 32


def _entropy_words(entropy: tuple[int, ...]) -> Any:
    """The entropy as ``SeedSequence`` takes it: a ``uint32`` array where each integer is one
    32-bit word (what NumPy makes of such a list, without converting the list), else the list."""
    return np.array(entropy, dtype=np.uint32) if min(entropy) >= 0 and max(entropy) < _WORD else list(entropy)


def stream_generator(*entropy: int) -> np.random.Generator:
    """``np.random.default_rng([*entropy])``, bit for bit: a fresh generator the caller may keep."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(_entropy_words(entropy))))


@functools.lru_cache(maxsize=1024)
def _stream_start(entropy: tuple[int, ...]) -> Mapping[str, Any]:
    """The PCG64 state ``default_rng([*entropy])`` starts from (a pure function of the entropy)."""
    return stream_generator(*entropy).bit_generator.state


_reusable = threading.local()


def _draw(entropy: tuple[int, ...], draw: Callable[[np.random.Generator], T]) -> T:
    """``draw(np.random.default_rng([*entropy]))``, bit for bit, without seeding a new generator.

    Seeding costs about 20 µs here (most of an epoch order's draw on the book's 1000 examples),
    and its result depends on the entropy alone: the start state is remembered (64 bytes each,
    the last 1024 streams), and set on this thread's own generator, which ``draw`` must use up
    before it returns.
    """
    generator = getattr(_reusable, "generator", None)
    if generator is None:
        generator = _reusable.generator = np.random.Generator(np.random.PCG64())
    generator.bit_generator.state = _stream_start(entropy)
    return draw(generator)


def data_generator(seed: int) -> np.random.Generator:
    """The generator that draws synthetic data for ``seed``."""
    return stream_generator(seed, _DATA_STREAM)


def initial_parameters(
    seed: int, n_features: int, init: str = "normal", scale: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``(w, b)`` in float64: ``w ~ N(0, scale²)`` (or zeros) and ``b = 0``.

    ``b`` has shape ``(1,)`` so that every backend can hold it as an ordinary array.
    """
    if init == "zeros":
        w = np.zeros(n_features)
    elif init == "normal":
        w = _draw((seed, _INIT_STREAM), lambda rng: rng.normal(0.0, scale, n_features))
    else:
        raise ValueError(f"init={init!r} is not a known initialisation; use one of {INIT_SCHEMES}.")
    return w, np.zeros(1)


def order_generator(seed: int, epoch: int) -> np.random.Generator:
    """The generator that draws 0-based ``epoch``'s example order for ``seed``."""
    return stream_generator(seed, _ORDER_STREAM, epoch)


def epoch_order(seed: int, epoch: int, n: int, shuffle: bool = True) -> np.ndarray:
    """The order in which examples are visited in 0-based ``epoch`` (int64 indices)."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    order = _draw((seed, _ORDER_STREAM, epoch), lambda rng: rng.permutation(n))
    return order.astype(np.int64, copy=False)


#: From this many examples on, :class:`EpochOrders` draws each next order on a background thread
#: while the current epoch trains. A draw takes 48 µs for 10⁴ examples, 0.94 ms for 2¹⁷ and 8.3 ms
#: for 10⁶ (2026-12-07, 2 cores); starting the thread and handing an order over costs about 80 µs.
#: On 10⁶ × 100 the thread makes a whole JAX fit 0.90 times as long and a NumPy one 0.97; on
#: 2¹⁷-2¹⁸ rows of 20 features (batch 256) it made them 1.01-1.07 times as long, the draw beside
#: a short epoch slowing it more than it saved (with batch 1024, JAX 0.95), and from 2¹⁹ rows on
#: it was even or better (30 alternated pairs each). The threshold is not tuned to X's shape.
PREFETCH_MIN_EXAMPLES = 1 << 17


class EpochOrders:
    """The example orders of epochs ``start, start+1, ...`` (:func:`epoch_order`), taken in turn.

    With at least :data:`PREFETCH_MIN_EXAMPLES` examples, taking epoch ``e``'s
    order starts drawing epoch ``e+1``'s on a background thread, where it
    overlaps the epoch (NumPy's shuffle and the frameworks' kernels release
    the GIL), unless ``prefetch`` is off (the backend's ``overlaps_host_work``):
    on ``worker`` (:class:`~polylin.host_worker.HostWorker`, shared with the
    loop's other host work, which its owner closes), else on a thread of its
    own. The orders are the same either way. :meth:`close` abandons a draw
    still running when training stops.
    """

    def __init__(
        self,
        seed: int,
        n: int,
        shuffle: bool,
        stop: int,
        *,
        prefetch: bool = True,
        worker: HostWorker | None = None,
    ) -> None:
        self.seed, self.n, self.shuffle, self.stop = seed, n, shuffle, stop
        self._prefetch = prefetch and shuffle and n >= PREFETCH_MIN_EXAMPLES
        self._own_worker = worker is None
        self._worker: HostWorker | None = worker
        self._pending: tuple[int, Any] | None = None

    def take(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s order (0-based); starts drawing the next one when prefetching."""
        pending, self._pending = self._pending, None
        order = pending[1].result() if pending is not None and pending[0] == epoch else None
        if order is None:
            order = epoch_order(self.seed, epoch, self.n, self.shuffle)
        if self._prefetch and epoch + 1 < self.stop:
            if self._worker is None:
                from polylin.host_worker import HostWorker

                self._worker = HostWorker()
            future = self._worker.submit(epoch_order, self.seed, epoch + 1, self.n, self.shuffle)
            self._pending = (epoch + 1, future)
        return order

    def close(self) -> None:
        if self._own_worker and self._worker is not None:
            self._worker.close()
