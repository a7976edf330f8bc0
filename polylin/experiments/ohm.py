"""Exercise: you are Georg Simon Ohm. Can you use autodiff to learn the parameters of your model?

Synthetic bench measurements: five resistors (2.2 Ω to 470 Ω), each driven at
50 voltages between 1 V and 30 V, the current read by a meter with 0.5 %
noise. The model is Ohm's law, ``V = R·I``: feature ``I``, label ``V``, one
weight ``R`` and **no intercept** (``fit(..., fit_intercept=False)``), because
no current flows at zero volts.

The trouble is scale. In raw units the 2.2 Ω resistor draws up to 14 A and the
470 Ω one at most 64 mA, so the curvature of the loss, ``mean(I²)``, spans
five orders of magnitude. SGD needs ``lr < 2/mean(I²)`` to stay stable and
takes about ``1/(lr·mean(I²))`` steps per e-fold of progress, so one learning
rate cannot serve them all: lr 0.03 diverges on the small resistors, and a
learning rate small enough for them leaves the 470 Ω weight where it started.
Dividing the feature by its root mean square (no centring: there is no
intercept to absorb it) makes every curvature 1; then lr 0.03 recovers every
R, and ``R = w / rms(I)`` undoes the scaling.

One model per resistor is needed: pooling all the measurements into one
slope gives a resistance that describes none of them. Putting the resistors
side by side as five columns (``I`` times a one-hot indicator of the
resistor) recovers all five in one fit without intercept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from polylin.api import fit
from polylin.experiments._common import ExperimentResult, divergence_expected, table
from polylin.result import FitResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RESISTANCES = (2.2, 10.0, 47.0, 100.0, 470.0)
VOLTAGES = (1.0, 30.0)
METER_NOISE = 0.005


def measurements(
    resistances: tuple[float, ...] = RESISTANCES, per_resistor: int = 50, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(I, V, which)``: currents (A), voltages (V) and the resistor index, sorted by resistor."""
    rng = np.random.default_rng([seed, 7])
    currents, volts, which = [], [], []
    for k, resistance in enumerate(resistances):
        v = rng.uniform(*VOLTAGES, per_resistor)
        currents.append(v / resistance * (1 + METER_NOISE * rng.normal(size=per_resistor)))
        volts.append(v)
        which.append(np.full(per_resistor, k))
    return np.concatenate(currents), np.concatenate(volts), np.concatenate(which)


@dataclass
class OhmResult(ExperimentResult):
    """Recovered resistances per strategy; ``nan`` where a fit diverged."""

    backend: str
    resistances: tuple[float, ...]
    curvature: np.ndarray
    raw: list[FitResult]
    raw_tiny: list[FitResult]
    tiny_lr: float
    standardised: np.ndarray
    joint: np.ndarray
    pooled: float
    data: tuple[np.ndarray, np.ndarray, np.ndarray]
    name: str = field(default="ohm", init=False)

    @staticmethod
    def _estimate(result: FitResult) -> float:
        return float("nan") if result.diverged_at is not None else float(result.w[0])

    def raw_estimates(self) -> np.ndarray:
        return np.array([self._estimate(r) for r in self.raw])

    def raw_tiny_estimates(self) -> np.ndarray:
        return np.array([self._estimate(r) for r in self.raw_tiny])

    def relative_errors(self, estimates: np.ndarray) -> np.ndarray:
        return np.asarray(np.abs(estimates - np.array(self.resistances)) / np.array(self.resistances))

    def summary(self) -> str:
        rows = []
        for k, resistance in enumerate(self.resistances):
            raw = self.raw[k]
            rows.append(
                (
                    f"{resistance:g} Ω",
                    f"{self.curvature[k]:.3g}",
                    f"diverged (epoch {raw.diverged_at[0]})" if raw.diverged_at else f"{raw.w[0]:.3f}",
                    f"{self.raw_tiny_estimates()[k]:.3f}",
                    f"{self.standardised[k]:.3f}",
                    f"{self.joint[k]:.3f}",
                )
            )
        return (
            f"Ohm's law on {self.backend}: V = R·I, no intercept, {len(self.data[0])} measurements\n"
            + table(
                (
                    "resistor",
                    "mean(I²)",
                    "raw, lr 0.03",
                    f"raw, lr {self.tiny_lr:g}",
                    "standardised, lr 0.03",
                    "one fit, 5 columns",
                ),
                rows,
            )
            + f"\nlargest relative error, standardised: {self.relative_errors(self.standardised).max():.2%}; "
            f"one fit with 5 columns: {self.relative_errors(self.joint).max():.2%}"
            f"\none slope for all the measurements pooled: R = {self.pooled:.2f} Ω (describes none of them)"
        )

    def figure(self) -> Figure:
        from polylin.plot import COLOURS, _new_figure

        current, volts, which = self.data
        fig = _new_figure(11.0, 4.4)
        left, right = fig.subplots(1, 2)
        for k, resistance in enumerate(self.resistances):
            mask = which == k
            left.scatter(current[mask], volts[mask], s=8, color=COLOURS[k], label=f"{resistance:g} Ω")
            grid = np.geomspace(current[mask].min(), current[mask].max(), 2)
            left.plot(grid, self.standardised[k] * grid, color="black", linewidth=0.8)
        left.set_xscale("log")
        left.set_yscale("log")
        left.set_xlabel("current I (A, log scale)")
        left.set_ylabel("voltage V (V, log scale)")
        left.set_title("measurements and fitted V = R·I (standardised fits)")
        left.legend(frameon=False, fontsize=8, title="resistor", title_fontsize=8, loc="upper left")
        positions = np.arange(len(self.resistances))
        strategies = {
            "raw, lr 0.03": self.raw_estimates(),
            f"raw, lr {self.tiny_lr:g}": self.raw_tiny_estimates(),
            "standardised, lr 0.03": self.standardised,
            "one fit, 5 columns": self.joint,
        }
        width = 0.8 / len(strategies)
        palette = ("#7f7f7f", "#c7a76c", "#2ca02c", "#17becf")
        for k, (label, estimates) in enumerate(strategies.items()):
            errors = self.relative_errors(estimates)
            x = positions + (k - (len(strategies) - 1) / 2) * width
            finite = np.isfinite(errors)
            right.bar(x[finite], np.maximum(errors[finite], 1e-5), width, color=palette[k], label=label)
            for xi in x[~finite]:
                right.text(
                    xi,
                    1.5e-5,
                    "diverged",
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=9,
                    color="#b22222",
                    fontweight="bold",
                )
        right.set_yscale("log")
        right.set_ylim(1e-5, 10)
        right.set_xticks(positions, [f"{r:g} Ω" for r in self.resistances])
        right.set_ylabel("|R fitted − R| / R")
        right.set_title("relative error of the recovered resistance")
        right.legend(frameon=False, fontsize=8, loc="upper left")
        fig.suptitle(f"Ohm's law ({self.backend}): raw units need one learning rate per resistor")
        return fig


def ohm(
    backend: str = "numpy",
    *,
    per_resistor: int = 50,
    epochs: int = 100,
    tiny_lr: float = 1e-3,
    seed: int = 0,
    dtype: str = "float32",
) -> OhmResult:
    """Recover each resistance from noisy (I, V) measurements, in raw and in standardised units."""
    current, volts, which = measurements(per_resistor=per_resistor, seed=seed)
    options: dict[str, Any] = {
        "backend": backend,
        "epochs": epochs,
        "seed": seed,
        "dtype": dtype,
        "fit_intercept": False,
    }
    raw, raw_tiny, standardised, curvature = [], [], [], []
    with divergence_expected():
        for k in range(len(RESISTANCES)):
            amps, V = current[which == k, None], volts[which == k]
            curvature.append(float(np.mean(amps**2)))
            # Raw units on purpose: the stability check would (rightly) warn about the first one.
            raw.append(fit(amps, V, lr=0.03, on_divergence="stop", check_stability=False, **options))
            raw_tiny.append(fit(amps, V, lr=tiny_lr, on_divergence="stop", check_stability=False, **options))
            rms = float(np.sqrt(np.mean(amps**2)))
            standardised.append(float(fit(amps / rms, V, lr=0.03, **options).w[0]) / rms)
    # All five resistors in one fit: column k holds I where the measurement is from resistor k.
    columns = np.zeros((len(current), len(RESISTANCES)))
    columns[np.arange(len(current)), which] = current
    scale = np.sqrt(np.mean(columns**2, axis=0))
    joint = fit(columns / scale, volts, lr=0.03, **options)
    pooled = float(current @ volts / (current @ current))  # the least-squares slope through the origin
    return OhmResult(
        backend,
        RESISTANCES,
        np.array(curvature),
        raw,
        raw_tiny,
        tiny_lr,
        np.array(standardised),
        np.asarray(joint.w, dtype=np.float64) / scale,
        pooled,
        (current, volts, which),
    )
