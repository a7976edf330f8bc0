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
  (default: the other columns). The file is memory-mapped, so one larger
  than memory is streamed (:mod:`polylin.streaming`), as long as the
  features are evenly spaced columns (the default when the target is the
  first or the last column); other feature lists are copied into memory.
* **.npz**: the arrays ``X`` (``n × d``) and ``y`` (``n`` values), or other
  names given with ``--features`` and ``--target``. An archive that holds a
  single array is read like a ``.npy`` file.

Problems raise :class:`DataFileError` (a ``ValueError``) naming the file, the
place and the fix, so the command line prints them as one line.
"""

from __future__ import annotations

import itertools
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
    """The array of a ``.npy`` file, memory-mapped read-only: a file larger than memory is then
    read block by block by the fit (:mod:`polylin.streaming`), never whole."""
    try:
        mapped: np.ndarray = np.load(file, mmap_mode="r", allow_pickle=False)
        return mapped
    except ValueError:  # not mappable (object arrays, empty files): read it, for the error or the data
        pass
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
    text = file.read_text(encoding="utf-8-sig")
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise DataFileError(f"--data {name} holds no data rows.")
    delimiter = "\t" if file.suffix.lower() == ".tsv" else _delimiter([line for _, line in lines[:20]])
    first = _fields(lines[0][1], delimiter)
    header = None if all(_is_number(field) for field in first) else first
    if header is not None:
        lines = lines[1:]
    if not lines:
        raise DataFileError(f"--data {name} has a header but no data rows.")
    try:
        matrix = np.loadtxt(
            [line for _, line in lines],
            delimiter=delimiter,
            quotechar='"',
            comments=None,
            ndmin=2,
            dtype=np.float64,
        )
    except ValueError:
        matrix = None
    if matrix is None or (header is not None and matrix.shape[1] != len(header)):
        raise _first_problem(lines, delimiter, header, name)
    return _from_matrix(matrix, target, features, name, header=header)


def _delimiter(sample: list[str]) -> str:
    """The one of ``,`` ``;`` tab that splits every sample line alike (the most fields wins); else ``,``."""
    counts = {candidate: [line.count(candidate) for line in sample] for candidate in (",", ";", "\t")}
    consistent = [c for c, n in counts.items() if n[0] > 0 and len(set(n)) == 1]
    return (
        max(consistent or counts, key=lambda c: counts[c][0]) if any(n[0] for n in counts.values()) else ","
    )


def _fields(line: str, delimiter: str) -> list[str]:
    return [field.strip().strip('"') for field in line.split(delimiter)]


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _first_problem(
    lines: list[tuple[int, str]], delimiter: str, header: list[str] | None, name: str
) -> DataFileError:
    """The first line that is not a full row of numbers, and what is wrong with it (after a failed read)."""
    width = len(header) if header is not None else len(_fields(lines[0][1], delimiter))
    against = "the header" if header is not None else "the first row"
    for number, line in lines:
        fields = _fields(line, delimiter)
        if len(fields) != width:
            return DataFileError(
                f"--data {name}: line {number} has {len(fields)} fields but {against} has {width}; "
                "every row needs the same columns."
            )
        for j, field in enumerate(fields):
            if not _is_number(field):
                column = header[j] if header is not None else str(j)
                what = "an empty field" if not field else repr(field)
                return DataFileError(
                    f"--data {name}: line {number}, column {column!r} holds {what}, not a number; "
                    "polylin trains on complete numeric data."
                )
    return DataFileError(f"--data {name} cannot be read as numbers separated by {delimiter!r}.")


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
    X = matrix[:, _as_slice(feature_indices) or feature_indices]  # a slice keeps a memory map a view
    y = matrix[:, target_index]
    return DataSet(X, y, tuple(names[j] for j in feature_indices), names[target_index], name)


def _as_slice(indices: list[int]) -> slice | None:
    """``indices`` as a slice when they step evenly upwards (the default features do), else ``None``."""
    if len(indices) == 1:
        return slice(indices[0], indices[0] + 1)
    step = indices[1] - indices[0]
    if step <= 0 or any(b - a != step for a, b in itertools.pairwise(indices)):
        return None
    return slice(indices[0], indices[-1] + 1, step)


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
