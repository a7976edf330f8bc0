"""Array namespaces with a few functions bound straight to a framework's kernels."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any


class FastNamespace(SimpleNamespace):
    """An array namespace object that compares and hashes by identity, as a module does, so that
    objectives built on it can key a compile cache."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__  # type: ignore[assignment]


def namespace_with(namespace: Any, **replacements: Any) -> FastNamespace:
    """A copy of an array namespace with some functions replaced by faster equivalents.

    A backend binds the few functions a training step calls on every step
    straight to its framework's kernels; a replacement must have the Array API
    meaning of the function it replaces for the arguments polylin passes.
    """
    members = {name: getattr(namespace, name) for name in dir(namespace) if not name.startswith("__")}
    members.update(replacements)
    return FastNamespace(**members)
