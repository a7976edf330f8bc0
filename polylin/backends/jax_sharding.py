"""JAX data parallelism, ``fit(backend="jax", workers=k)``: each global batch sharded over k devices.

A 1-D :class:`jax.sharding.Mesh` over the first ``k`` devices of the backend's
platform (starting at ``device``'s index) has one axis, ``"batch"``. The data,
the epoch's order and the parameters are replicated on every device; inside
the compiled epoch the batch's row indices are constrained to be split along
``"batch"``, so each device gathers and differentiates only its own rows, and
XLA combines the partial sums of the summed-loss gradient with an all-reduce
(GSPMD). The step is then the one-device step: the same global batch, divided
by its own size ``m``, with the same learning rate; a batch whose size does not
divide by ``k`` (the short last one) is split unevenly by XLA's padding, which
the reductions mask. The full-data loss after each epoch is split by rows the
same way.

On the CPU the k devices are host devices: XLA makes them only when
``XLA_FLAGS`` holds ``--xla_force_host_platform_device_count=k`` when jax is
first imported. :func:`polylin.fit` sets that flag itself when jax is not yet
imported; otherwise this backend says exactly what to set.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from polylin.backends.jax_backend import JaxBackend, _namespace
from polylin.backends.namespaces import namespace_with
from polylin.batching import BatchLayout
from polylin.devices import DeviceSpec
from polylin.types import Array, EpochFn, LossFn, Params, StepFn

AXIS = "batch"
HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"


def too_few_devices_message(workers: int, platform: str, found: int) -> str:
    """What to do when jax sees fewer than ``workers`` devices."""
    message = f"workers={workers} needs {workers} jax {platform} devices, but jax sees {found}."
    if platform == "cpu":
        message += (
            f" On the CPU, set XLA_FLAGS={HOST_DEVICE_FLAG}={workers} in the environment BEFORE jax is "
            f"imported (e.g. `XLA_FLAGS={HOST_DEVICE_FLAG}={workers} python script.py`): jax was already "
            "imported in this process, so polylin could not set it for you. Setting it after "
            "`import jax` has no effect."
        )
    else:
        message += f" Use workers <= {found}, or a machine with more {platform} devices."
    return message


@dataclass(frozen=True)
class _RowSharded:
    """``loss`` with ``X`` and ``y`` split by rows over the mesh (inside ``jit``); compares by value
    so that compiled epochs are cached across fits."""

    loss: LossFn
    rows: Any
    vector: Any

    def __call__(self, params: Params, X: Array, y: Array) -> Array:
        import jax

        constrain: Any = jax.lax.with_sharding_constraint
        return self.loss(params, constrain(X, self.rows), constrain(y, self.vector))


@functools.cache
def _sharded_namespace(mesh: Any) -> Any:
    """``jax.numpy`` whose ``take`` splits the gathered rows over ``mesh`` under ``jit``.

    The indices are constrained first, so each device gathers its own rows of the
    replicated data locally (no communication); outside ``jit`` (an eager replay)
    ``take`` is the plain one, since XLA pads uneven shards only inside a program.
    """
    import jax
    import jax.numpy as jnp
    import jax.sharding

    sharding: Any = jax.sharding  # jax's sharding classes are untyped for mypy
    NamedSharding, PartitionSpec = sharding.NamedSharding, sharding.PartitionSpec
    base = _namespace()
    vector = NamedSharding(mesh, PartitionSpec(AXIS))
    constrain: Any = jax.lax.with_sharding_constraint

    def take(x: Array, indices: Array, /, *, axis: int = 0) -> Array:
        if axis != 0 or not isinstance(indices, jax.core.Tracer):
            return base.take(x, indices, axis=axis)
        rows = NamedSharding(mesh, PartitionSpec(AXIS, *([None] * (x.ndim - 1))))
        return constrain(jnp.take(x, constrain(indices, vector), axis=0, mode="clip"), rows)

    return namespace_with(base, take=take)


class ShardedJaxBackend(JaxBackend):
    """:class:`JaxBackend` over a mesh of ``workers`` devices: data parallel, parameters replicated."""

    host_parameters = False  # replicated over the mesh, explicitly
    host_data_max_bytes = 0  # laid out over the mesh by asarray, however small

    def holds(self, x: Any) -> bool:
        return False  # data goes through asarray, which lays it out over the mesh

    def __init__(
        self,
        dtype: object = "float32",
        device: object = None,
        *,
        workers: int = 2,
        fused_epoch: bool = True,
        host_loss: bool = True,
    ) -> None:
        self.workers = int(workers)
        super().__init__(dtype, device, fused_epoch=fused_epoch, host_loss=host_loss)
        sharding: Any = self._jax.sharding
        Mesh, NamedSharding, PartitionSpec = sharding.Mesh, sharding.NamedSharding, sharding.PartitionSpec
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self._rows = NamedSharding(self.mesh, PartitionSpec(AXIS, None))
        self._vector = NamedSharding(self.mesh, PartitionSpec(AXIS))

    def _identity(self) -> tuple[Any, ...]:
        return (*super()._identity(), self.workers)

    def _resolve_device(self, spec: DeviceSpec) -> Any:
        first = super()._resolve_device(spec)
        devices = self._jax.devices(spec.kind)
        chosen = devices[spec.index : spec.index + self.workers]
        if len(chosen) < self.workers:
            from polylin.errors import DeviceNotAvailableError

            raise DeviceNotAvailableError(
                too_few_devices_message(self.workers, first.platform, len(devices) - spec.index)
            )
        self.devices = chosen
        return first

    @property
    def device_name(self) -> str:
        ids = ",".join(str(device.id) for device in self.devices)
        return f"{self.device.platform}:{ids} (jax.sharding, {self.workers} devices)"

    @property
    def xp(self) -> Any:
        return _sharded_namespace(self.mesh)

    def asarray(self, host: np.ndarray) -> Array:
        """``host`` replicated on every device of the mesh (a 0-d array stays 0-d)."""
        host = np.asarray(host)
        dtype = np.int32 if host.dtype.kind in "iu" else self.np_dtype
        return self._jax.device_put(np.asarray(host, dtype=dtype, order="C"), self.replicated)

    def epoch_runner(self, step: StepFn, loss: LossFn, X: Array, y: Array, layout: BatchLayout) -> EpochFn:
        """:class:`JaxBackend`'s compiled epoch, with the full-data loss split by rows too (the step's
        batches are split by :attr:`xp`'s ``take``)."""
        run_epoch = super().epoch_runner(step, _RowSharded(loss, self._rows, self._vector), X, y, layout)
        # The order goes to every device of the mesh, replicated, before the compiled epoch runs.
        return lambda params, order: run_epoch(params, self.asarray(order))
