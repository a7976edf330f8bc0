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

if TYPE_CHECKING:
    from pathlib import Path

# json, hashlib, platform, secrets, datetime and pathlib are imported where they are
# used: together they would add about 15 ms to `import polylin`.

FORMAT = "polylin-checkpoint"
FORMAT_VERSION = 1


# -- writing ------------------------------------------------------------------
def write(
    path: str | os.PathLike[str], metadata: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> Path:
    """Write ``arrays`` and the JSON ``metadata`` (format name and version added) to ``path``
    atomically, and return the path.

    The path is used as given (no suffix is added); ``.npz`` is the conventional
    one. An existing file is replaced only once the new one is complete on disk.
    """
    import json
    import pathlib

    target = pathlib.Path(os.fspath(path))
    if target.is_dir():
        raise IsADirectoryError(f"path={str(target)!r} is a directory; pass a file name such as 'fit.npz'.")
    header = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    try:
        text = json.dumps(header, allow_nan=False, default=_json_value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"This result cannot be saved: its configuration is not plain data ({exc}); "
            "keep only numbers, strings, booleans, lists and dicts in result.config."
        ) from exc
    entries = {**arrays, "metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    _atomic_write(target, lambda stream: np.savez(stream, **entries))
    return target


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
def read(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint written by :func:`write`: its metadata, checked, and its arrays.

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
    return _metadata(arrays, str(target)), arrays


def _metadata(arrays: Mapping[str, np.ndarray], where: str) -> dict[str, Any]:
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
    return metadata
