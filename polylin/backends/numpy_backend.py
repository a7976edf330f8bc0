"""NumPy: no autodiff library; the gradients are the hand-derived ones.

The arithmetic goes through array-api-compat's NumPy namespace, so the
objective and its gradient are the same Array API code any compliant
library can run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polylin.backends.base import Array, Backend, Params, ValueAndGradFn


class NumpyBackend(Backend):
    """Hand-derived gradients on NumPy arrays, updated in place."""

    name = "numpy"
    has_autodiff = False

    def __init__(self, dtype: object = "float32", device: object = None) -> None:
        import array_api_compat.numpy as xp

        self._xp = xp
        super().__init__(dtype, device)

    @property
    def version(self) -> str:
        return np.__version__

    @property
    def xp(self) -> Any:
        return self._xp

    def asarray(self, host: np.ndarray) -> Array:
        return np.asarray(host, dtype=self.np_dtype)

    def index_array(self, host: np.ndarray) -> Array:
        return np.asarray(host, dtype=np.intp)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def owns(self, x: object) -> bool:
        return isinstance(x, np.ndarray)

    def parameters(self, w: np.ndarray, b: np.ndarray, trainable: bool) -> Params:
        # Always fresh copies: the update writes into them.
        return np.array(w, dtype=self.np_dtype), np.array(b, dtype=self.np_dtype)

    def take(self, X: Array, idx: Array) -> Array:
        return X.take(idx, axis=0)

    def value_and_grad(self, objective: Any) -> ValueAndGradFn:
        hand_derived = getattr(objective, "value_and_gradient", None)
        if hand_derived is None:
            raise TypeError(
                "The numpy backend has no autodiff: it needs an objective with a "
                "hand-derived gradient (a polylin.objective.Objective)."
            )
        return hand_derived  # type: ignore[no-any-return]

    def grad(self, objective: Any) -> Any:
        self.value_and_grad(objective)  # same check and message
        return objective.gradient

    def update(self, params: Params, grads: Params, lr: float) -> Params:
        for param, grad in zip(params, grads, strict=True):
            param -= lr * grad
        return params
