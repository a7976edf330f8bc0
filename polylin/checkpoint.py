"""Saving, loading and resuming fits: portable ``.npz`` files, written atomically.

A checkpoint is an ordinary NumPy ``.npz`` archive (a zip of ``.npy``
files) that any NumPy, on any platform, reads with ``allow_pickle=False``:

* ``w``, ``b``: the parameters, ``w`` in the dtype it was trained in, ``b``
  as a float64 array of one value (a float32 ``b`` converts exactly);
* ``losses``, ``epoch_times``, ``initial_loss``: the history;
* ``true_w``, ``true_b``: the generating parameters, when known;
* ``metadata``: UTF-8 JSON (as ``uint8`` bytes) with the format name and
  version, the backend, its version, device and dtype, the fit's
  configuration, the divergence and interruption flags, and the polylin,
  NumPy and Python versions that wrote it.

Writing goes to a temporary file in the same directory, which is flushed
and ``fsync``-ed and then renamed over the target with :func:`os.replace`,
an atomic operation: a crash at any moment leaves either the previous file
or the new one, never a mixture. A crash can leave the temporary file
(named ``.<name>.<random>.tmp``) behind; it is safe to delete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from polylin._version import __version__
from polylin.errors import CheckpointError
from polylin.result import FitResult

if TYPE_CHECKING:
    from pathlib import Path

# json, hashlib, platform, secrets, datetime and pathlib are imported where they are
# used: together they would add about 15 ms to `import polylin`.

FORMAT = "polylin-checkpoint"
FORMAT_VERSION = 1


# -- saving -------------------------------------------------------------------
def save(result: FitResult, path: str | os.PathLike[str]) -> Path:
    """Write ``result`` to ``path`` atomically and return the path.

    The path is used as given (no suffix is added); ``.npz`` is the
    conventional one. An existing file is replaced only once the new one is
    complete on disk.
    """
    import pathlib

    if not isinstance(result, FitResult):
        raise TypeError(f"save() takes a FitResult; got {type(result).__name__}.")
    target = pathlib.Path(os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(f"path={str(target)!r} is a directory; pass a file name such as 'fit.npz'.")
    arrays = _arrays(result)
    _atomic_write(target, lambda stream: np.savez(stream, **arrays))
    return target


def _arrays(result: FitResult) -> dict[str, np.ndarray]:
    import datetime
    import json
    import platform

    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "polylin_version": __version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "backend": result.backend,
        "backend_version": result.backend_version,
        "device": result.device,
        "dtype": result.dtype,
        "config": result.config,
        "diverged_at": None if result.diverged_at is None else [int(v) for v in result.diverged_at],
        "interrupted": bool(result.interrupted),
    }
    try:
        text = json.dumps(metadata, allow_nan=False, default=_json_value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"This result cannot be saved: its configuration is not plain data ({exc}); "
            "keep only numbers, strings, booleans, lists and dicts in result.config."
        ) from exc
    arrays = {
        "w": np.asarray(result.w),
        "b": np.asarray([result.b], dtype=np.float64),
        "losses": np.asarray(result.losses, dtype=np.float64),
        "epoch_times": np.asarray(result.epoch_times, dtype=np.float64),
        "initial_loss": np.asarray(result.initial_loss, dtype=np.float64),
        "metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
    }
    if result.true_w is not None:
        arrays["true_w"] = np.asarray(result.true_w, dtype=np.float64)
    if result.true_b is not None:
        arrays["true_b"] = np.asarray(result.true_b, dtype=np.float64)
    return arrays


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _atomic_write(target: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in the target's directory, then rename it over the target."""
    import secrets

    directory = target.parent
    temporary = directory / f".{target.name}.{secrets.token_hex(6)}.tmp"
    # O_EXCL: never reuse a file someone else made; mode 0o666 lets the umask decide, as open() does.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a directory)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# -- loading ------------------------------------------------------------------
def load(path: str | os.PathLike[str]) -> FitResult:
    """Read a checkpoint written by :func:`save` (or :meth:`FitResult.save`).

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~polylin.errors.CheckpointError` for a file that is not a
    complete polylin checkpoint. Nothing is unpickled.
    """
    import pathlib

    target = pathlib.Path(os.fspath(path))
    if not target.exists():
        raise FileNotFoundError(f"No checkpoint at {str(target)!r}; check the path.")
    try:
        with np.load(target, allow_pickle=False) as archive:
            if not hasattr(archive, "files") or "metadata" not in archive.files:
                raise CheckpointError(
                    f"{str(target)!r} is not a polylin checkpoint (it has no 'metadata' entry); "
                    "checkpoints are written by result.save(path)."
                )
            arrays = {name: np.array(archive[name]) for name in archive.files}
    except CheckpointError:
        raise
    except Exception as exc:  # a truncated or corrupted zip, a bad CRC, a non-npz file
        raise CheckpointError(
            f"{str(target)!r} cannot be read as a polylin checkpoint ({type(exc).__name__}: {exc}); "
            "it is damaged or not a checkpoint. Save the result again, or use another checkpoint."
        ) from exc
    return _result_from(arrays, str(target))


def _result_from(arrays: Mapping[str, np.ndarray], where: str) -> FitResult:
    import json

    try:
        metadata = json.loads(arrays["metadata"].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{where!r} has unreadable metadata ({exc}); it is damaged.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{where!r} is not a polylin checkpoint (format {metadata!r:.60}).")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where!r} has checkpoint format version {version!r}, newer than this polylin "
            f"({__version__}) reads (up to {FORMAT_VERSION}); upgrade polylin to load it."
        )
    missing = [name for name in ("w", "b", "losses", "epoch_times", "initial_loss") if name not in arrays]
    if missing:
        raise CheckpointError(f"{where!r} lacks the entries {missing}; it is damaged.")
    try:
        diverged = metadata["diverged_at"]
        return FitResult(
            w=arrays["w"],
            b=float(arrays["b"][0]),
            losses=arrays["losses"],
            initial_loss=float(arrays["initial_loss"]),
            epoch_times=arrays["epoch_times"],
            backend=str(metadata["backend"]),
            backend_version=str(metadata["backend_version"]),
            device=str(metadata["device"]),
            dtype=str(metadata["dtype"]),
            config=dict(metadata["config"]),
            true_w=arrays.get("true_w"),
            true_b=float(arrays["true_b"]) if "true_b" in arrays else None,
            diverged_at=None if diverged is None else (int(diverged[0]), int(diverged[1])),
            interrupted=bool(metadata["interrupted"]),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where!r} has incomplete metadata ({exc!r}); it is damaged.") from None
