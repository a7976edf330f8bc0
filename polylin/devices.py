"""Device requests: ``"cpu"``, ``"gpu"`` (or ``"cuda"``) and ``"gpu:N"``, parsed once for every backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed device request: a kind (``"cpu"`` or ``"gpu"``) and an index."""

    kind: str
    index: int

    @classmethod
    def parse(cls, device: object) -> DeviceSpec:
        """Parse ``None``, ``"cpu"``, ``"gpu"``, ``"cuda"``, ``"gpu:1"`` or ``"cuda:1"``."""
        if device is None:
            return cls("cpu", 0)
        text = str(device).strip().lower()
        kind, _, index_text = text.partition(":")
        kind = {"cuda": "gpu"}.get(kind, kind)
        if kind not in ("cpu", "gpu") or (index_text and not index_text.isdigit()):
            from polylin.suggest import did_you_mean

            raise ValueError(
                f"device={device!r} is not a device polylin understands; "
                "use 'cpu', 'gpu' (or 'cuda'), or 'gpu:N' for the N-th GPU."
                + did_you_mean(kind, ("cpu", "gpu", "cuda"))
            )
        return cls(kind, int(index_text or 0))

    def __str__(self) -> str:
        return self.kind if self.kind == "cpu" else f"{self.kind}:{self.index}"
