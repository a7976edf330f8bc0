"""Exercise: what problems come up when extending autograd to second derivatives, and how to fix them?

Each backend's :meth:`~polylin.backends.base.Backend.hessian` computes the
``(d+1)×(d+1)`` Hessian of the mean loss in ``(w, b)`` with the framework's
own autodiff (``jax.hessian``; torch differentiating a gradient taken with
``create_graph=True``; MXNet's ``autograd.grad(create_graph=True)``; NumPy by
hand). It is compared with the analytic one: with ``A = [X 1]``,
``H = Aᵀ diag(l''(r)) A / n``, which for the squared loss is ``AᵀA/n``, the
``XᵀX/n`` of the normal equations.

What this shows:

* **Squared loss:** every framework that can differentiate twice agrees with
  ``AᵀA/n``; one Newton step ``θ − H⁻¹g`` then lands on the exact
  least-squares solution, and ``2/λ_max`` is the largest stable learning rate
  of full-batch gradient descent.
* **Absolute loss:** ``l'' = 0`` wherever it exists, so autodiff reports a zero
  Hessian; the curvature is all at ``r = 0``, where ``|r|`` has no second
  derivative (its second derivative is a Dirac delta there). Newton's method
  cannot use it.
* **Huber loss:** ``l''`` jumps from 1 to 0 at ``|r| = δ``. Exactly at the
  kink each framework returns whatever its ``clip`` and ``abs`` rules give:
  torch and the hand derivation count the point as inside (1), JAX splits
  ties between the branches and reports 0.25.
* **MXNet 1.9.1** cannot do it at all: the backward operators of matrix
  product, broadcast multiply and sum register no gradient of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.backends import get_backend
from polylin.data import synthetic_data
from polylin.experiments._common import ExperimentResult, backend_list, table
from polylin.losses import HUBER_DELTA, get_loss
from polylin.objective import Objective

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Where each Hessian is evaluated: (label, loss, point).
CASES = (
    ("squared", "squared", "generic"),
    ("absolute", "absolute", "generic"),
    ("huber", "huber", "generic"),
    ("absolute, some r = 0", "absolute", "kinks"),
    ("huber, some |r| = δ", "huber", "kinks"),
)
#: The residuals of the "kinks" point: exactly 0, exactly ±δ, inside and outside.
KINK_RESIDUALS = (0.0, HUBER_DELTA, -HUBER_DELTA, 0.5, 3.0)
GENERIC_PARAMS = (np.array([1.5, -2.5]), np.array([3.5]))


def points() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``name -> (X, y, w, b)`` in float64, for each evaluation point."""
    X, y = synthetic_data(n=100, seed=0, dtype="float64")
    kink_X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0], [0.0, 0.0]])
    kink_w, kink_b = np.array([1.0, 1.0]), np.array([0.0])
    kink_y = kink_X @ kink_w + kink_b - np.array(KINK_RESIDUALS)  # residuals are exactly KINK_RESIDUALS
    return {"generic": (X, y, *GENERIC_PARAMS), "kinks": (kink_X, kink_y, kink_w, kink_b)}


def analytic_hessian(loss: str, X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Aᵀ diag(l''(r)) A / n`` with ``A = [X 1]``; ``l''`` taken as 1 at ``|r| = δ`` and 0 at ``r = 0``."""
    design = np.column_stack([X, np.ones(len(X))])
    residual = X @ w + b - y
    curvature = {
        "squared": np.ones_like(residual),
        "absolute": np.zeros_like(residual),
        "huber": (np.abs(residual) <= HUBER_DELTA).astype(np.float64),
    }[loss]
    result: np.ndarray = (design.T * curvature) @ design / len(X)
    return result


@dataclass
class SecondDerivativesResult(ExperimentResult):
    """Hessians per case and backend (``None`` where the backend could not), with the errors."""

    backends: list[str]
    analytic: dict[str, np.ndarray]
    hessians: dict[tuple[str, str], np.ndarray | None]
    failures: dict[tuple[str, str], str]
    newton_error: float
    lstsq_params: np.ndarray
    name: str = field(default="second-derivatives", init=False)

    def max_difference(self, case: str, backend: str) -> float | None:
        """max |H_backend − H_analytic| for a case, or ``None`` if the backend failed."""
        h = self.hessians.get((case, backend))
        return None if h is None else float(np.max(np.abs(h - self.analytic[case])))

    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the squared loss's Hessian at the generic point (the same everywhere)."""
        return np.linalg.eigvalsh(self.analytic["squared"])

    def summary(self) -> str:
        rows = []
        for case, _, _ in CASES:
            cells = []
            for name in self.backends:
                diff = self.max_difference(case, name)
                cells.append("cannot" if diff is None else f"{diff:.1e}")
            rows.append((case, *cells))
        lam = self.eigenvalues()
        lines = [
            "Second derivatives: max |H_backend − H_analytic| (float64; H_analytic = Aᵀ diag(l''(r)) A / n)",
            table(("case", *self.backends), rows),
            f"squared loss: eigenvalues of H = {np.array2string(lam, precision=3)}; "
            f"full-batch GD is stable for lr < 2/λ_max = {2 / lam[-1]:.2f}",
            f"one Newton step from w = 0, b = 0 lands {self.newton_error:.1e} "
            "from the least-squares solution",
        ]
        for (case, name), why in sorted(self.failures.items()):
            if case == CASES[0][0]:
                lines.append(f"{name}: {why}")
        return "\n".join(lines)

    def figure(self) -> Figure:
        from polylin.plot import _new_figure

        columns = ["analytic", *self.backends]
        fig = _new_figure(2.3 * len(columns), 2.2 * len(CASES))
        axes = fig.subplots(len(CASES), len(columns), squeeze=False)
        labels = ["w1", "w2", "b"]
        for i, (case, _, _) in enumerate(CASES):
            reference = self.analytic[case]
            scale = max(float(np.max(np.abs(reference))), 1e-12)
            for j, column in enumerate(columns):
                ax = axes[i, j]
                ax.set_xticks([])
                ax.set_yticks([])
                matrix = reference if column == "analytic" else self.hessians.get((case, column))
                if j == 0:
                    ax.set_ylabel(case, fontsize=9)
                if i == 0:
                    ax.set_title(column, fontsize=10)
                if matrix is None:
                    ax.text(
                        0.5,
                        0.5,
                        _short_reason(self.failures.get((case, column), "")),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="#b22222",
                        transform=ax.transAxes,
                    )
                    ax.set_facecolor("#f6e6e6")
                    continue
                ax.imshow(matrix, cmap="RdBu_r", vmin=-scale, vmax=scale)
                differs = column != "analytic" and not np.allclose(matrix, reference, atol=1e-9)
                for (r, c), value in np.ndenumerate(matrix):
                    wrong = differs and abs(value - reference[r, c]) > 1e-9
                    ink = "white" if abs(value) > 0.55 * scale else "black"
                    ax.text(
                        c,
                        r,
                        f"{value:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="#ffd700" if wrong and ink == "white" else ("#b22222" if wrong else ink),
                        fontweight="bold" if wrong else "normal",
                    )
                if i == len(CASES) - 1 or j == 0:
                    ax.set_xticks(range(3), labels, fontsize=7)
                    ax.set_yticks(range(3), labels, fontsize=7)
                if differs:
                    for spine in ax.spines.values():
                        spine.set_color("#b22222")
                        spine.set_linewidth(2)
        fig.suptitle(
            "Hessian of the mean loss in (w1, w2, b): analytic vs each backend's autodiff\n"
            "(red frame: differs from the analytic value, at the kink |r| = δ)",
            fontsize=11,
        )
        return fig


def _short_reason(message: str) -> str:
    import re

    found = re.search(r"operator (\S+) has no", message)
    if found:
        return f"cannot:\n{found.group(1)}\nhas no gradient\nof its own"
    return "cannot:\nthis backend has\nno Hessian"


def second_derivatives(backends: str | Sequence[str] | None = None) -> SecondDerivativesResult:
    """Compute every case's Hessian on each backend (default: every installed one) and compare."""
    names = backend_list(backends)
    data = points()
    analytic: dict[str, np.ndarray] = {}
    hessians: dict[tuple[str, str], np.ndarray | None] = {}
    failures: dict[tuple[str, str], str] = {}
    for case, loss, point in CASES:
        X, y, w, b = data[point]
        analytic[case] = analytic_hessian(loss, X, y, w, b)
        for name in names:
            backend = get_backend(name, dtype="float64")
            with backend.context():
                objective = Objective(backend.xp, get_loss(loss))
                params = backend.parameters(w, b, trainable=False)
                try:
                    h = backend.hessian(objective)(params, backend.asarray(X), backend.asarray(y))
                    hessians[(case, name)] = np.asarray(backend.to_numpy(h), dtype=np.float64)
                except NotImplementedError as exc:
                    hessians[(case, name)] = None
                    failures[(case, name)] = str(exc)
    # Newton's method on the squared loss: one step from zero reaches the least-squares solution.
    X, y, _, _ = data["generic"]
    design = np.column_stack([X, np.ones(len(X))])
    start = np.zeros(3)
    gradient = design.T @ (design @ start - y) / len(X)
    newton = start - np.linalg.solve(analytic["squared"], gradient)
    exact = np.linalg.lstsq(design, y, rcond=None)[0]
    return SecondDerivativesResult(
        names, analytic, hessians, failures, float(np.max(np.abs(newton - exact))), exact
    )
