"""The full-data loss of a fit on a CPU, evaluated by NumPy in the memory the framework trains on.

The loss after each epoch, ``mean(l(X w + b − y))``, is one matrix-vector
product over all of ``X``. On a CPU some frameworks' products are much slower
than NumPy's: on 10⁶ × 100 float32 (2 cores) ``X @ w`` took 25-26 ms in torch
(one thread, whatever ``torch.set_num_threads`` says) and MXNet's whole loss
about 46 ms, where NumPy's BLAS takes 14 ms on one thread. Where a backend's
arrays live in host memory that NumPy can read in place (:meth:`Backend.host_view
<polylin.backends.base.Backend.host_view>`: torch's CPU tensors through
``Tensor.numpy``, MXNet's CPU arrays through DLPack, never a copy), and ``X``
is large enough for the product to dominate, the training loop ends each epoch
with the parameters' finiteness (as for an epoch whose loss is not evaluated)
and evaluates the loss itself: the same :class:`~polylin.objective.Objective`
code on NumPy's namespace, from the parameters it copies to the host after
every epoch anyway, in the fit's dtype, on one BLAS thread. The parameters are
the same bit for bit; the losses agree to the rounding of another summation
order.

JAX has no view here: XLA's CPU product takes about 13 ms, as fast as NumPy's
on one thread, and NumPy's on every core (7-8 ms) did not make JAX fits
faster, since OpenBLAS's worker threads spin for a while after each product
and kept both cores busy (process CPU time / wall time 1.99 against 1.58)
beside the next compiled epoch (``docs/reports.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from polylin.objective import Objective

#: From this many bytes of ``X`` on, the loss is evaluated by NumPy. Whole 3-epoch fits (batch 1024,
#: 10 alternated pairs, 2 cores) took 0.89-0.92 times as long with 100 features from 38 MiB up
#: (torch and MXNet; 0.86-0.88 on 10⁶ × 100), 0.97-1.03 with 20 features at 15-76 MiB, whose
#: steps cost more than the loss, and 1.04-1.05 on torch at 0.4-3.8 MiB, where NumPy's calls and
#: the thread limit cost more than the product saves.
HOST_LOSS_MIN_BYTES = 16 << 20

#: ``(w, b) -> loss`` on host arrays.
HostLoss = Callable[[np.ndarray, np.ndarray], float]


def host_loss(backend: Any, objective: Objective, X: Any, y: Any) -> HostLoss | None:
    """``objective.mean`` evaluated by NumPy on ``backend``'s in-place views of ``X`` and ``y``;
    ``None`` where the backend's ``host_loss`` setting is off, ``X`` is smaller than its
    ``host_loss_min_bytes``, or it has no view of them (another device, data spread over devices)."""
    # X is in the fit's dtype: its size needs no view (an MXNet view waits for the array's writers).
    size = math.prod(int(n) for n in X.shape) * backend.np_dtype.itemsize
    if not backend.host_loss or size < backend.host_loss_min_bytes:
        return None
    X_host, y_host = backend.host_view(X), backend.host_view(y)
    if X_host is None or y_host is None:
        return None
    on_host = on_numpy(objective)
    dtype = backend.np_dtype
    # One thread: OpenBLAS's worker threads spin for a while after a product, and on every core
    # they slowed torch's next epoch by more than the loss gained (whole fit 1.05× against 0.86×).
    one_thread = blas_threads()

    def evaluate(w: np.ndarray, b: np.ndarray) -> float:
        params = w.astype(dtype, copy=False), b.astype(dtype, copy=False)
        with one_thread.limit(limits=1, user_api="blas"), np.errstate(over="ignore", invalid="ignore"):
            return float(on_host.mean(params, X_host, y_host))  # a diverged fit's loss is inf or NaN

    return evaluate


@functools.cache
def blas_threads() -> Any:
    """One threadpoolctl controller, made once: making one scans the loaded libraries (~0.4 ms)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.lru_cache(maxsize=16)
def on_numpy(objective: Objective) -> Objective:
    """``objective`` on NumPy (array-api-compat's namespace): the same loss, the same intercept.
    The fit's loss before training uses it too."""
    import array_api_compat.numpy as host_xp

    return dataclasses.replace(objective, xp=host_xp)


def read_only(view: np.ndarray, pointer: int) -> np.ndarray | None:
    """``view`` marked read-only, if it starts at ``pointer`` (the framework's buffer); else ``None``:
    a view that is not the framework's memory would not be the data trained on."""
    if view.__array_interface__["data"][0] != pointer:
        return None
    view.flags.writeable = False
    return view
