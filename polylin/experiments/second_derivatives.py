"""Exercise: what problems come up when extending autograd to second derivatives, and how to fix them?

:func:`hessian` computes the ``(d+1)×(d+1)`` Hessian of the mean loss in
``(w, b)`` with each framework's own autodiff, one small function per
framework (``jax.hessian``; torch differentiating a gradient taken with
``create_graph=True``; MXNet's ``autograd.grad(create_graph=True)``; NumPy by
hand). The backends themselves know nothing of second derivatives: only this
experiment needs them. Each is compared with the analytic Hessian: with ``A = [X 1]``,
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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.backends import get_backend
from polylin.backends.base import Backend
from polylin.data import synthetic_data
from polylin.experiments._common import ExperimentResult, backend_list, table
from polylin.losses import HUBER_DELTA, get_loss
from polylin.objective import Objective
from polylin.types import Array, Params

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


#: ``l''(r)`` of each loss, as the hand derivation takes it: 0 for the absolute loss even at
#: ``r = 0`` (where it does not exist) and 1 for Huber's exactly at ``|r| = δ``.
SECOND_DERIVATIVES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "squared": np.ones_like,
    "absolute": np.zeros_like,
    "huber": lambda r: (np.abs(r) <= HUBER_DELTA).astype(r.dtype),
}


def _by_hand(loss: str, X: np.ndarray, residual: np.ndarray, intercept: bool = True) -> np.ndarray:
    """``Aᵀ diag(l''(r)) A / m`` with ``A = [X 1]`` (``[X 0]`` without an intercept).

    The model is linear in ``(w, b)``, so only the loss's second derivative ``l''`` enters:
    the second derivative of ``l(aᵢᵀθ − yᵢ)`` in ``θ = (w, b)`` is ``l''(rᵢ) aᵢ aᵢᵀ``.
    """
    second = SECOND_DERIVATIVES.get(loss)
    if second is None:
        raise TypeError(
            f"Hessians are derived by hand only for the losses {sorted(SECOND_DERIVATIVES)}; got {loss!r}."
        )
    column = np.ones if intercept else np.zeros
    design = np.concatenate([X, column((X.shape[0], 1), dtype=X.dtype)], axis=1)
    result: np.ndarray = (design.T * second(residual).astype(X.dtype)) @ design / X.shape[0]
    return result


def analytic_hessian(loss: str, X: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference: :func:`_by_hand` in float64 on the host."""
    X = np.asarray(X, dtype=np.float64)
    return _by_hand(loss, X, X @ w + b - y)


# -- one Hessian per framework -------------------------------------------------------------------


def hessian(backend: Backend, objective: Objective, params: Params, X: Array, y: Array) -> np.ndarray:
    """The Hessian of ``objective``'s mean loss in ``(w, b)`` at ``params``, rows and columns
    ordered ``w₁ … w_d, b``, computed by ``backend``'s framework (by hand on NumPy).

    Raises :class:`NotImplementedError` for a backend that cannot compute it.
    Run it inside ``backend.context()`` (JAX's float64 needs it).
    """
    compute = _HESSIANS.get(backend.name)
    if compute is None:
        raise NotImplementedError(
            f"The {backend.name} backend does not compute Hessians; use the numpy backend "
            "(hand-derived) or jax / torch (their autodiff)."
        )
    return np.asarray(compute(backend, objective, params, X, y), dtype=np.float64)


def _numpy_hessian(backend: Backend, objective: Objective, params: Params, X: Array, y: Array) -> np.ndarray:
    """NumPy has no autodiff: the hand-derived ``Aᵀ diag(l''(r)) A / m`` (see :func:`_by_hand`),
    in the backend's dtype. For the squared loss it is ``AᵀA/m``, the ``XᵀX/n`` of the normal
    equations."""
    residual = np.asarray(backend.to_numpy(objective.residual(params, X, y)))
    return _by_hand(objective.loss.name, np.asarray(X), residual, objective.fit_intercept)


def _jax_hessian(backend: Backend, objective: Objective, params: Params, X: Array, y: Array) -> np.ndarray:
    """``jax.hessian`` (forward-mode over reverse-mode), whose four ``(w, b)`` blocks are joined
    into one matrix. JAX differentiates any function it can trace, any number of times."""
    import jax
    import jax.numpy as jnp

    (ww, wb), (bw, bb) = jax.hessian(objective.mean)(params, X, y)
    return np.asarray(jnp.block([[ww, wb], [bw, bb]]))


def _torch_hessian(backend: Backend, objective: Objective, params: Params, X: Array, y: Array) -> np.ndarray:
    """Reverse over reverse: the gradient is taken with ``create_graph=True``, so that autograd
    records it, then each of its components is differentiated again.

    Without ``create_graph`` the gradient is a plain tensor with no history and the
    second ``torch.autograd.grad`` fails ("element 0 of tensors does not require grad");
    calling ``.backward()`` twice only adds the first derivative to ``.grad`` a second time.
    """
    import torch

    leaves = tuple(p.detach().clone().requires_grad_(True) for p in params)
    grads = torch.autograd.grad(objective.mean(leaves, X, y), leaves, create_graph=True)
    rows = []
    for component in torch.cat([g.reshape(-1) for g in grads]):
        second: tuple[torch.Tensor | None, ...]
        if component.requires_grad:
            second = torch.autograd.grad(component, leaves, retain_graph=True, allow_unused=True)
        else:  # this component does not depend on the parameters at all
            second = (None,) * len(leaves)
        rows.append(
            torch.cat([
                (torch.zeros_like(p) if s is None else s).reshape(-1)
                for p, s in zip(leaves, second, strict=True)
            ])
        )  # fmt: skip
    return np.asarray(torch.stack(rows).detach().cpu().numpy())


def _mxnet_hessian(backend: Backend, objective: Objective, params: Params, X: Array, y: Array) -> np.ndarray:
    """Reverse over reverse with ``autograd.grad(..., create_graph=True)``, as far as MXNet allows.

    MXNet 1.9.1 can differentiate twice only a few elementwise operators (``sin``,
    ``cos``, ``log``, ``exp``, ``square``, ``abs``, ``clip``, ``relu`` on legacy ``nd``
    arrays). The backward passes of the operators every loss needs (matrix product,
    broadcast multiply, sum, reshape) register no gradient of their own, so the second
    pass fails; this raises :class:`NotImplementedError` naming the operator MXNet reports.
    """
    import mxnet as mx

    nd = mx.nd
    leaves = [p.copy() for p in params]
    for leaf in leaves:
        leaf.attach_grad()
    rows = []
    try:
        with mx.autograd.record():
            value = objective.mean((leaves[0], leaves[1]), X, y)
            grads = mx.autograd.grad(value, leaves, create_graph=True, retain_graph=True)
            flat = nd.concat(*[g.reshape(-1) for g in grads], dim=0)
            components = [flat[i] for i in range(flat.shape[0])]
        for component in components:
            second = mx.autograd.grad(component, leaves, retain_graph=True)
            rows.append(nd.concat(*[s.reshape(-1) for s in second], dim=0))
        return np.asarray(nd.stack(*rows).asnumpy())  # asnumpy waits: the engine's error surfaces here
    except mx.base.MXNetError as exc:
        raise NotImplementedError(mxnet_second_order_message(str(exc), backend.version)) from None


def mxnet_second_order_message(error: str, version: str) -> str:
    """Why MXNet cannot compute a Hessian, from the error its engine raised."""
    import re

    found = re.search(r"Operator (\S+) is non-differentiable", error)
    culprit = f"operator {found.group(1)} has" if found else "an operator in the objective has"
    return (
        f"The mxnet backend cannot compute this Hessian: in MXNet {version}, {culprit} no "
        "gradient of its own (no FGradient), so autograd cannot differentiate the first "
        "derivative again. MXNet's second-order autograd covers only a few elementwise "
        "operators (sin, cos, log, exp, square, abs, clip, relu), not the products and sums a "
        "loss is made of. Use the numpy backend (hand-derived Hessian) or jax / torch."
    )


HessianFn = Callable[[Backend, Objective, Params, Array, Array], np.ndarray]
#: The Hessian of each backend, by :attr:`~polylin.backends.base.Backend.name`.
_HESSIANS: dict[str, HessianFn] = {
    "numpy": _numpy_hessian,
    "jax": _jax_hessian,
    "torch": _torch_hessian,
    "mxnet": _mxnet_hessian,
}


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
                X_dev, y_dev = backend.asarray(X), backend.asarray(y)
                try:
                    hessians[(case, name)] = hessian(backend, objective, params, X_dev, y_dev)
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
