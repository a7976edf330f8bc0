"""How an epoch is cut into minibatches."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchLayout:
    """The shape of every epoch: ``n_full`` batches of ``batch_size``, then one of ``tail`` (maybe 0).

    The last partial batch is kept, never dropped or padded; every step's
    gradient is the mean over the examples actually in its batch.
    """

    n_examples: int
    batch_size: int

    @property
    def n_full(self) -> int:
        return self.n_examples // self.batch_size

    @property
    def tail(self) -> int:
        return self.n_examples - self.n_full * self.batch_size

    @property
    def steps_per_epoch(self) -> int:
        return self.n_full + (1 if self.tail else 0)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` slices of one epoch, the last one possibly short."""
    return [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
