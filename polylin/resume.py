"""Resuming and warm-starting a fit: where it starts, and whether it may.

``fit(resume=...)`` continues the *same* run (same data, loss, learning rate,
batch size, seed, ...), checked against the checkpoint's configuration;
``fit(warm_start=...)`` continues on possibly different data, as
scikit-learn's ``partial_fit`` does.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from polylin.errors import CheckpointError
from polylin.result import FitResult, load

#: Configuration entries a resumed fit must share with its checkpoint: together
#: with the dtype they fix the trajectory, batch order included.
RESUME_MUST_MATCH = (
    "n_examples",
    "n_features",
    "data_fingerprint",
    "loss",
    "lr",
    "batch_size",
    "seed",
    "shuffle",
    "fit_intercept",
    "chunk_layout",
)
#: What a resumed fit may change (the trajectory is then the same up to rounding,
#: and bitwise the same only on the same backend, device and ``grad``).
RESUME_MAY_DIFFER = (
    "epochs",
    "backend",
    "device",
    "grad",
    "init",
    "on_divergence",
    "on_epoch",
    "backend_options",
    "check_stability",
    "workers",
    "true_w",
    "true_b",
)
_FINGERPRINT_ROWS = 256


def data_fingerprint(X: np.ndarray, y: np.ndarray, dtype: np.dtype) -> str:
    """A cheap fingerprint of the training data, to tell a resumed fit it was given other data.

    Hashes the shape and up to 256 evenly spaced rows of ``X`` and ``y``, in the
    training dtype: it costs the same for any ``n``, and two data sets that
    differ only in rows it does not sample share a fingerprint.
    """
    rows = fingerprint_rows(X.shape[0])
    digest = hashlib.blake2b(digest_size=16)
    digest.update(_fingerprint_header(tuple(X.shape), np.dtype(dtype)))
    for array in (X, y):
        # A NumPy array's take gathers the rows in a third of the time of X[rows]; the hash reads
        # the contiguous result in place (the same bytes as its tobytes(), without the copy).
        sampled = array.take(rows, axis=0) if isinstance(array, np.ndarray) else array[rows]
        digest.update(np.ascontiguousarray(sampled, dtype=dtype).data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=64)
def _fingerprint_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """What the digest reads first: ``repr((shape, dtype name))``, encoded (remembered: NumPy's
    ``dtype.name`` alone takes a few µs)."""
    return repr((shape, dtype.name)).encode()


@functools.lru_cache(maxsize=64)
def fingerprint_rows(n: int) -> np.ndarray:
    """The rows :func:`data_fingerprint` hashes: ``np.unique(np.linspace(0, n-1, k).astype(int))``
    with ``k = min(n, 256)``, computed as linspace does (``arange(k) * ((n-1)/(k-1))``, the last
    set to ``n-1``) without its generality and the sort. Remembered per ``n``, read-only (a refit
    of the same data asks again)."""
    k = min(n, _FINGERPRINT_ROWS)
    if k <= 1:
        sampled = np.zeros(k, dtype=np.int64)
    else:
        rows = (np.arange(k, dtype=np.float64) * ((n - 1) / (k - 1))).astype(np.int64)
        rows[-1] = n - 1
        distinct = np.empty(k, dtype=bool)
        distinct[0] = True
        np.not_equal(rows[1:], rows[:-1], out=distinct[1:])
        sampled = rows[distinct]
    sampled.flags.writeable = False
    return sampled


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed fit starts: the checkpoint and its parameters after ``start_epoch`` epochs."""

    previous: FitResult
    w: np.ndarray
    b: np.ndarray
    start_epoch: int


def warm_start_point(previous: FitResult, *, n_features: int, epochs: int) -> ResumePoint:
    """Continue ``previous`` on possibly different data: only the number of features must match.

    This is scikit-learn's ``partial_fit`` / ``warm_start`` meaning: the
    parameters carry over and the epoch count (hence the next batch order)
    continues, whatever the data now is. Use ``resume`` to continue the *same*
    training run, with its compatibility checks.
    """
    if not isinstance(previous, FitResult):
        raise TypeError(f"warm_start={type(previous).__name__} must be a FitResult.")
    if previous.diverged_at is not None:
        raise ValueError(
            f"warm_start: that fit diverged at epoch {previous.diverged_at[0]}; start a new fit "
            "with a lower lr or standardised features."
        )
    if previous.w.shape != (n_features,):
        raise ValueError(
            f"warm_start: that fit has {previous.w.shape[0]} features but X has {n_features}; "
            "continue on data with the same columns."
        )
    completed = previous.epochs_completed
    if epochs < completed:
        raise ValueError(
            f"warm_start: epochs={epochs} is fewer than the {completed} epochs already trained; "
            f"epochs counts the total, so pass epochs >= {completed}."
        )
    return ResumePoint(previous, np.array(previous.w, copy=True), np.array([previous.b]), completed)


def resume_point(
    resume: str | os.PathLike[str] | FitResult, *, config: Mapping[str, Any], dtype: str
) -> ResumePoint:
    """Check that a fit configured as ``config`` in ``dtype`` can continue ``resume``, and from where."""
    if isinstance(resume, FitResult):
        previous = resume
    elif isinstance(resume, (str, os.PathLike)):
        previous = load(resume)
    else:
        raise TypeError(
            f"resume={type(resume).__name__} must be a FitResult or the path of a saved one "
            "(result.save(path))."
        )
    if previous.diverged_at is not None:
        epoch, step = previous.diverged_at
        raise CheckpointError(
            f"resume: this fit diverged at epoch {epoch}, step {step}; resuming it with the same "
            "learning rate would diverge again. Start a new fit with a lower lr, or standardised features."
        )
    differences = [
        f"{key} (checkpoint: {previous.config.get(key)!r}, now: {config.get(key)!r})"
        for key in RESUME_MUST_MATCH
        if previous.config.get(key) != config.get(key)
    ]
    if previous.dtype != dtype:
        differences.append(f"dtype (checkpoint: {previous.dtype!r}, now: {dtype!r})")
    if differences:
        raise CheckpointError(
            "resume: this fit differs from the checkpoint in " + "; ".join(differences) + ". "
            "Pass the values the checkpoint was trained with (and the same X and y); only "
            f"{', '.join(RESUME_MAY_DIFFER)} may change."
        )
    completed = previous.epochs_completed
    if int(config["epochs"]) < completed:
        raise CheckpointError(
            f"resume: epochs={config['epochs']} is fewer than the {completed} epochs the checkpoint "
            f"has already trained; epochs counts the total, so pass epochs >= {completed}."
        )
    return ResumePoint(previous, np.array(previous.w, copy=True), np.array([previous.b]), completed)
