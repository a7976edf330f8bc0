"""Host arrays laid out so that JAX on the CPU can use them without copying.

On the CPU, ``jax.device_put`` of a NumPy array aliases its buffer when the
runtime accepts the buffer's alignment, and copies it otherwise. XLA asked for
16 bytes up to JAX 0.4.34 and for 64 bytes since (openxla/xla#16505), while
NumPy aligns large arrays to 16 bytes only. JAX's own copy is slow on the CPU:
measured here for the 381 MiB ``large`` X with JAX 0.10.2, ``device_put`` takes
270-310 ms, whereas a NumPy copy into a 64-byte aligned buffer takes 70-90 ms
and ``device_put`` then aliases it (2 ms). :func:`host_for_device` makes that
copy only when it pays: when the runtime aliases aligned buffers but not this
one. Which runtime it is, is probed once, not read from a version number.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

#: The alignment that every XLA CPU runtime accepts for aliasing.
ALIGNMENT = 64
#: Below this size a copy costs microseconds either way; JAX's own path is kept.
MIN_STAGED_BYTES = 1 << 20


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on an :data:`ALIGNMENT` boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    offset = (-raw.ctypes.data) % ALIGNMENT
    out: np.ndarray = raw[offset : offset + nbytes].view(dtype).reshape(shape)
    return out


def _aliases(jax: Any, device: Any, host: np.ndarray) -> bool:
    placed = jax.device_put(host, device)
    return bool(np.shares_memory(np.asarray(placed), host))


@functools.cache
def stages_for_alignment(jax: Any, device: Any) -> bool:
    """Whether ``device`` aliases 64-byte aligned host buffers but copies 16-byte aligned ones.

    Probed with a 64 KiB array at both alignments (JAX modules and devices are hashable).
    """
    if device.platform != "cpu":
        return False  # an accelerator always copies across the bus
    probe = aligned_empty((ALIGNMENT // 4 + (1 << 14),), np.float32)
    shifted = probe[4:]  # 16 bytes past the boundary
    return _aliases(jax, device, probe[: 1 << 14]) and not _aliases(jax, device, shifted)


def host_for_device(host: Any, dtype: Any, stage: bool) -> np.ndarray:
    """``host`` as a NumPy array of ``dtype``, copied into an aligned C-contiguous buffer when
    ``stage`` is set and the array is large and not aligned already.

    The conversion and the alignment take one pass; nothing the caller passed is written to.
    """
    source: np.ndarray = np.asarray(host)
    dtype = np.dtype(dtype)
    if not stage or source.size * dtype.itemsize < MIN_STAGED_BYTES:
        converted: np.ndarray = np.asarray(source, dtype=dtype)
        return converted
    if source.dtype == dtype and source.flags.c_contiguous and source.ctypes.data % ALIGNMENT == 0:
        return source
    staged = aligned_empty(source.shape, dtype)
    np.copyto(staged, source, casting="unsafe")
    return staged
