"""The floating-point precisions polylin trains in."""

from __future__ import annotations

import numpy as np

from polylin.suggest import did_you_mean

SUPPORTED_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype("float32"),
    "float64": np.dtype("float64"),
}
DEFAULT_DTYPE = "float32"


def canonical_dtype(dtype: object) -> str:
    """Return ``"float32"`` or ``"float64"`` for any spelling of those dtypes.

    Accepts strings, NumPy dtypes and scalar types (``np.float32``) and the
    framework dtype objects whose ``str()`` ends in the dtype name
    (``torch.float64``).
    """
    if dtype is None:
        return DEFAULT_DTYPE
    text = str(dtype)
    for name in SUPPORTED_DTYPES:
        if text == name or text.endswith("." + name) or text.endswith("'" + name + "'>"):
            return name
    try:
        as_numpy = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        as_numpy = None
    if as_numpy is not None and as_numpy.name in SUPPORTED_DTYPES:
        return str(as_numpy.name)
    # A typo gets a suggestion; a real but unsupported dtype (float16, int32) does not.
    suggestion = did_you_mean(dtype, SUPPORTED_DTYPES) if as_numpy is None else ""
    raise ValueError(
        f"dtype={dtype!r} is not supported: polylin trains in "
        f"{' or '.join(repr(d) for d in SUPPORTED_DTYPES)}. "
        f"Pass dtype='float32' (the default) or dtype='float64'.{suggestion}"
    )
