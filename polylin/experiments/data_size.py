"""How the error in ``w`` and ``b`` depends on the amount of data.

``n`` runs over 14 log-spaced values from 5 to 10,000. Log spacing, because
the error of a least-squares estimate falls like ``σ/√n``: a power law, which
is a straight line of slope −½ on log-log axes, and which changes as much
from 5 to 50 as from 1,000 to 10,000. Linearly spaced points would pile up at
large ``n``, where nothing happens, and leave one or two for the small ``n``
where everything does.

For each ``n`` and each of a few seeds, the book's SGD (lr 0.03, batch 10 or
``n`` if smaller, at least 3 epochs and at least 300 steps) is compared with
the exact least-squares solution, which is the best any method can do with
that data. Three regimes show up: for tiny ``n`` SGD has not converged in its
budget (a few random points make a badly conditioned problem); in between it
follows the ``σ/√n`` of least squares; for large ``n`` it stops improving,
because a constant learning rate leaves SGD jittering around the optimum
with an amplitude set by ``lr``, the batch size and the noise, not by ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from polylin.api import fit
from polylin.data import BOOK_NOISE, BOOK_TRUE_B, BOOK_TRUE_W, synthetic_data
from polylin.experiments._common import ExperimentResult, table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SIZES = tuple(int(n) for n in np.unique(np.round(np.geomspace(5, 10_000, 14)).astype(int)))
MIN_STEPS = 300


@dataclass
class DataSizeResult(ExperimentResult):
    """Errors per size (rows) and repeat (columns): SGD's and exact least squares'."""

    backend: str
    sizes: np.ndarray
    sgd_w_error: np.ndarray
    sgd_b_error: np.ndarray
    lstsq_w_error: np.ndarray
    lstsq_b_error: np.ndarray
    epochs: np.ndarray
    noise: float = BOOK_NOISE
    name: str = field(default="data-size", init=False)

    def median(self, which: str) -> np.ndarray:
        """The median over repeats of ``'sgd_w_error'``, ``'lstsq_b_error'``, ..."""
        return np.asarray(np.median(getattr(self, which), axis=1))

    def lstsq_slope(self) -> float:
        """The slope of log(median least-squares w error) against log n (theory: −½)."""
        return float(np.polyfit(np.log(self.sizes), np.log(self.median("lstsq_w_error")), 1)[0])

    def summary(self) -> str:
        rows = [
            (
                n,
                e,
                f"{sw:.2e}",
                f"{lw:.2e}",
                f"{sb:.2e}",
                f"{lb:.2e}",
                f"{self.noise * np.sqrt(len(BOOK_TRUE_W) / n):.2e}",
            )
            for n, e, sw, lw, sb, lb in zip(
                self.sizes,
                self.epochs,
                self.median("sgd_w_error"),
                self.median("lstsq_w_error"),
                self.median("sgd_b_error"),
                self.median("lstsq_b_error"),
                strict=True,
            )
        ]
        return (
            f"Amount of data on {self.backend}: median over {self.sgd_w_error.shape[1]} seeds "
            "(|w err| is the Euclidean norm)\n"
            + table(
                (
                    "n",
                    "epochs",
                    "SGD |w err|",
                    "lstsq |w err|",
                    "SGD |b err|",
                    "lstsq |b err|",
                    "σ·sqrt(d/n)",
                ),
                rows,
            )
            + f"\nleast-squares error ∝ n^{self.lstsq_slope():.2f} (theory: n^-0.5)"
        )

    def figure(self) -> Figure:
        from polylin.plot import COLOURS, _new_figure

        fig = _new_figure(10.0, 4.2)
        axes = fig.subplots(1, 2, sharey=True)
        for ax, which, title in ((axes[0], "w", "error in w (norm)"), (axes[1], "b", "error in b")):
            sgd, exact = getattr(self, f"sgd_{which}_error"), getattr(self, f"lstsq_{which}_error")
            ax.fill_between(self.sizes, sgd.min(axis=1), sgd.max(axis=1), color=COLOURS[0], alpha=0.15)
            ax.plot(self.sizes, np.median(sgd, axis=1), "o-", color=COLOURS[0], label="SGD, book settings")
            ax.fill_between(self.sizes, exact.min(axis=1), exact.max(axis=1), color=COLOURS[1], alpha=0.15)
            ax.plot(self.sizes, np.median(exact, axis=1), "s-", color=COLOURS[1], label="exact least squares")
            dims = len(BOOK_TRUE_W) if which == "w" else 1
            ax.plot(self.sizes, self.noise * np.sqrt(dims / self.sizes), "k:", label="σ·sqrt(d/n), slope −½")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("number of examples n (log scale)")
            ax.set_title(title)
            ax.grid(True, which="major", alpha=0.3)
        axes[0].set_ylabel("|true − fitted|  (median; band: min to max)")
        axes[0].legend(frameon=False, fontsize=8, loc="lower left")
        fig.suptitle(f"Amount of data ({self.backend}): n log-spaced from 5 to 10,000")
        return fig


def data_size(
    backend: str = "numpy",
    *,
    sizes: tuple[int, ...] = SIZES,
    repeats: int = 10,
    lr: float = 0.03,
    dtype: str = "float32",
) -> DataSizeResult:
    """Fit the book's model on ``n`` examples for each ``n`` in ``sizes``, ``repeats`` seeds each."""
    shape = (len(sizes), repeats)
    sgd_w, sgd_b, ls_w, ls_b = (np.empty(shape) for _ in range(4))
    epochs_used = np.empty(len(sizes), dtype=int)
    true = np.array([*BOOK_TRUE_W, BOOK_TRUE_B])
    for i, n in enumerate(sizes):
        batch_size = min(10, n)
        epochs = max(3, -(-MIN_STEPS // -(-n // batch_size)))
        epochs_used[i] = epochs
        for seed in range(repeats):
            X, y = synthetic_data(n=n, seed=seed, dtype=dtype)
            result = fit(
                X,
                y,
                backend=backend,
                lr=lr,
                batch_size=batch_size,
                epochs=epochs,
                seed=seed,
                dtype=dtype,
                true_w=BOOK_TRUE_W,
                true_b=BOOK_TRUE_B,
            )
            sgd_w[i, seed] = float(np.linalg.norm(np.asarray(result.w_error)))
            sgd_b[i, seed] = abs(float(result.b_error or 0.0))
            design = np.column_stack([X.astype(np.float64), np.ones(n)])
            exact = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)[0]
            ls_w[i, seed] = float(np.linalg.norm(exact[:-1] - true[:-1]))
            ls_b[i, seed] = abs(float(exact[-1] - true[-1]))
    return DataSizeResult(backend, np.asarray(sizes), sgd_w, sgd_b, ls_w, ls_b, epochs_used)
