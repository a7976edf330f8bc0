"""``fit(..., workers=k)``: which engine runs the k workers, and the processes polylin starts itself.

* ``backend="jax"``: one process, k devices, :mod:`polylin.backends.jax_sharding`.
  On the CPU the devices are XLA host devices; :func:`plan_workers` sets
  ``XLA_FLAGS=--xla_force_host_platform_device_count=k`` when jax is not yet
  imported (the flag is read once, when jax starts).
* ``backend="torch"``: k processes in a ``torch.distributed`` group
  (:mod:`polylin.backends.torch_distributed`). Under ``torchrun`` (``RANK``,
  ``WORLD_SIZE``, ``LOCAL_RANK`` and ``MASTER_ADDR`` set) the fit joins that
  group and starts nothing; otherwise :func:`launch_torch_workers` starts k
  fresh Python processes (``python -m polylin.distributed``, so a script needs
  no ``if __name__ == "__main__"`` guard) on a free localhost port, hands them
  the validated data as memory-mapped ``.npy`` files, relays rank 0's epochs
  to ``on_epoch``, and returns rank 0's result.

Faults end the fit with :class:`WorkerError` within a bounded time: a worker
that exits, one whose all-reduce waits longer than ``POLYLIN_WORKER_TIMEOUT``
seconds (default 60), and workers that do not start within
``POLYLIN_WORKER_START_TIMEOUT`` seconds (default 180, as importing torch on a
busy machine is slow). The launcher names the rank and what happened.
"""

from __future__ import annotations

import os
import pickle
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection, Listener, wait
from pathlib import Path
from typing import Any

import numpy as np

from polylin.errors import PolylinError

#: Set by :func:`launch_torch_workers` for its ranks: a file whose existence asks them to stop
#: after the current epoch, as a Ctrl-C does in one process (rank 0 reads it, and tells the others).
STOP_FILE_ENV = "POLYLIN_STOP_FILE"

WORKER_BACKENDS = ("jax", "torch")
TIMEOUT_ENV = "POLYLIN_WORKER_TIMEOUT"
START_TIMEOUT_ENV = "POLYLIN_WORKER_START_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
DEFAULT_START_TIMEOUT = 180.0
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")
_LINK_ENV = "_POLYLIN_WORKER_LINK"  # set only in the processes the launcher starts
_POLL_SECONDS = 0.2
_GRACE_SECONDS = 3.0


class WorkerError(RuntimeError, PolylinError):
    """A worker of a ``workers=k`` fit died, hung, or failed; the message names the rank."""


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{variable}={text!r} must be a positive number of seconds (default {default:g}).")
    return value


def worker_timeout() -> float:
    """How long a worker may wait for the others in one collective (``POLYLIN_WORKER_TIMEOUT``)."""
    return _seconds(TIMEOUT_ENV, DEFAULT_TIMEOUT)


def check_workers(workers: object) -> int:
    """``workers`` as an int >= 1, or a clear error."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(
            f"workers={workers!r} must be a whole number >= 1: the number of devices (jax) or "
            "processes (torch) to split each batch over; workers=1 (the default) is one process."
        )
    return int(workers)


def torchrun_environment() -> dict[str, str] | None:
    """The rendezvous variables when this process is a rank started by ``torchrun`` (or by polylin)."""
    if all(os.environ.get(name) for name in TORCHRUN_VARIABLES):
        return {name: os.environ[name] for name in (*TORCHRUN_VARIABLES, "MASTER_PORT") if name in os.environ}
    return None


@dataclass(frozen=True)
class WorkerPlan:
    """How a fit with ``workers`` runs: plainly, on a parallel backend class, or by spawning."""

    workers: int
    backend_class: type | None = None
    backend_options: dict[str, Any] = field(default_factory=dict)
    spawn: bool = False


def plan_workers(backend: object, workers: object, device: object = None) -> WorkerPlan:
    """Check ``workers`` for ``backend`` and choose the engine; call before the backend is imported.

    For ``jax`` on the CPU with jax not yet imported, this is where ``XLA_FLAGS``
    gets the host-device count.
    """
    count = check_workers(workers)
    if count == 1:
        _warn_if_one_of_many_ranks(backend)
        return WorkerPlan(1)
    if backend not in WORKER_BACKENDS:
        raise ValueError(
            f"workers={count} is not available on the {backend} backend: data parallelism runs on "
            f"{' and '.join(repr(name) for name in WORKER_BACKENDS)} (jax.sharding over devices, "
            "torch.distributed over processes). Use backend='jax' or backend='torch', or workers=1."
        )
    if backend == "jax":
        from polylin.devices import DeviceSpec

        if DeviceSpec.parse(device).kind == "cpu":
            request_host_devices(count + DeviceSpec.parse(device).index)
        from polylin.backends.jax_sharding import ShardedJaxBackend

        return WorkerPlan(count, ShardedJaxBackend, {"workers": count})
    group = torchrun_environment()
    if group is None:
        return WorkerPlan(count, spawn=True)
    world = int(group["WORLD_SIZE"])
    if world != count:
        raise ValueError(
            f"workers={count}, but this process is one of WORLD_SIZE={world} ranks (torchrun): pass "
            f"workers={world}, or start torchrun with --nproc_per_node={count}."
        )
    from polylin.backends.torch_distributed import DistributedTorchBackend

    return WorkerPlan(count, DistributedTorchBackend)


def _warn_if_one_of_many_ranks(backend: object) -> None:
    """``workers=1`` in a rank of a larger ``torchrun`` group: each rank fits alone, the whole data."""
    group = torchrun_environment()
    world = 1 if group is None else int(group["WORLD_SIZE"])
    if backend == "torch" and world > 1:
        warnings.warn(
            f"workers=1, but this process is one of WORLD_SIZE={world} ranks (torchrun): every rank "
            f"runs the whole one-process fit on its own, repeating the others' work. Pass workers={world} "
            "to split each batch over the ranks.",
            UserWarning,
            stacklevel=4,
        )


def request_host_devices(count: int) -> bool:
    """Ask XLA for ``count`` CPU host devices, if jax is not imported yet; whether the flag was set.

    An existing, larger count is kept; a smaller one is raised. Once jax is
    imported the flag is fixed, and :class:`ShardedJaxBackend` reports too few devices.
    """
    if "jax" in sys.modules:
        return False
    from polylin.backends.jax_sharding import HOST_DEVICE_FLAG

    kept, current = [], 1
    for flag in os.environ.get("XLA_FLAGS", "").split():
        if flag.startswith(HOST_DEVICE_FLAG + "="):
            current = int(flag.partition("=")[2] or 1)
        else:
            kept.append(flag)
    os.environ["XLA_FLAGS"] = " ".join([*kept, f"{HOST_DEVICE_FLAG}={max(current, count)}"])
    return True


# -- the processes polylin starts itself (torch) ------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class _Worker:
    rank: int
    process: subprocess.Popen[bytes]
    log: Path
    connection: Connection | None = None
    finished: bool = False

    def tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


class _Arrivals:
    """One counter per rank in a shared file: how many all-reduces the rank has entered."""

    def __init__(self, path: Path, world: int, *, create: bool) -> None:
        mode: Any = "w+" if create else "r+"
        self.counts: Any = np.memmap(str(path), dtype=np.int64, mode=mode, shape=(world,))

    def snapshot(self) -> tuple[int, ...]:
        return tuple(int(c) for c in self.counts)


_ARRIVALS: _Arrivals | None = None
_RANK = 0


def report_arrival() -> None:
    """Count one all-reduce entered by this rank, for the launcher's hang detection (no-op otherwise)."""
    if _ARRIVALS is not None:
        _ARRIVALS.counts[_RANK] += 1


def launch_torch_workers(
    workers: int,
    X_host: np.ndarray,
    y_host: np.ndarray,
    fit_kwargs: dict[str, Any],
    on_epoch: Callable[[int, float, float], None] | None,
) -> Any:
    """Run ``fit(X_host, y_host, backend="torch", workers=workers, **fit_kwargs)`` on ``workers`` fresh
    processes and return rank 0's :class:`~polylin.FitResult`; raise :class:`WorkerError` on a fault."""
    timeout, start_timeout = worker_timeout(), _seconds(START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT)
    from polylin import handoff

    with tempfile.TemporaryDirectory(prefix="polylin-workers-") as scratch:
        folder = Path(scratch)
        data = {"X": handoff.describe("X", X_host, folder), "y": handoff.describe("y", y_host, folder)}
        arrivals = _Arrivals(folder / "arrivals.bin", workers, create=True)
        authkey = secrets.token_bytes(16)
        with Listener(("127.0.0.1", 0), authkey=authkey) as listener:
            job = {"folder": str(folder), "kwargs": fit_kwargs, "workers": workers, "data": data}
            (folder / "job.pkl").write_bytes(pickle.dumps(job))
            port = _free_port()
            processes = [
                _start(rank, workers, port, folder, listener.address, authkey) for rank in range(workers)
            ]
            try:
                _accept(listener, processes, start_timeout)
                result, caught = _supervise(
                    processes, arrivals, on_epoch, timeout, start_timeout, stop_file=folder / "stop"
                )
            finally:
                _stop(processes)
    rethrow_warnings(caught)
    return result


def _start(rank: int, world: int, port: int, folder: Path, address: Any, authkey: bytes) -> _Worker:
    source_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env.update({
        "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world))),
        "PYTHONPATH": os.pathsep.join([source_root, *filter(None, [env.get("PYTHONPATH")])]),
        _LINK_ENV: f"{address[0]}:{address[1]}:{authkey.hex()}:{folder}",
        STOP_FILE_ENV: str(folder / "stop"),
    })  # fmt: skip
    log = folder / f"rank{rank}.log"
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "polylin.distributed"], env=env, stdout=sink, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    return _Worker(rank, process, log)


def _exit_description(worker: _Worker) -> str:
    code = worker.process.returncode
    what = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
    tail = worker.tail()
    return f"torch worker rank {worker.rank} (pid {worker.process.pid}) {what}" + (
        f"; its last output:\n{tail}" if tail else ""
    )


def _accept(listener: Listener, workers: list[_Worker], start_timeout: float) -> None:
    """Wait for every worker to connect and say which rank it is, or fail within ``start_timeout``."""
    deadline = time.monotonic() + start_timeout
    listener._listener._socket.settimeout(_POLL_SECONDS)  # type: ignore[attr-defined]
    by_rank = {worker.rank: worker for worker in workers}
    while any(worker.connection is None for worker in workers):
        for worker in workers:
            if worker.connection is None and worker.process.poll() is not None:
                raise WorkerError(_exit_description(worker) + "\nbefore it joined the fit.")
        if time.monotonic() > deadline:
            late = [w.rank for w in workers if w.connection is None]
            raise WorkerError(
                f"torch worker rank(s) {late} did not start within {start_timeout:g} s "
                f"({START_TIMEOUT_ENV}); the machine may be overloaded."
            )
        try:
            connection = listener.accept()
        except TimeoutError:
            continue
        rank = int(connection.recv())
        by_rank[rank].connection = connection


def _supervise(
    workers: list[_Worker],
    arrivals: _Arrivals,
    on_epoch: Callable[[int, float, float], None] | None,
    timeout: float,
    start_timeout: float,
    stop_file: Path,
) -> Any:
    """Relay rank 0's epochs; return its result once every rank is done; raise on the first fault.

    The hang clock runs from the last all-reduce any rank entered; before the first
    one (torch still importing, the group forming) the start-up timeout applies.
    A Ctrl-C asks the ranks to stop after the epoch they are in (``stop_file``, which
    rank 0 passes on to all in the epoch's broadcast), and rank 0's result then has
    ``interrupted=True``, as in one process; a second Ctrl-C stops them at once."""
    state = _Supervision(seen=arrivals.snapshot(), last_change=time.monotonic())
    while not all(w.finished for w in workers) and not (stop_file.exists() and state.result is not None):
        try:
            _supervise_once(workers, arrivals, on_epoch, timeout, start_timeout, state)
        except KeyboardInterrupt:
            if stop_file.exists():
                raise
            stop_file.touch()
    return state.result


@dataclass
class _Supervision:
    """What :func:`_supervise` knows between polls: rank 0's result (once sent), the arrivals last
    seen and when they last changed. Updated in place, so that a Ctrl-C loses none of it."""

    seen: Any
    last_change: float
    result: Any = None


def _supervise_once(
    workers: list[_Worker],
    arrivals: _Arrivals,
    on_epoch: Callable[[int, float, float], None] | None,
    timeout: float,
    start_timeout: float,
    state: _Supervision,
) -> None:
    """One poll of :func:`_supervise`."""
    failure: tuple[int, Any] | None = None
    by_connection: dict[Any, _Worker] = {worker.connection: worker for worker in workers}
    ready = wait([w.connection for w in workers if not w.finished and w.connection], _POLL_SECONDS)
    for connection in ready:
        worker = by_connection[connection]
        try:
            kind, payload = worker.connection.recv()  # type: ignore[union-attr]
        except (EOFError, OSError):
            worker.finished = True
            worker.process.wait(timeout=_GRACE_SECONDS * 3)
            if failure is None:
                raise WorkerError(_exit_description(worker) + "\nbefore the fit finished.") from None
            continue
        state.last_change = time.monotonic()
        if kind == "epoch" and on_epoch is not None:
            epoch, loss, seconds = payload
            on_epoch(epoch, loss, seconds)
        elif kind == "result":
            worker.finished = True
            if worker.rank == 0:
                state.result = payload
        elif kind == "diverged":
            worker.finished = True
            if worker.rank == 0:
                failure = (0, payload)
        elif kind == "error":
            worker.finished = True
            failure = failure or (worker.rank, payload)
    if failure is not None:
        _raise_failure(workers, failure, arrivals, timeout)
    now = time.monotonic()
    current = arrivals.snapshot()
    if current != state.seen:
        state.seen, state.last_change = current, now
    elif any(current) and now - state.last_change > timeout:
        _raise_hang(workers, current, timeout)
    elif not any(current) and now - state.last_change > start_timeout:
        raise WorkerError(
            f"the torch workers started but none reached its first all-reduce within {start_timeout:g} s "
            f"({START_TIMEOUT_ENV}): importing torch, reading the data or forming the process group took "
            f"longer. Raise {START_TIMEOUT_ENV} on a busy machine. The workers were stopped."
        )


def _raise_failure(
    workers: list[_Worker], failure: tuple[int, Any], arrivals: _Arrivals, timeout: float
) -> None:
    """A rank reported an exception: prefer a rank that died, or one that hangs behind the others (the
    cause), over the ranks it left waiting in a collective."""
    deadline = time.monotonic() + _GRACE_SECONDS
    while time.monotonic() < deadline:
        dead = [w for w in workers if w.process.poll() not in (None, 0) and w.rank != failure[0]]
        crashed = [w for w in dead if w.process.returncode not in (None, 0, 1)]
        if crashed:
            raise WorkerError(_exit_description(crashed[0]) + "\nbefore the fit finished.")
        time.sleep(_POLL_SECONDS)
    rank, payload = failure
    counts = arrivals.snapshot()
    if isinstance(payload, bytes) and len(set(counts)) > 1:
        _raise_hang(workers, counts, timeout)
    if isinstance(payload, dict):  # a DivergenceError, rebuilt with its attributes
        from polylin.errors import DivergenceError

        raise DivergenceError(payload.pop("message"), **payload)
    try:
        error = pickle.loads(payload)
    except Exception:
        error = None
    if isinstance(error, BaseException):
        raise error
    raise WorkerError(f"torch worker rank {rank} failed: {payload!r}")


def _raise_hang(workers: list[_Worker], counts: tuple[int, ...], timeout: float) -> None:
    behind = [rank for rank, count in enumerate(counts) if count == min(counts)]
    if len(behind) < len(counts):
        waiting = [rank for rank in range(len(counts)) if rank not in behind]
        raise WorkerError(
            f"torch worker rank(s) {behind} stopped responding: no progress for {timeout:g} s "
            f"({TIMEOUT_ENV}) while rank(s) {waiting} waited for them in all-reduce number "
            f"{max(counts)}. The workers were stopped."
        )
    raise WorkerError(
        f"the torch workers made no progress for {timeout:g} s ({TIMEOUT_ENV}): every rank is inside "
        f"all-reduce number {counts[0]}. The workers were stopped."
    )


def _stop(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    deadline = time.monotonic() + 5.0
    for worker in workers:
        try:
            worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        if worker.connection is not None:
            worker.connection.close()


def _worker_main() -> int:
    """A rank started by :func:`launch_torch_workers`: fit, and report to the launcher."""
    import signal

    global _ARRIVALS, _RANK
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the launcher's to handle
    host, port, key, folder_text = os.environ[_LINK_ENV].split(":", 3)
    folder, rank = Path(folder_text), int(os.environ["RANK"])
    connection = Client((host, int(port)), authkey=bytes.fromhex(key))
    connection.send(rank)
    job = pickle.loads((folder / "job.pkl").read_bytes())
    _ARRIVALS, _RANK = _Arrivals(folder / "arrivals.bin", job["workers"], create=False), rank

    import polylin
    from polylin.backends.torch_distributed import stop_requested
    from polylin.errors import DivergenceError

    def on_epoch(epoch: int, loss: float, seconds: float) -> None:
        if rank == 0:
            connection.send(("epoch", (epoch, loss, seconds)))
        if stop_requested():  # every rank learnt it in the same broadcast: all stop here
            raise KeyboardInterrupt

    from polylin import handoff, streaming

    X, y = (handoff.reopen(job["data"][name]) for name in ("X", "y"))
    shuffle, sizes = handoff.streaming_settings(job["data"]["X"])
    for setting, value in sizes.items():  # the launcher's blocks: the same segments, hence batches
        setattr(streaming, setting, value)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = polylin.fit(
                X, y, backend="torch", workers=job["workers"], on_epoch=on_epoch,
                out_of_core_shuffle=shuffle, **job["kwargs"],
            )  # fmt: skip
        connection.send(("result", (result, [(w.category, str(w.message)) for w in caught])))
    except DivergenceError as exc:
        details = {"epoch": exc.epoch, "step": exc.step, "last_finite_w": exc.last_finite_w}
        details.update(last_finite_b=exc.last_finite_b, result=exc.result, message=str(exc))
        connection.send(("diverged", details))
        return 1
    except BaseException as exc:
        try:
            payload = pickle.dumps(exc)
            pickle.loads(payload)
        except Exception:
            payload = pickle.dumps(WorkerError(f"torch worker rank {rank}: {type(exc).__name__}: {exc}"))
        connection.send(("error", payload))
        return 1
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


def rethrow_warnings(caught: list[tuple[type[Warning], str]], stacklevel: int = 3) -> None:
    """Re-issue the warnings rank 0 raised, in the launcher's process."""
    for category, message in caught:
        warnings.warn(message, category, stacklevel=stacklevel)


if __name__ == "__main__":
    # Run the worker in the module as imported by its dotted name, not in this ``__main__`` copy, so
    # that the backend's calls to report_arrival and WorkerError are the worker's.
    from polylin import distributed

    sys.exit(distributed._worker_main())
