"""Reading training data for ``polylin fit --data FILE``: CSV, ``.npy`` and ``.npz``.

The rules, also shown by ``polylin fit --help``:

* **CSV** (``.csv``; ``.tsv`` and ``.txt`` too). Commas, semicolons or tabs
  separate the fields (detected from the file); blank lines and lines that
  start with ``#`` are skipped. The first row is a header when any of its
  fields is not a number. ``--target`` names the target column by header
  name or by 0-based index (negative counts from the end); the default is
  the last column. ``--features`` lists the feature columns the same way,
  comma-separated; the default is every other column. Every cell used must
  be a number.
* **.npy**: one 2-D array, one row per example. ``--target`` is a column
  index (default ``-1``, the last column) and ``--features`` column indices
  (default: the other columns).
* **.npz**: the arrays ``X`` (``n × d``) and ``y`` (``n`` values), or other
  names given with ``--features`` and ``--target``. An archive that holds a
  single array is read like a ``.npy`` file.

Problems raise :class:`DataFileError` (a ``ValueError``) naming the file, the
place and the fix, so the command line prints them as one line.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TEXT_SUFFIXES = (".csv", ".tsv", ".txt")
SUFFIXES = (*TEXT_SUFFIXES, ".npy", ".npz")


class DataFileError(ValueError):
    """A data file that cannot be read as training data."""


@dataclass(frozen=True)
class DataSet:
    """Training data read from a file."""

    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str
    path: str


def read_data(
    path: str | os.PathLike[str], target: str | None = None, features: str | None = None
) -> DataSet:
    """Read ``X`` and ``y`` from ``path`` by the rules in this module's docstring."""
    file = Path(path)
    name = str(path)
    if not file.exists():
        raise DataFileError(f"--data {name}: no such file.")
    if file.is_dir():
        raise DataFileError(f"--data {name} is a directory; pass a .csv, .npy or .npz file.")
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(
            f"--data {name}: polylin reads {', '.join(SUFFIXES)} files, "
            f"not {suffix or 'files without a suffix'!r}."
        )
    try:
        if suffix == ".npy":
            return _from_matrix(_load_npy(file, name), target, features, name, header=None)
        if suffix == ".npz":
            return _read_npz(file, target, features, name)
        return _read_text(file, target, features, name)
    except OSError as exc:
        raise DataFileError(f"--data {name} cannot be read: {exc.strerror or exc}.") from exc


# -- NumPy files --------------------------------------------------------------------
def _load_npy(file: Path, name: str) -> np.ndarray:
    try:
        array = np.load(file, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise DataFileError(f"--data {name} is not a numeric .npy array ({exc}).") from exc
    return np.asarray(array)


def _read_npz(file: Path, target: str | None, features: str | None, name: str) -> DataSet:
    try:
        archive = np.load(file, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile) as exc:
        raise DataFileError(f"--data {name} is not a readable .npz archive ({exc}).") from exc
    with archive:
        keys = list(archive.files)
        x_key = features if features is not None else "X"
        y_key = target if target is not None else "y"
        if x_key in keys and y_key in keys:
            X = _numeric(np.asarray(archive[x_key]), f"{name}[{x_key!r}]")
            y = _numeric(np.asarray(archive[y_key]), f"{name}[{y_key!r}]")
            if X.ndim == 1:
                X = X.reshape(-1, 1)
            if X.ndim != 2:
                raise DataFileError(f"--data {name}: {x_key!r} has shape {X.shape}; X must be 2-D (n, d).")
            names = tuple(f"{x_key}[{j}]" for j in range(X.shape[1]))
            return DataSet(X, y, names, y_key, name)
        if len(keys) == 1:
            return _from_matrix(np.asarray(archive[keys[0]]), target, features, name, header=None)
    wanted = [key for key in (x_key, y_key) if key not in keys]
    raise DataFileError(
        f"--data {name} has the arrays {keys} but not {wanted}; name the feature and target arrays "
        "with --features KEY and --target KEY (the defaults are X and y)."
    )


# -- text files ----------------------------------------------------------------------
def _read_text(file: Path, target: str | None, features: str | None, name: str) -> DataSet:
    with file.open(newline="", encoding="utf-8-sig") as stream:
        text = stream.read()
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise DataFileError(f"--data {name} holds no data rows.")
    delimiter = _delimiter(lines[:20], file.suffix.lower())
    rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, skipinitialspace=True))
    header: list[str] | None = None
    if any(not _is_number(field) for field in rows[0]):
        header = [field.strip() for field in rows[0]]
        rows = rows[1:]
    if not rows:
        raise DataFileError(f"--data {name} has a header but no data rows.")
    width = len(header) if header is not None else len(rows[0])
    for number, row in enumerate(rows, start=2 if header is not None else 1):
        if len(row) != width:
            raise DataFileError(
                f"--data {name}: data row {number} has {len(row)} fields but the "
                f"{'header' if header is not None else 'first row'} has {width}; "
                "every row needs the same columns."
            )
    matrix = np.empty((len(rows), width), dtype=np.float64)
    for i, row in enumerate(rows):
        for j, field in enumerate(row):
            try:
                matrix[i, j] = float(field)
            except ValueError:
                column = header[j] if header is not None else str(j)
                place = i + (2 if header is not None else 1)
                what = "an empty field" if not field.strip() else repr(field)
                raise DataFileError(
                    f"--data {name}: row {place}, column {column!r} holds {what}, not a number; "
                    "polylin trains on complete numeric data."
                ) from None
    return _from_matrix(matrix, target, features, name, header=header)


def _delimiter(sample: list[str], suffix: str) -> str:
    if suffix == ".tsv":
        return "\t"
    try:
        return csv.Sniffer().sniff("\n".join(sample), delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


# -- columns ---------------------------------------------------------------------------
def _from_matrix(
    matrix: np.ndarray, target: str | None, features: str | None, name: str, *, header: list[str] | None
) -> DataSet:
    matrix = _numeric(matrix, name)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise DataFileError(
            f"--data {name} holds an array of shape {matrix.shape}; it needs 2-D data with one row per "
            "example and at least two columns (features and the target)."
        )
    width = matrix.shape[1]
    names = header if header is not None else [str(j) for j in range(width)]
    target_index = (
        _column(target, names, header is not None, name, "--target") if target is not None else width - 1
    )
    if features is None:
        feature_indices = [j for j in range(width) if j != target_index]
    else:
        feature_indices = [
            _column(part.strip(), names, header is not None, name, "--features")
            for part in features.split(",")
            if part.strip()
        ]
        if not feature_indices:
            raise DataFileError(f"--features {features!r} names no column.")
    if target_index in feature_indices:
        raise DataFileError(
            f"column {names[target_index]!r} is both the target and a feature; drop it from --features."
        )
    X = matrix[:, feature_indices]
    y = matrix[:, target_index]
    return DataSet(X, y, tuple(names[j] for j in feature_indices), names[target_index], name)


def _column(spec: str, names: list[str], has_header: bool, file: str, option: str) -> int:
    if spec in names and has_header:
        return names.index(spec)
    try:
        index = int(spec)
    except ValueError:
        known = (
            f"columns: {', '.join(names)}" if has_header else "the file has no header, so use a column index"
        )
        raise DataFileError(f"{option} {spec!r} is not a column of {file} ({known}).") from None
    if not -len(names) <= index < len(names):
        raise DataFileError(
            f"{option} {index} is out of range: {file} has {len(names)} columns (0 to {len(names) - 1}, "
            "or negative from the end)."
        )
    return index % len(names)


def _numeric(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise DataFileError(f"--data {name} holds {array.dtype} data; polylin trains on numbers.")
    return array
