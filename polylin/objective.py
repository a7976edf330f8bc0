"""The linear model, the minibatch objective and its hand-derived gradient.

:class:`Objective` is written once against an array namespace ``xp``, so the
same code runs on NumPy (through array-api-compat), on any other Array API
library and, for autodiff, on each framework's own differentiable namespace.

Parameters are the pair ``(w, b)`` with ``w`` of shape ``(d,)`` and ``b`` of
shape ``(1,)``; ``y`` always has shape ``(n,)``, so ``ŷ − y`` can never
broadcast to ``(n, n)`` (the bug behind the book's "why reshape?" exercise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polylin.losses import Loss

Array = Any
Namespace = Any
Params = tuple[Any, Any]


def predict(xp: Namespace, params: Params, X: Array) -> Array:
    """``ŷ = X w + b``, shape ``(n,)``."""
    w, b = params
    return xp.matmul(X, w) + b


@dataclass(frozen=True)
class Objective:
    """The mean loss over a batch, ``L(w, b) = (1/m) Σᵢ l(xᵢᵀw + b − yᵢ)``, and its gradient.

    ``m`` is the number of examples actually in the batch, so a short last
    batch is normalised by its own size, not by the nominal batch size.
    """

    xp: Namespace
    loss: Loss

    def __call__(self, params: Params, X: Array, y: Array) -> Array:
        residual = predict(self.xp, params, X) - y
        return self.xp.mean(self.loss.pointwise(self.xp, residual))

    def gradient(self, params: Params, X: Array, y: Array) -> Params:
        """The gradient derived by hand: with ``r = Xw + b − y`` and ``gᵢ = l'(rᵢ)/m``,
        ``∂L/∂w = Xᵀg`` and ``∂L/∂b = Σᵢ gᵢ``."""
        xp = self.xp
        residual = predict(xp, params, X) - y
        g = self.loss.derivative(xp, residual) / X.shape[0]
        return xp.matmul(g, X), xp.sum(g, axis=0, keepdims=True)

    def value_and_gradient(self, params: Params, X: Array, y: Array) -> tuple[Array, Params]:
        """Both at once, sharing the residual."""
        xp = self.xp
        residual = predict(xp, params, X) - y
        value = xp.mean(self.loss.pointwise(xp, residual))
        g = self.loss.derivative(xp, residual) / X.shape[0]
        return value, (xp.matmul(g, X), xp.sum(g, axis=0, keepdims=True))
