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

import numpy as np

_DATA_STREAM = 0
_INIT_STREAM = 1
_ORDER_STREAM = 2

INIT_SCHEMES = ("normal", "zeros")


def data_generator(seed: int) -> np.random.Generator:
    """The generator that draws synthetic data for ``seed``."""
    return np.random.default_rng([seed, _DATA_STREAM])


def initial_parameters(
    seed: int, n_features: int, init: str = "normal", scale: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Initial ``(w, b)`` in float64: ``w ~ N(0, scale²)`` (or zeros) and ``b = 0``.

    ``b`` has shape ``(1,)`` so that every backend can hold it as an ordinary array.
    """
    if init == "zeros":
        w = np.zeros(n_features)
    elif init == "normal":
        w = np.random.default_rng([seed, _INIT_STREAM]).normal(0.0, scale, n_features)
    else:
        raise ValueError(f"init={init!r} is not a known initialisation; use one of {INIT_SCHEMES}.")
    return w, np.zeros(1)


def order_generator(seed: int, epoch: int) -> np.random.Generator:
    """The generator that draws 0-based ``epoch``'s example order for ``seed``."""
    return np.random.default_rng([seed, _ORDER_STREAM, epoch])


def epoch_order(seed: int, epoch: int, n: int, shuffle: bool = True) -> np.ndarray:
    """The order in which examples are visited in 0-based ``epoch`` (int64 indices)."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return order_generator(seed, epoch).permutation(n).astype(np.int64, copy=False)
