"""The linear model, the minibatch objective and its hand-derived gradient.

:class:`Objective` is written once against an array namespace ``xp``, so the
same code runs on NumPy (through array-api-compat), on any other Array API
library and, for autodiff, on each framework's own differentiable namespace.

Parameters are the pair ``(w, b)`` with ``w`` of shape ``(d,)`` and ``b`` of
shape ``(1,)``; ``y`` always has shape ``(n,)``, so ``ŷ − y`` can never
broadcast to ``(n, n)`` (the bug behind the book's "why reshape?" exercise).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from polylin.losses import Loss

Array = Any
Namespace = Any
Params = tuple[Any, Any]
#: ``(X, w, b) -> X w + b``: a backend may supply a fused kernel for it (torch's ``addmv``).
Affine = Callable[[Array, Array, Array], Array]
#: ``(X, w, b, y) -> X w + b − y``: a backend may supply one that subtracts in place.
Residual = Callable[[Array, Array, Array, Array], Array]


def predict(xp: Namespace, params: Params, X: Array) -> Array:
    """``ŷ = X w + b``, shape ``(n,)``."""
    w, b = params
    return xp.matmul(X, w) + b


def chain_rule(xp: Namespace, g: Array, X: Array) -> Params:
    """``(Xᵀg, Σᵢ gᵢ)``: the gradient in ``(w, b)`` of ``Σᵢ l(ŷᵢ − yᵢ)`` from each example's
    ``gᵢ = ∂l/∂ŷᵢ``, for the linear model ``ŷ = X w + b``."""
    return xp.matmul(g, X), xp.sum(g, axis=0, keepdims=True)


@dataclass(frozen=True)
class Objective:
    """The mean loss over a batch, ``L(w, b) = (1/m) Σᵢ l(xᵢᵀw + b − yᵢ)``, and its gradient.

    ``m`` is the number of examples actually in the batch, so a short last
    batch is normalised by its own size, not by the nominal batch size.

    :meth:`total` and :meth:`total_gradient` are the same without the ``1/m``:
    the book's ``l.sum().backward()``, whose SGD step then divides by the
    batch size (see :func:`polylin.training.make_sgd_step`). ``affine``
    computes ``X w + b``; ``None`` means ``xp.matmul(X, w) + b``. ``fused_residual``,
    when given, computes ``X w + b − y`` in its place. :meth:`for_backend` takes both
    from a backend.
    """

    xp: Namespace
    loss: Loss
    affine: Affine | None = field(default=None, kw_only=True)
    fused_residual: Residual | None = field(default=None, kw_only=True)

    @classmethod
    def for_backend(cls, backend: Any, loss: Loss) -> Objective:
        """The objective on ``backend``'s namespace, with the fused kernels it offers."""
        return cls(backend.xp, loss, affine=backend.affine, fused_residual=backend.fused_residual)

    def residual(self, params: Params, X: Array, y: Array) -> Array:
        """``r = X w + b − y``, shape ``(m,)``."""
        if self.fused_residual is not None:
            return self.fused_residual(X, params[0], params[1], y)
        fitted = predict(self.xp, params, X) if self.affine is None else self.affine(X, *params)
        return fitted - y

    def residual_derivative(self, params: Params, X: Array, y: Array) -> Array:
        """``gᵢ = l'(rᵢ)``, the derivative of :meth:`total` in each prediction ``ŷᵢ``: what a
        backend's :meth:`~polylin.backends.base.Backend.descend` turns into the SGD step."""
        return self.loss.derivative(self.xp, self.residual(params, X, y))

    def __call__(self, params: Params, X: Array, y: Array) -> Array:
        return self.xp.mean(self.loss.pointwise(self.xp, self.residual(params, X, y)))

    def total(self, params: Params, X: Array, y: Array) -> Array:
        """``Σᵢ l(rᵢ)``: the batch's summed loss (the mean times ``m``)."""
        return self.xp.sum(self.loss.pointwise(self.xp, self.residual(params, X, y)))

    def total_gradient(self, params: Params, X: Array, y: Array) -> Params:
        """The gradient of :meth:`total`, derived by hand: with ``gᵢ = l'(rᵢ)``,
        ``Xᵀg`` and ``Σᵢ gᵢ``."""
        return chain_rule(self.xp, self.residual_derivative(params, X, y), X)

    def gradient(self, params: Params, X: Array, y: Array) -> Params:
        """The gradient derived by hand: with ``r = Xw + b − y`` and ``gᵢ = l'(rᵢ)/m``,
        ``∂L/∂w = Xᵀg`` and ``∂L/∂b = Σᵢ gᵢ``."""
        return chain_rule(self.xp, self.loss.derivative(self.xp, self.residual(params, X, y)) / X.shape[0], X)

    def value_and_gradient(self, params: Params, X: Array, y: Array) -> tuple[Array, Params]:
        """Both at once, sharing the residual."""
        xp = self.xp
        residual = self.residual(params, X, y)
        value = xp.mean(self.loss.pointwise(xp, residual))
        return value, chain_rule(self.xp, self.loss.derivative(xp, residual) / X.shape[0], X)
