"""The array namespace of the MXNet backend: Array API names over MXNet's legacy ``nd`` operators.

The shared objective calls a handful of Array API functions (``matmul``,
``sum``, ``mean``, ``take``, ``clip``, ...). MXNet offers them twice: in
``mxnet.np``, whose every call goes through a NumPy-compatible front end
(10 to 30 µs each on this CPU), and as the legacy ``mxnet.nd`` operators,
which reach the same kernels in a few µs. This namespace maps the Array API
names onto ``nd``; its arrays support ``+ − * /`` with broadcasting, ``shape``,
slicing and ``mxnet.autograd`` as the ``mxnet.np`` ones do.

Legacy ``nd`` has no 0-d arrays: a full reduction such as ``sum(x)`` has
shape ``(1,)``, which every caller in polylin accepts (``float()`` of it, or
``backward()`` from it).
"""

from __future__ import annotations

import functools
from typing import Any

from polylin.backends.namespaces import FastNamespace
from polylin.types import Array


@functools.cache
def nd_namespace(nd: Any) -> FastNamespace:
    """The namespace over the module ``mxnet.nd`` (one object, made once)."""

    def matmul(a: Array, b: Array, /) -> Array:
        return nd.dot(a, b)

    def sum_(x: Array, /, *, axis: int | None = None, keepdims: bool = False) -> Array:
        # A legacy nd sum of a 1-D array already has shape (1,); every keyword costs the front end
        # a few µs a call, so the SGD step's sum of g leaves them out.
        if axis is None or (keepdims and x.ndim == 1):
            return nd.sum(x)
        return nd.sum(x, axis=axis, keepdims=keepdims)

    def mean(x: Array, /, *, axis: int | None = None, keepdims: bool = False) -> Array:
        return nd.mean(x) if axis is None else nd.mean(x, axis=axis, keepdims=keepdims)

    def clip(x: Array, /, min: float | None = None, max: float | None = None) -> Array:
        lower = float("-inf") if min is None else min
        upper = float("inf") if max is None else max
        return nd.clip(x, lower, upper)

    def take(x: Array, indices: Array, /, *, axis: int | None = None) -> Array:
        # axis=0 is nd.take's default: leaving the keyword out saves a few µs a call.
        return nd.take(x, indices) if not axis else nd.take(x, indices, axis=axis)

    def reshape(x: Array, /, shape: tuple[int, ...]) -> Array:
        return x.reshape(shape)

    def astype(x: Array, dtype: Any, /) -> Array:
        return x.astype(dtype)

    def asarray(obj: Any, /, *, dtype: Any = None) -> Array:
        return nd.array(obj, dtype=dtype)

    return FastNamespace(
        __name__="polylin.backends.mxnet_namespace (mxnet.nd)",
        matmul=matmul,
        sum=sum_,
        mean=mean,
        clip=clip,
        take=take,
        reshape=reshape,
        astype=astype,
        asarray=asarray,
        abs=nd.abs,
        sign=nd.sign,
        exp=nd.exp,
        expm1=nd.expm1,
        log=nd.log,
        log1p=nd.log1p,
        sqrt=nd.sqrt,
        square=nd.square,
        zeros_like=nd.zeros_like,
    )
