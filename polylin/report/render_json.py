"""``report.json``: the whole report, machine-readable, with sorted keys so that two runs diff cleanly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _clean(value: Any) -> Any:
    """NaN and infinities become ``null`` (JSON has no spelling for them); NumPy scalars become numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(report: dict[str, Any]) -> str:
    """The report as indented JSON with sorted keys."""
    return json.dumps(_clean(report), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(report: dict[str, Any], path: Path) -> Path:
    path.write_text(to_json(report), encoding="utf-8")
    return path
