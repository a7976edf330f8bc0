"""The losses, written once against an array namespace ``xp``.

Every loss is a function of the residual ``r = ŷ − y`` and is averaged over
the examples of a batch. The squared loss carries the book's ½:
``l(r) = ½ r²``, so its derivative is simply ``r`` (scikit-learn's
``SGDRegressor`` uses the same convention; ``torch.nn.MSELoss`` does not).

Each loss also states its derivative ``dl/dr``, from which the hand-derived
gradients in :mod:`polylin.objective` follow by the chain rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from polylin.types import Array, Namespace

HUBER_DELTA = 1.0


@dataclass(frozen=True)
class Loss:
    """A pointwise loss of the residual and its derivative."""

    name: str
    pointwise: Callable[[Namespace, Array], Array]
    derivative: Callable[[Namespace, Array], Array]
    formula: str


def _squared(xp: Namespace, r: Array) -> Array:
    return 0.5 * (r * r)


def _squared_derivative(xp: Namespace, r: Array) -> Array:
    return r


def _absolute(xp: Namespace, r: Array) -> Array:
    return xp.abs(r)


def _absolute_derivative(xp: Namespace, r: Array) -> Array:
    return xp.sign(r)


def _huber(xp: Namespace, r: Array) -> Array:
    # With q = clip(r, −δ, δ): ½q² + δ(|r| − |q|) is ½r² where |r| ≤ δ and
    # δ(|r| − ½δ) outside, with no branch, and its derivative is q.
    q = xp.clip(r, -HUBER_DELTA, HUBER_DELTA)
    return 0.5 * (q * q) + HUBER_DELTA * (xp.abs(r) - xp.abs(q))


def _huber_derivative(xp: Namespace, r: Array) -> Array:
    return xp.clip(r, -HUBER_DELTA, HUBER_DELTA)


LOSSES: dict[str, Loss] = {
    "squared": Loss("squared", _squared, _squared_derivative, "½(ŷ−y)²"),
    "absolute": Loss("absolute", _absolute, _absolute_derivative, "|ŷ−y|"),
    "huber": Loss(
        "huber",
        _huber,
        _huber_derivative,
        f"½(ŷ−y)² if |ŷ−y| ≤ {HUBER_DELTA}, else {HUBER_DELTA}(|ŷ−y| − {HUBER_DELTA / 2})",
    ),
}


def get_loss(name: str) -> Loss:
    """Look a loss up by name, with an error that lists the known ones."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        from polylin.suggest import did_you_mean

        raise ValueError(
            f"loss={name!r} is not a known loss; choose one of {sorted(LOSSES)}.{did_you_mean(name, LOSSES)}"
        ) from None
