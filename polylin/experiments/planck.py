"""Exercise: can you use Planck's law to determine an object's temperature from its spectral energy density?

Yes, two ways, checked here on synthetic black-body spectra at known
temperatures (3000 K, 5778 K like the Sun, 10,000 K), measured at 120
wavelengths from 0.2 to 3 μm with 2 % noise, from a grey body that emits 70 %
of a black body (an unknown scale, as for a star whose distance is unknown).

Planck: ``B(λ, T) = c₁ / λ⁵ · 1 / (exp(c₂/(λT)) − 1)`` with ``c₁ = 2hc²`` and
``c₂ = hc/k = 14,388 μm·K``.

1. **Linearise (Wien's approximation).** For ``c₂/(λT) ≫ 1`` the ``−1`` is
   negligible, and ``ln(B λ⁵) = ln(εc₁) − (c₂/T) · (1/λ)``: a straight line in
   ``1/λ`` whose slope is ``−c₂/T``. That is linear regression on one feature,
   so :func:`polylin.fit` does it (with the feature standardised), and
   ``T = −c₂/slope``. It is biased where ``λT`` is not small, and more so the
   hotter the object.
2. **Fit Planck's law itself**, nonlinear in ``T``, by gradient descent on the
   squared error of ``ln B``. The parameters are ``θ = c₂/T`` and ``β = ln ε``;
   the gradient of a small objective (:class:`PlanckObjective`) comes from the
   backend's autodiff on JAX, PyTorch and MXNet and is worked out by hand on
   NumPy (:func:`planck_gradient`). It starts from Wien's estimate and removes
   its bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.api import fit
from polylin.backends import get_backend
from polylin.backends.base import Backend
from polylin.experiments._common import ExperimentResult, scalar, table
from polylin.types import Array, LossFn, Namespace, Params, TreeFn

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLANCK_H = 6.62607015e-34  # J s
LIGHT_C = 2.99792458e8  # m / s
BOLTZMANN_K = 1.380649e-23  # J / K
#: 2hc² in W μm⁴ m⁻² sr⁻¹ (B in W m⁻² sr⁻¹ μm⁻¹ with λ in μm).
C1 = 2 * PLANCK_H * LIGHT_C**2 * 1e24
#: hc/k in μm K.
C2 = PLANCK_H * LIGHT_C / BOLTZMANN_K * 1e6
TEMPERATURES = (3000.0, 5778.0, 10_000.0)
EMISSIVITY = 0.7


def spectral_radiance(wavelength_um: np.ndarray, temperature: float, emissivity: float = 1.0) -> np.ndarray:
    """Planck's law, ``ε · c₁ / λ⁵ / (exp(c₂/(λT)) − 1)``, for ``λ`` in μm."""
    lam = np.asarray(wavelength_um, dtype=np.float64)
    result: np.ndarray = emissivity * C1 / lam**5 / np.expm1(C2 / (lam * temperature))
    return result


def spectrum(
    temperature: float, *, n: int = 120, noise: float = 0.02, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(λ in μm, B)``: a noisy grey-body spectrum at ``temperature``, λ log-spaced from 0.2 to 3 μm."""
    rng = np.random.default_rng([seed, int(temperature)])
    lam = np.geomspace(0.2, 3.0, n)
    return lam, spectral_radiance(lam, temperature, EMISSIVITY) * np.exp(noise * rng.normal(size=n))


@dataclass(frozen=True, eq=False)  # hashed by identity (JAX caches its gradient): xp is not hashable
class PlanckObjective:
    """Mean ``½(ŷ − ln B)²`` with ``ŷ = ln c₁ − 5 ln λ − ln(exp(θ/λ) − 1) + β``.

    Parameters ``(w, b)`` are ``w = [θ]`` (``θ = c₂/T`` in μm) and ``b = [β]``
    (``β = ln ε``); ``X`` is the column of wavelengths in μm and ``y`` is ``ln B``.
    Written against the array namespace ``xp`` so every backend runs it, with
    the gradient derived by hand for NumPy: ``∂ŷ/∂θ = −1 / (λ (1 − exp(−θ/λ)))``,
    ``∂ŷ/∂β = 1``.
    """

    xp: Namespace

    def predict(self, params: Params, X: Array) -> Array:
        xp = self.xp
        (theta,), beta = params[0], params[1]
        lam = X[:, 0]
        return float(np.log(C1)) - 5.0 * xp.log(lam) - xp.log(xp.expm1(theta / lam)) + beta

    def __call__(self, params: Params, X: Array, y: Array) -> Array:
        residual = self.predict(params, X) - y
        return self.xp.mean(0.5 * (residual * residual))

    def gradient(self, params: Params, X: Array, y: Array) -> Params:
        """The gradient of the mean loss :meth:`__call__` in ``(θ, β)``, derived by hand."""
        xp = self.xp
        lam = X[:, 0]
        residual = self.predict(params, X) - y
        d_theta = -1.0 / (lam * (-xp.expm1(-params[0][0] / lam)))
        # Divided before the sum, which keeps shape (1,): MXNet cannot divide its 0-d sums by a scalar.
        g = residual / X.shape[0]
        return xp.sum(g * d_theta, axis=0, keepdims=True), xp.sum(g, axis=0, keepdims=True)


@dataclass
class PlanckResult(ExperimentResult):
    """Per true temperature: Wien's linearised estimate and the direct fit's, with the emissivity."""

    backend: str
    temperatures: tuple[float, ...]
    wien: np.ndarray
    direct: np.ndarray
    direct_emissivity: np.ndarray
    direct_losses: list[np.ndarray]
    spectra: list[tuple[np.ndarray, np.ndarray]]
    name: str = field(default="planck", init=False)

    def relative_errors(self, estimates: np.ndarray) -> np.ndarray:
        return np.asarray(np.abs(estimates - np.array(self.temperatures)) / np.array(self.temperatures))

    def summary(self) -> str:
        rows = [
            (f"{t:g} K", f"{w:.0f} K", f"{ew:.1%}", f"{d:.0f} K", f"{ed:.2%}", f"{eps:.3f}")
            for t, w, ew, d, ed, eps in zip(
                self.temperatures,
                self.wien,
                self.relative_errors(self.wien),
                self.direct,
                self.relative_errors(self.direct),
                self.direct_emissivity,
                strict=True,
            )
        ]
        return (
            f"Planck's law on {self.backend}: λ from 0.2 to 3 μm, 2 % noise, emissivity {EMISSIVITY}\n"
            + table(
                ("true T", "Wien (linear fit)", "error", "Planck (direct fit)", "error", "fitted ε"), rows
            )
        )

    def figure(self) -> Figure:
        from polylin.plot import COLOURS, _new_figure

        fig = _new_figure(11.0, 4.4)
        left, right = fig.subplots(1, 2)
        for k, (temperature, (lam, radiance)) in enumerate(zip(self.temperatures, self.spectra, strict=True)):
            colour = COLOURS[k]
            left.scatter(lam, radiance, s=5, color=colour, alpha=0.6, label=f"data, T = {temperature:g} K")
            grid = np.geomspace(lam.min(), lam.max(), 300)
            left.plot(
                grid,
                spectral_radiance(grid, self.direct[k], self.direct_emissivity[k]),
                color=colour,
                linewidth=1.2,
            )
            wien = self.wien[k]
            right.scatter(
                1 / lam,
                np.log(radiance * lam**5),
                s=5,
                color=colour,
                alpha=0.6,
                label=f"T = {temperature:g} K: Wien {wien:.0f} K, Planck {self.direct[k]:.0f} K",
            )
            u = np.linspace((1 / lam).min(), (1 / lam).max(), 2)
            intercept = np.mean(np.log(radiance * lam**5) + C2 / (wien * lam))
            right.plot(u, intercept - C2 / wien * u, color=colour, linestyle="--", linewidth=1)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_ylim(bottom=max(left.get_ylim()[0], 1e-2))
        left.set_xlabel("wavelength λ (μm)")
        left.set_ylabel("B (W m⁻² sr⁻¹ μm⁻¹)")
        left.set_title("spectra (dots) and the direct Planck fits (lines)")
        left.set_xticks([0.2, 0.5, 1.0, 2.0, 3.0], ["0.2", "0.5", "1", "2", "3"])
        left.legend(frameon=False, fontsize=8)
        right.set_xlabel("1/λ (μm⁻¹)")
        right.set_ylabel("ln(B λ⁵)")
        right.set_title("Wien's line (dashed): straight only where λT is small")
        right.legend(frameon=False, fontsize=7, loc="lower left")
        fig.suptitle(f"Temperature from a spectrum ({self.backend})")
        return fig


def wien_temperature(lam: np.ndarray, radiance: np.ndarray, *, backend: str, dtype: str, seed: int) -> float:
    """Fit ``ln(B λ⁵)`` against standardised ``1/λ`` with :func:`polylin.fit`; ``T = −c₂ / slope``."""
    u = 1.0 / lam
    scale = float(np.std(u))
    z = ((u - u.mean()) / scale)[:, None]
    result = fit(z, np.log(radiance * lam**5), backend=backend, lr=0.1, epochs=100, dtype=dtype, seed=seed)
    return float(-C2 / (float(result.w[0]) / scale))


def planck_gradient(backend: Backend, objective: PlanckObjective) -> TreeFn:
    """``(params, X, y) -> grads`` of ``objective``: the backend's autodiff, or the hand-derived
    :meth:`PlanckObjective.gradient` on a backend without one (NumPy)."""
    return backend.gradient(objective) if backend.has_autodiff else objective.gradient


def direct_fit(
    lam: np.ndarray,
    radiance: np.ndarray,
    start_temperature: float,
    *,
    backend: str,
    dtype: str,
    lr: float = 0.05,
    steps: int = 4000,
) -> tuple[float, float, np.ndarray]:
    """Full-batch gradient descent on :class:`PlanckObjective`; returns ``(T, ε, losses)``.

    ``losses`` holds the loss before every 100th step and before the last one.
    """
    be = get_backend(backend, dtype=dtype)
    with be.context():
        objective = PlanckObjective(be.xp)
        gradient = planck_gradient(be, objective)
        X, y = be.asarray(lam[:, None]), be.asarray(np.log(radiance))
        params = be.parameters(np.array([C2 / start_temperature]), np.zeros(1), trainable=be.has_autodiff)

        def step(params: Params, X: Array, y: Array) -> Params:
            return be.update(params, gradient(params, X, y), lr)

        loss: LossFn = objective
        if be.name == "jax":
            # JAX only, and only here: the step (gradient and update) and the loss each compiled into
            # one program. Eager, every array operation is a dispatch of its own and compiles its own
            # kernel on first use: measured (JAX 0.4.30, CPU), one fit of 4000 steps then took about
            # 0.25 s instead of 0.1 s.
            import jax

            step, loss = jax.jit(step), jax.jit(objective)

        losses = []
        for k in range(steps):
            if k % 100 == 0 or k == steps - 1:
                losses.append(scalar(be, loss(params, X, y)))
            params = step(params, X, y)
        theta, beta = (scalar(be, p) for p in params)
    return C2 / theta, float(np.exp(beta)), np.asarray(losses)


def planck(
    backend: str = "numpy",
    *,
    temperatures: tuple[float, ...] = TEMPERATURES,
    steps: int = 4000,
    seed: int = 0,
    dtype: str = "float64",
) -> PlanckResult:
    """Recover each temperature from its synthetic spectrum, by Wien's line and by Planck's curve."""
    wien, direct, emissivity, losses, spectra = [], [], [], [], []
    for temperature in temperatures:
        lam, radiance = spectrum(temperature, seed=seed)
        spectra.append((lam, radiance))
        wien.append(wien_temperature(lam, radiance, backend=backend, dtype=dtype, seed=seed))
        t_hat, eps, trace = direct_fit(lam, radiance, wien[-1], backend=backend, dtype=dtype, steps=steps)
        direct.append(t_hat)
        emissivity.append(eps)
        losses.append(trace)
    return PlanckResult(
        backend, tuple(temperatures), np.array(wien), np.array(direct), np.array(emissivity), losses, spectra
    )
