"""Where, within a diverged epoch, the first non-finite value appeared.

The training loop sees a non-finite loss only at the end of an epoch. To
name the step, this replays that epoch from its first parameters with the
loop's own steps (:func:`polylin.backends.base.run_steps`), watching each
step through its callback. It runs only after a fit has diverged.
"""

from __future__ import annotations

import math

import numpy as np

from polylin.backends.base import Backend, run_steps
from polylin.batching import BatchLayout, batch_bounds
from polylin.objective import Objective
from polylin.types import Array, Params, StepFn

#: The replay evaluates the full-data loss after every step while that costs at most this many
#: (example × feature) products in all, else after every k-th step, k chosen to keep within
#: it, and then bisects the one stretch of k steps in which the loss went non-finite.
SCAN_BUDGET = 1 << 27

Host = tuple[np.ndarray, np.ndarray]


class _FoundError(Exception):
    def __init__(self, step: int) -> None:
        self.step = step


def locate_divergence(
    backend: Backend,
    step: StepFn,
    grad: str,
    objective: Objective,
    X: Array,
    y: Array,
    start: Host,
    order: np.ndarray,
    layout: BatchLayout,
) -> int:
    """The first step (1-based) of the epoch after which a parameter or the full-data loss is
    non-finite, replaying the epoch from the host parameters ``start`` it began with.

    Exact when every step can be checked (see :data:`SCAN_BUDGET`); otherwise exact as long as
    the loss, once non-finite, stays so within a stretch of k steps.
    """
    bounds = batch_bounds(layout.n_examples, layout.batch_size)
    device_order = backend.asarray(order)
    evaluation_cost = max(1, layout.n_examples * int(X.shape[1]))
    stride = max(1, -(-len(bounds) * evaluation_cost // SCAN_BUDGET))

    def replay(host: Host, first: int, last: int, check_every: int) -> tuple[int | None, int, Host]:
        """Steps ``first..last``: (first bad step or None, last good checked step, its parameters)."""
        good: list[tuple[int, Host]] = [(first - 1, host)]

        def watch(count: int, params: Params) -> None:
            count += first - 1
            current = (np.array(backend.to_numpy(params[0])), np.array(backend.to_numpy(params[1])))
            if not (np.isfinite(current[0]).all() and np.isfinite(current[1]).all()):
                raise _FoundError(count)
            if count % check_every == 0 or count == last:
                if not math.isfinite(float(backend.to_numpy(objective.mean(params, X, y)))):
                    raise _FoundError(count)
                good[0] = (count, current)

        params = backend.parameters(*host, trainable=grad == "autodiff")
        try:
            run_steps(step, params, X, y, device_order, bounds[first - 1 : last], watch)
        except _FoundError as found:
            return found.step, *good[0]
        return None, *good[0]

    bad, good_step, good = replay(start, 1, len(bounds), stride)
    if bad is None:  # the replay stayed finite (a compiled epoch can round differently)
        return len(bounds)
    while bad - good_step > 1:  # bisect the stretch (good_step, bad]
        middle = (good_step + bad) // 2
        found, reached, there = replay(good, good_step + 1, middle, middle)
        if found is None:
            good_step, good = reached, there
        else:
            bad = found
    return bad
