"""What :func:`polylin.fit` returns."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class FitResult:
    """A trained linear model and how it was trained.

    Attributes
    ----------
    w, b:
        The fitted weights (shape ``(d,)``) and bias, as NumPy values.
    losses:
        The full-data loss after each completed epoch.
    initial_loss:
        The full-data loss of the initial parameters.
    epoch_times:
        Seconds each epoch took: its steps and the full-data loss after them, read
        back to the host (so an asynchronous device has finished the epoch).
    backend, backend_version, device, dtype:
        Where and how it ran.
    config:
        Every option the fit used (learning rate, batch size, seed, ...).
    true_w, true_b:
        The parameters that generated the data, when known.
    diverged_at:
        ``(epoch, step)`` of the first non-finite value, or ``None``.
    interrupted:
        ``True`` if training was stopped with Ctrl-C; the result then holds the
        last completed epoch.
    """

    w: np.ndarray
    b: float
    losses: np.ndarray
    initial_loss: float
    epoch_times: np.ndarray
    backend: str
    backend_version: str
    device: str
    dtype: str
    config: dict[str, Any] = field(default_factory=dict)
    true_w: np.ndarray | None = None
    true_b: float | None = None
    diverged_at: tuple[int, int] | None = None
    interrupted: bool = False

    @property
    def epochs_completed(self) -> int:
        return len(self.losses)

    @property
    def final_loss(self) -> float:
        """The full-data loss after the last completed epoch (the initial loss if none completed)."""
        return float(self.losses[-1]) if len(self.losses) else self.initial_loss

    @property
    def w_error(self) -> np.ndarray | None:
        """``true_w − w``, as the book prints it, or ``None`` if the truth is unknown."""
        if self.true_w is None:
            return None
        return np.asarray(self.true_w, dtype=np.float64) - self.w.astype(np.float64)

    @property
    def b_error(self) -> float | None:
        """``true_b − b``, or ``None`` if the truth is unknown."""
        if self.true_b is None:
            return None
        return float(self.true_b) - float(self.b)

    def predict(self, X: Any, *, backend: str | None = None, device: str | None = None) -> np.ndarray:
        """``X w + b`` for ``X`` of shape ``(n, d)``, as a NumPy array.

        With ``backend=None`` the product is computed with NumPy. Naming a
        backend (``"jax"``, ``"torch"``, ...) computes it there, in this
        result's dtype and on ``device``, whichever backend trained the model;
        ``X`` may then also be that backend's own array.
        """
        if backend is None:
            X = np.asarray(X, dtype=self.w.dtype)
            self._check_features(X.shape)
            prediction: np.ndarray = X @ self.w + self.w.dtype.type(self.b)
            return prediction
        from polylin.backends import get_backend
        from polylin.frameworks import framework_of, to_numpy
        from polylin.losses import get_loss
        from polylin.objective import Objective

        be = get_backend(backend, dtype=self.dtype, device=device)
        X_host = to_numpy(X) if framework_of(X) == be.name else np.asarray(X)
        self._check_features(X_host.shape)
        model = Objective(be.xp, get_loss("squared"))
        with be.context():
            params = be.parameters(self.w, np.array([self.b]), trainable=False)
            return np.asarray(be.to_numpy(model.predict(params, be.asarray(X_host))))

    def _check_features(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 2 or shape[1] != self.w.shape[0]:
            raise ValueError(f"X has shape {shape}; this model expects (n, {self.w.shape[0]}).")

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write this result to ``path`` atomically, as a ``.npz`` file (see :mod:`polylin.checkpoint`)."""
        import datetime
        import platform

        from polylin import checkpoint
        from polylin._version import __version__

        metadata = {
            "polylin_version": __version__,
            "numpy_version": np.__version__,
            "python_version": platform.python_version(),
            "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "backend": self.backend,
            "backend_version": self.backend_version,
            "device": self.device,
            "dtype": self.dtype,
            "config": self.config,
            "diverged_at": None if self.diverged_at is None else [int(v) for v in self.diverged_at],
            "interrupted": bool(self.interrupted),
        }
        arrays = {
            "w": np.asarray(self.w),
            "b": np.asarray([self.b], dtype=np.float64),
            "losses": np.asarray(self.losses, dtype=np.float64),
            "epoch_times": np.asarray(self.epoch_times, dtype=np.float64),
            "initial_loss": np.asarray(self.initial_loss, dtype=np.float64),
        }
        if self.true_w is not None:
            arrays["true_w"] = np.asarray(self.true_w, dtype=np.float64)
        if self.true_b is not None:
            arrays["true_b"] = np.asarray(self.true_b, dtype=np.float64)
        return checkpoint.write(path, metadata, arrays)

    def summary(self) -> str:
        """The book's closing lines: the error in estimating w and b."""
        lines = [f"{self.backend} {self.backend_version} on {self.device}, {self.dtype}"]
        if self.w_error is not None:
            lines.append(f"error in estimating w: {self.w_error}")
            lines.append(f"error in estimating b: {self.b_error}")
        else:
            lines.append(f"w: {self.w}")
            lines.append(f"b: {self.b}")
        return "\n".join(lines)


def load(path: str | os.PathLike[str]) -> FitResult:
    """Read a result saved with :meth:`FitResult.save`.

    Raises :class:`FileNotFoundError` for a missing file and
    :class:`~polylin.errors.CheckpointError` for a file that is not a complete
    polylin checkpoint. Nothing is unpickled.
    """
    from polylin.checkpoint import read
    from polylin.errors import CheckpointError

    metadata, arrays = read(path)
    where = os.fspath(path)
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
