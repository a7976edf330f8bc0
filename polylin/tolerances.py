"""The parity tolerances, stated once, with the reasons.

Every backend sees the same data, initial parameters and batch order, so two
backends differ only by floating-point rounding: their matrix products and
means add up the same numbers in different orders (different BLAS, XLA and
MXNet kernels). With ε the machine epsilon of the dtype (1.19e-7 for
float32, 2.22e-16 for float64):

* **Parameters.** Each SGD step adds a rounding difference of a few ε·|p|,
  and on a strongly convex objective SGD contracts old differences, so they
  stay at a few ε rather than growing with the number of steps. Measured on
  the book's setup over the parity matrix (3 epochs, batch 10 and 7, every
  loss, shuffled and not): at most 4ε. The tolerance is ``64·ε·(1 + |p|)``,
  more than 10× above what was measured.
* **Losses.** The loss is a mean of l(r) with residuals r ≈ 0.01 computed as
  ``Xw + b − y`` from terms of size |y| ≈ 5: the subtraction cancels, so the
  relative error of r, and of the loss, is about |y|/|r| ≈ 500 times ε.
  Measured: at most 240ε (float32), 160ε (float64). The tolerance is a
  relative ``2000·ε``.
* **Gradients.** Autodiff and hand-derived gradients evaluate the same
  formula, so they agree to ``100·ε`` relative to the gradient's size.
  Against central finite differences (step h, float64 only) the truncation
  error is O(h²) and the rounding error O(ε/h); with h = 1e-6 both are below
  1e-9, and the tolerance is 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from polylin.dtypes import SUPPORTED_DTYPES, canonical_dtype

PARAM_EPS_FACTOR = 64
LOSS_EPS_FACTOR = 2000
GRAD_EPS_FACTOR = 100
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_RTOL = 1e-6


@dataclass(frozen=True)
class Tolerance:
    """Tolerances for one dtype."""

    dtype: str
    eps: float

    @property
    def param_atol(self) -> float:
        """Absolute tolerance on a parameter of size ~1 (scale by 1 + |p|)."""
        return PARAM_EPS_FACTOR * self.eps

    @property
    def loss_rtol(self) -> float:
        return LOSS_EPS_FACTOR * self.eps

    @property
    def grad_rtol(self) -> float:
        return GRAD_EPS_FACTOR * self.eps

    def params_close(self, a: np.ndarray, reference: np.ndarray) -> bool:
        a64, ref64 = np.asarray(a, np.float64), np.asarray(reference, np.float64)
        return bool(np.all(np.abs(a64 - ref64) <= self.param_atol * (1.0 + np.abs(ref64))))

    def losses_close(self, a: np.ndarray, reference: np.ndarray) -> bool:
        a64, ref64 = np.asarray(a, np.float64), np.asarray(reference, np.float64)
        return bool(np.all(np.abs(a64 - ref64) <= self.loss_rtol * np.abs(ref64)))


def tolerance_for(dtype: object) -> Tolerance:
    """The :class:`Tolerance` for ``"float32"`` or ``"float64"``."""
    name = canonical_dtype(dtype)
    return Tolerance(name, float(np.finfo(SUPPORTED_DTYPES[name]).eps))
