"""Hand-written SGD loops, one module per framework, written the way an expert writes them directly.

Every loop trains the same model as polylin (``ŷ = Xw + b``, the mean of
½(ŷ − y)² over a batch, plain SGD) on the same data, from the same initial
parameters, in the same batch order, so that its parameters can be compared
with polylin's number for number and its epoch time with polylin's.

:func:`references_for` imports a framework only when its loops are asked for.
"""

from __future__ import annotations

import importlib

from benchmarks.references.base import Reference

#: Backend → the module holding its loops.
MODULES = {
    "numpy": "benchmarks.references.numpy_loops",
    "jax": "benchmarks.references.jax_loops",
    "torch": "benchmarks.references.torch_loops",
    "mxnet": "benchmarks.references.mxnet_loops",
}


def references_for(backend: str) -> list[type[Reference]]:
    """Every hand-written loop for ``backend`` (its framework is imported here)."""
    module = importlib.import_module(MODULES[backend])
    return list(module.REFERENCES)


__all__ = ["MODULES", "Reference", "references_for"]
