"""How good a fit is, and how closely a backend agrees with the NumPy reference.

Everything is computed on the host in float64, in chunks of rows, so that a
million-row X costs no float64 copy of itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from polylin.tolerances import tolerance_for

_CHUNK = 1 << 16


@dataclass(frozen=True)
class LeastSquares:
    """The closed-form minimiser of the mean ½ squared loss, and that minimal loss."""

    w: np.ndarray
    b: float
    loss: float


def _chunks(X: np.ndarray, y: np.ndarray) -> Any:
    for start in range(0, X.shape[0], _CHUNK):
        yield (
            X[start : start + _CHUNK].astype(np.float64),
            y[start : start + _CHUNK].astype(np.float64),
        )


def least_squares(X: np.ndarray, y: np.ndarray) -> LeastSquares:
    """Solve ``min ½ mean (Xw + b − y)²`` exactly, through the normal equations of centred data.

    Centring first keeps the (d × d) system as well conditioned as X's own
    columns; the sums are accumulated in float64 a chunk at a time.
    """
    n, d = X.shape
    mean_x = np.zeros(d)
    mean_y = 0.0
    for Xc, yc in _chunks(X, y):
        mean_x += Xc.sum(axis=0)
        mean_y += float(yc.sum())
    mean_x /= n
    mean_y /= n
    gram = np.zeros((d, d))
    moment = np.zeros(d)
    for Xc, yc in _chunks(X, y):
        Xc -= mean_x
        yc -= mean_y
        gram += Xc.T @ Xc
        moment += Xc.T @ yc
    w = np.linalg.lstsq(gram, moment, rcond=None)[0]
    b = mean_y - float(mean_x @ w)
    return LeastSquares(w, b, half_mse(X, y, w, b))


def half_mse(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    """``½ mean (Xw + b − y)²`` in float64 (the squared loss as polylin defines it)."""
    w64 = np.asarray(w, dtype=np.float64)
    total = 0.0
    for Xc, yc in _chunks(X, y):
        residual = Xc @ w64 + float(b) - yc
        total += float(residual @ residual)
    return 0.5 * total / X.shape[0]


def r_squared(X: np.ndarray, y: np.ndarray, w: np.ndarray, b: float) -> float:
    """The coefficient of determination ``1 − SS_res / SS_tot`` of ``Xw + b`` for ``y``."""
    mean_y = float(np.mean(y, dtype=np.float64))
    ss_res = 2.0 * X.shape[0] * half_mse(X, y, w, b)
    ss_tot = float(sum(float(((yc - mean_y) ** 2).sum()) for _, yc in _chunks(X, y)))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def quality(
    X: np.ndarray,
    y: np.ndarray,
    w: Sequence[float],
    b: float,
    *,
    true_w: np.ndarray | None,
    true_b: float | None,
    optimum: LeastSquares,
) -> dict[str, float | None]:
    """Final loss (host, float64), R², error against the truth and distance to least squares."""
    w64 = np.asarray(w, dtype=np.float64)
    loss = half_mse(X, y, w64, b)
    theta = np.append(w64, b)
    theta_ls = np.append(optimum.w, optimum.b)
    out: dict[str, float | None] = {
        "loss_host": loss,
        "r2": r_squared(X, y, w64, b),
        "excess_loss": loss - optimum.loss,
        "ls_distance": float(np.linalg.norm(theta - theta_ls)),
        "ls_max_abs": float(np.max(np.abs(theta - theta_ls))),
        "w_error_max": None,
        "b_error": None,
    }
    if true_w is not None:
        out["w_error_max"] = float(np.max(np.abs(np.asarray(true_w, np.float64) - w64)))
    if true_b is not None:
        out["b_error"] = float(true_b) - float(b)
    return out


def parity(record: dict[str, Any], reference: dict[str, Any], dtype: str) -> dict[str, Any]:
    """The largest differences of ``record`` from ``reference`` in parameters and loss curve, and pass/fail.

    Tolerances are :mod:`polylin.tolerances`: ``|Δp| ≤ 64·ε·(1 + |p|)`` on
    each parameter and ``|Δloss| ≤ 2000·ε·|loss|`` on each epoch's loss.
    """
    tol = tolerance_for(dtype)
    params = np.append(np.asarray(record["w"], np.float64), record["b"])
    ref_params = np.append(np.asarray(reference["w"], np.float64), reference["b"])
    losses = np.asarray(record["losses"], np.float64)
    ref_losses = np.asarray(reference["losses"], np.float64)
    out: dict[str, Any] = {
        "reference": reference["variant"],
        "param_atol": tol.param_atol,
        "loss_rtol": tol.loss_rtol,
        "max_param_diff": float(np.max(np.abs(params - ref_params))),
        "max_param_excess": float(np.max(np.abs(params - ref_params) / (1.0 + np.abs(ref_params)))),
        "params_pass": tol.params_close(params, ref_params),
    }
    if losses.shape != ref_losses.shape:
        out.update(
            max_loss_rel_diff=None,
            losses_pass=False,
            note=f"{losses.size} epochs against the reference's {ref_losses.size}",
        )
    else:
        rel = np.abs(losses - ref_losses) / np.abs(ref_losses)
        out.update(max_loss_rel_diff=float(np.max(rel)), losses_pass=tol.losses_close(losses, ref_losses))
    out["pass"] = bool(out["params_pass"] and out["losses_pass"])
    return out
