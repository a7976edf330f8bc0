"""'Did you mean ...?' for a misspelt name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(given: object, choices: Iterable[str]) -> str:
    """The suffix ``" Did you mean 'jax'?"`` for the choice closest to ``given``, or ``""`` if none is close.

    Comparison ignores case; only strings get a suggestion.
    """
    if not isinstance(given, str) or not given:
        return ""
    options = list(choices)
    by_lower = {choice.lower(): choice for choice in options}
    close = difflib.get_close_matches(given.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" Did you mean {by_lower[close[0]]!r}?" if close else ""


__all__ = ["did_you_mean"]
