"""The full-data loss of a fit on a CPU, evaluated by NumPy in the memory the framework trains on.

The loss after each epoch, ``mean(l(X w + b − y))``, is one matrix-vector
product over all of ``X``. Where a backend's arrays live in host memory that
NumPy can read in place (:meth:`Backend.host_view
<polylin.backends.base.Backend.host_view>`: NumPy's own arrays, JAX's CPU
buffers, torch's CPU tensors through ``Tensor.numpy``, MXNet's CPU arrays
through DLPack, never a copy), and ``X`` is large enough for the product to
dominate, the training loop ends each epoch with the parameters' finiteness (as
for an epoch whose loss is not evaluated) and evaluates the loss itself: the
same :class:`~polylin.objective.Objective` code on NumPy's namespace, from the
parameters it copies to the host after every epoch anyway, in the fit's dtype,
on one BLAS thread. The parameters are the same bit for bit; the losses agree
to the rounding of another summation order.

Two things make that faster than the framework's own loss:

* **Beside the next epoch** (NumPy and JAX, :attr:`Backend.overlaps_host_loss
  <polylin.backends.base.Backend.overlaps_host_loss>`). The loss after epoch
  ``e`` and the steps of epoch ``e + 1`` both start from the parameters after
  ``e``, so neither waits for the other: the loss runs on the loop's host worker
  (:class:`~polylin.host_worker.HostWorker`) while the loop runs the next epoch,
  and the loop reads it when that epoch's steps are done; ``on_epoch`` then
  hears of epoch ``e`` after the steps of ``e + 1``. NumPy's steps run on one
  BLAS thread and XLA's compiled scan on about one core, so the other core is
  free for it. Whole fits of 10⁶ × 100 float32 (2 cores, 3 epochs) took 0.865
  (JAX) and 0.906 (NumPy) times as long as with the same loss in line (8 of 8
  alternated pairs each). Their threshold is :data:`BESIDE_MIN_BYTES`: their
  own loss is NumPy's, or as fast, so in line it would gain nothing.
* **A faster product, in line** (torch and MXNet, from
  :data:`HOST_LOSS_MIN_BYTES`). torch's ``X @ w`` on a CPU runs on one thread
  whatever ``torch.set_num_threads`` says (25-26 ms on 10⁶ × 100 float32) and
  MXNet's whole loss took about 46 ms, where NumPy's BLAS takes 14 ms on one
  thread. torch's epochs keep both cores busy, and beside MXNet's engine threads
  whole fits took 1.03 times as long as in line, so their loss runs between
  epochs.
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
#: From this many bytes of ``X`` on, the loss runs beside the next epoch on NumPy's and JAX's
#: backends, whose gain is only there (their own loss is NumPy's, or as fast). Whole 3-epoch fits
#: (batch 1024, 8-12 alternated pairs, 2 cores), NumPy's loss beside over the framework's in line:
#: JAX 0.93-0.96 at 76 MiB (10⁶ × 20, 4·10⁵ × 50), 0.82-0.87 from 229 MiB up, 0.92 and 1.00 at
#: 69-95 MiB of 100 features, 0.99 at 153 MiB (4·10⁵ × 100), but 1.02-1.09 at 38 MiB and
#: 1.11-1.16 at 17 MiB of 100 features; NumPy 0.93-0.97 at 69-76 MiB of 20 features, 0.91 from
#: 153 MiB up, 0.97-1.04 at 69-95 MiB of 100 features and 1.06-1.08 at 17 MiB.
BESIDE_MIN_BYTES = 64 << 20

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


def numpy_view(array: Any) -> np.ndarray | None:
    """A read-only view of a NumPy array (its caller's flags untouched); ``None`` for anything else."""
    if not isinstance(array, np.ndarray):
        return None
    return read_only(array.view(), array.__array_interface__["data"][0])


def read_only(view: np.ndarray, pointer: int) -> np.ndarray | None:
    """``view`` marked read-only, if it starts at ``pointer`` (the framework's buffer); else ``None``:
    a view that is not the framework's memory would not be the data trained on."""
    if view.__array_interface__["data"][0] != pointer:
        return None
    view.flags.writeable = False
    return view
