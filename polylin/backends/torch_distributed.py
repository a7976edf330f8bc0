"""PyTorch data parallelism, ``fit(backend="torch", workers=k)``: one rank of a ``torch.distributed`` group.

Every rank holds the whole data set and runs the one training loop with the
same global batches (the same seed, hence the same order). For each batch of
``m`` rows, rank ``r`` takes its share of them (the rows split as evenly as
possible: ``m // k`` each, one more for the first ``m % k`` ranks, so a short
last batch splits unevenly), computes the gradient of its share's *summed*
loss, and one ``all_reduce(SUM)`` of the ``d + 1`` numbers ``(∇w, ∇b)`` gives
every rank the gradient of the whole batch's summed loss. Every rank then
applies the same update, ``lr / m`` times it: the one-process step. The loss
after each epoch is the full-data loss, an all-reduced sum of each rank's
share of the rows divided by ``n``; the parameters are broadcast from rank 0
after each epoch, so that every rank ends with rank 0's result.

The group is gloo on the CPU and nccl on GPUs (each rank on GPU ``LOCAL_RANK``).
It is joined from the environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
``MASTER_PORT``) that ``torchrun`` sets, or that :mod:`polylin.distributed`
sets for the processes it starts itself. A collective that waits longer than
the timeout (``POLYLIN_WORKER_TIMEOUT`` seconds, default 60) fails with a
:class:`~polylin.distributed.WorkerError` instead of hanging.
"""

from __future__ import annotations

import atexit
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from polylin.backends.torch_backend import TorchBackend
from polylin.batching import BatchLayout, batch_bounds
from polylin.devices import DeviceSpec

if TYPE_CHECKING:
    from polylin.validation import Probe
from polylin.types import Array, EpochFn, LossFn, Params, StepFn

#: A private test hook: ``"RANK:KIND:EPOCH:STEP"`` makes rank RANK exit (KIND ``exit``) or hang
#: (``hang``) just before the all-reduce of step STEP of the EPOCH-th epoch this process runs.
FAULT_ENV = "_POLYLIN_TEST_WORKER_FAULT"


def shares(m: int, k: int) -> list[tuple[int, int]]:
    """``[(lo, hi), ...]`` for each of ``k`` ranks: ``m`` rows split as evenly as possible."""
    base, extra = divmod(m, k)
    bounds, lo = [], 0
    for rank in range(k):
        hi = lo + base + (1 if rank < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def _close_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _fault_for(rank: int) -> tuple[str, int, int] | None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec:
        return None
    fault_rank, kind, epoch, step = spec.split(":")
    return (kind, int(epoch), int(step)) if int(fault_rank) == rank else None


#: Whether the last epoch's broadcast carried rank 0's request to stop (read by the worker's
#: ``on_epoch``, which then interrupts its fit as Ctrl-C would).
_STOP = {"requested": False}


def stop_requested() -> bool:
    return _STOP["requested"]


class DistributedTorchBackend(TorchBackend):
    """:class:`TorchBackend` on one rank of a process group; the steps all-reduce their gradients."""

    def __init__(self, dtype: object = "float32", device: object = None, *, host_loss: bool = True) -> None:
        import torch.distributed as dist

        from polylin.distributed import STOP_FILE_ENV, worker_timeout

        self._dist = dist
        self.timeout = worker_timeout()
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        super().__init__(dtype, device, host_loss=host_loss)  # no host view: the ranks split the loss
        if not dist.is_initialized():
            dist.init_process_group(
                backend="nccl" if self.device.type == "cuda" else "gloo",
                init_method="env://",
                timeout=timedelta(seconds=self.timeout),
            )
            # The group polylin made is polylin's to close: left open at exit, gloo's threads abort
            # the interpreter ("terminate called without an active exception").
            atexit.register(_close_group)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self._fault = _fault_for(self.rank)
        stop_file = os.environ.get(STOP_FILE_ENV)
        self._stop_file = None if stop_file is None else Path(stop_file)

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        if spec.kind == "gpu" and spec.index == 0:  # one GPU per rank: this rank's own
            spec = DeviceSpec("gpu", self.local_rank)
        return super()._resolve_device(spec)

    def _identity(self) -> tuple[Any, ...]:
        return (*super()._identity(), "distributed")

    @property
    def device_name(self) -> str:
        engine = "nccl" if self.device.type == "cuda" else "gloo"
        return f"{self.device} (torch.distributed {engine}, {self.world_size} ranks)"

    def _all_reduce(self, tensor: Array, what: str) -> None:
        from polylin.distributed import WorkerError, report_arrival

        report_arrival()
        try:
            self._dist.all_reduce(tensor, op=self._dist.ReduceOp.SUM)
        except RuntimeError as exc:
            raise WorkerError(
                f"torch worker rank {self.rank} of {self.world_size}: the all-reduce of {what} failed "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); another worker died, "
                f"or hangs longer than the {self.timeout:g} s timeout (POLYLIN_WORKER_TIMEOUT)."
            ) from exc

    def _inject_fault(self, epoch: int, step: int) -> None:
        if self._fault is None or self._fault[1:] != (epoch, step):
            return
        if self._fault[0] == "exit":
            os._exit(17)
        time.sleep(10**6)

    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        """The epoch of :class:`polylin.training.SGDStep` ``step`` with its gradients all-reduced.

        Recognises the step by its fields (``objective``, ``gradient``, ``lr``), as
        :func:`polylin.backends.torch_backend._fused_step` does, and runs the same
        arithmetic with one all-reduce of ``d + 1`` numbers between gradient and update.
        The full-data loss (``loss`` is the objective's mean) is split by rows over the
        ranks and all-reduced; any other ``loss`` reads no data (the finiteness of an epoch
        whose loss is not evaluated, a streamed segment's none), and each rank evaluates it
        alone, after the broadcast, with no collective.
        """
        torch, dist = self._torch, self._dist
        objective, gradient, lr = step.objective, step.gradient, step.lr  # type: ignore[attr-defined]
        full_data_loss = loss == objective.mean
        rank, k = self.rank, self.world_size
        n, d = int(X.shape[0]), int(X.shape[1])
        plan = []
        for start, stop in batch_bounds(layout.n_examples, layout.batch_size):
            lo, hi = shares(stop - start, k)[rank]
            plan.append((start + lo, start + hi, stop - start))
        row_lo, row_hi = shares(n, k)[rank]
        buffer = torch.zeros(d + 1, dtype=self.torch_dtype, device=self.device)
        epochs_run = 0

        def run_epoch(params: Params, host_order: np.ndarray) -> tuple[Params, Array]:
            nonlocal epochs_run
            epochs_run += 1
            order = self.asarray(host_order)
            for count, (lo, hi, m) in enumerate(plan, start=1):
                idx = order[lo:hi]
                X_share, y_share = self.xp.take(X, idx, axis=0), self.xp.take(y, idx, axis=0)
                grad_w, grad_b = gradient(params, X_share, y_share)
                with torch.no_grad():
                    buffer[:d].copy_(grad_w)
                    buffer[d:].copy_(grad_b.reshape(-1))
                if self._fault is not None:
                    self._inject_fault(epochs_run, count)
                self._all_reduce(buffer, f"step {count} of epoch {epochs_run}")
                params = self.update(params, (buffer[:d], buffer[d:]), lr / m)
            with torch.no_grad():
                if full_data_loss:
                    total = objective.total(params, X[row_lo:row_hi], y[row_lo:row_hi]).reshape(1)
                    self._all_reduce(total, f"the loss after epoch {epochs_run}")
                # Rank 0's parameters, and its word on whether to stop (the launcher's Ctrl-C), in
                # one broadcast: every rank stops after the same epoch.
                stop = torch.tensor([float(self._stop_asked())], dtype=buffer.dtype, device=buffer.device)
                flat = torch.cat([params[0].detach().reshape(-1), params[1].detach().reshape(-1), stop])
                dist.broadcast(flat, src=0)
                params[0].copy_(flat[:d])
                params[1].copy_(flat[d : d + 1])
                _STOP["requested"] = bool(flat[d + 1] > 0)
                return params, total[0] / n if full_data_loss else loss(params, X, y)

        return run_epoch

    def _stop_asked(self) -> bool:
        return self.rank == 0 and self._stop_file is not None and self._stop_file.exists()

    def check_same_data(self, X_host: Any, y_host: Any) -> None:
        """Fail on every rank when the ranks were given different data (compared by fingerprint)."""
        from polylin.resume import data_fingerprint

        mine = (tuple(X_host.shape), data_fingerprint(X_host, y_host, self.np_dtype))
        everyone: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(everyone, mine)
        if any(other != everyone[0] for other in everyone):
            raise ValueError(
                f"workers={self.world_size}: the ranks were given different data ({everyone}); under "
                "torchrun every rank must pass the same X and y (load or generate them the same way)."
            )

    def holds(self, x: Any) -> bool:
        return False  # every rank checks the same host data (check_same_data)

    def host_view(self, array: Array) -> np.ndarray | None:
        return None  # the loss is split over the ranks and all-reduced (epoch_runner)

    def training_data(self, X: Any, y: Any, probe: Probe | None = None) -> tuple[Any, Any]:
        X_host, y_host = super().training_data(X, y, probe)
        self.check_same_data(X_host, y_host)
        return X_host, y_host
