"""The few type names the loop, the objective and the backends share.

Arrays are whatever a framework calls an array, so they are typed ``Any``:
no common protocol covers NumPy, JAX, torch and MXNet arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: One framework's array (NumPy, JAX, torch, MXNet, or any Array API library's).
Array = Any
#: An Array API namespace (``array_api_compat.numpy``, ``jax.numpy``, ...).
Namespace = Any
#: The model's parameters ``(w, b)``: ``w`` of shape ``(d,)``, ``b`` of shape ``(1,)``.
Params = tuple[Array, Array]
#: ``(params, X, y) -> scalar``: a loss over a batch, or over the full data.
LossFn = Callable[[Params, Array, Array], Array]
#: ``(params, X, y) -> grads``: a gradient, shaped like the parameters.
TreeFn = Callable[[Params, Array, Array], Params]
#: ``(params, X, y, idx) -> params``: one minibatch SGD step on the rows ``idx``.
StepFn = Callable[[Params, Array, Array, Array], Params]
#: ``(params, order) -> (params, loss)``: one epoch in ``order`` (a host NumPy integer array, which
#: the runner moves to its device), then the full-data loss.
EpochFn = Callable[[Params, "np.ndarray"], tuple[Params, Array]]
