"""The linear model, the loss over a batch, and its gradient derived by hand.

:class:`Objective` is written once against an Array API namespace ``xp``;
it knows nothing about backends. The same code runs on NumPy, on any Array
API library and, differentiated by the framework, on JAX, torch and MXNet.

Parameters are the pair ``(w, b)``, ``w`` of shape ``(d,)`` and ``b`` of
shape ``(1,)``; ``y`` always has shape ``(n,)``, so ``ŷ − y`` can never
broadcast to ``(n, n)`` (the bug behind the book's "why reshape?" exercise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from polylin.losses import Loss
from polylin.types import Array, Namespace, Params


@dataclass(frozen=True)
class Objective:
    """The loss of the linear model ``ŷ = X w + b`` over a batch of ``m`` examples.

    :meth:`mean` is ``L = (1/m) Σᵢ l(ŷᵢ − yᵢ)``, the loss polylin reports.
    :meth:`total` is the same sum without the ``1/m``, the book's
    ``l.sum()``: the SGD step differentiates it and divides the step by the
    examples actually in the batch (:func:`polylin.training.sgd_step`), so a
    short last batch is normalised by its own size. Without an intercept
    (``fit_intercept=False``) the model is ``ŷ = X w``, and ``b``'s gradient is 0.
    """

    xp: Namespace
    loss: Loss
    fit_intercept: bool = field(default=True, kw_only=True)

    def predict(self, params: Params, X: Array) -> Array:
        """``ŷ = X w + b``, shape ``(m,)``."""
        w, b = params
        return self._plus_intercept(self.xp.matmul(X, w), b)

    def _plus_intercept(self, fitted: Array, b: Array) -> Array:
        return fitted + b if self.fit_intercept else fitted

    def mean_of_fitted(self, fitted: Array, b: Array, y: Array) -> Array:
        """:meth:`mean` from ``X w`` already computed (by the check of X's values, in ``fit``)."""
        residual = self._plus_intercept(fitted, b) - y
        return self.xp.mean(self.loss.pointwise(self.xp, residual))

    def residual(self, params: Params, X: Array, y: Array) -> Array:
        """``r = ŷ − y``, shape ``(m,)``."""
        return self.predict(params, X) - y

    def total(self, params: Params, X: Array, y: Array) -> Array:
        """``Σᵢ l(rᵢ)``: the batch's summed loss, which the SGD step differentiates."""
        return self.xp.sum(self.loss.pointwise(self.xp, self.residual(params, X, y)))

    def mean(self, params: Params, X: Array, y: Array) -> Array:
        """``(1/m) Σᵢ l(rᵢ)``: the mean loss, as reported after each epoch."""
        return self.xp.mean(self.loss.pointwise(self.xp, self.residual(params, X, y)))

    __call__ = mean

    def finiteness(self, params: Params, X: Array, y: Array) -> Array:
        """0 where every parameter is finite, else NaN: what an epoch reports in place of :meth:`mean`
        when its loss is not evaluated (``fit(loss_every=k)``). ``p · 0`` is 0 for a finite ``p`` and
        NaN for an infinite or NaN one, so no overflow can raise it; it reads no data."""
        w, b = params
        xp = self.xp
        return xp.sum(w * 0.0) + xp.sum(b * 0.0)

    def gradient(self, params: Params, X: Array, y: Array) -> Params:
        """The gradient of :meth:`total`, by hand: with ``gᵢ = l'(rᵢ)``, ``(Xᵀg, Σᵢ gᵢ)``."""
        xp = self.xp
        g = self.loss.derivative(xp, self.residual(params, X, y))
        grad_b = xp.sum(g, axis=0, keepdims=True) if self.fit_intercept else xp.zeros_like(params[1])
        return xp.matmul(g, X), grad_b
