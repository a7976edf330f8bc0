"""``polylin backends``: each backend, installed or not (if not: why, and how), its version, its devices."""

from __future__ import annotations

import argparse
import importlib.util
import json
import types
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, NoReturn

from polylin.backends import BACKENDS, backend_class, get_backend
from polylin.cli.fit_command import quietly_closed
from polylin.cli.output import print_table, require, table_of
from polylin.errors import BackendNotInstalledError, DeviceNotAvailableError

#: Array API libraries the array-api backend is tried on, by import name.
ARRAY_API_LIBRARIES = ("numpy", "array_api_strict", "dask.array", "torch", "jax.numpy", "cupy")
MAX_GPUS = 16


@dataclass
class BackendReport:
    """What ``polylin backends`` says about one backend."""

    name: str
    installed: bool
    version: str | None = None
    devices: list[str] = field(default_factory=list)
    why_not: str | None = None
    install: str | None = None
    namespaces: dict[str, dict[str, Any]] | None = None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backends",
        help="list the backends: installed or not (and how to install), version, devices",
        description=(
            "List every backend: whether it is installed (if not: why, and the command that installs it), "
            "its framework's version and the devices it sees. The array-api backend runs on any Array API "
            "library; the ones found here are listed with their devices."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  polylin backends\n  polylin backends --json | jq '.[] | select(.installed)'\n",
    )
    parser.error = types.MethodType(_one_line_error, parser)  # type: ignore[method-assign]
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(run=quietly_closed(run))


def _one_line_error(self: argparse.ArgumentParser, message: str) -> NoReturn:
    self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def devices_of(name: str) -> list[str]:
    """The devices a backend can run on here: its CPU, then each GPU it accepts, ``gpu:0`` upwards."""
    found = []
    for request in ("cpu", *(f"gpu:{index}" for index in range(MAX_GPUS))):
        try:
            backend = get_backend(name, device=request)
        except DeviceNotAvailableError:
            if request == "cpu":
                continue
            break
        found.append(backend.device_name)
    return found


def array_api_libraries() -> dict[str, dict[str, Any]]:
    """The Array API libraries importable here, with their versions and devices."""
    from polylin.backends.array_api_backend import (
        device_label,
        load_namespace,
        namespace_devices,
        namespace_version,
    )

    libraries: dict[str, dict[str, Any]] = {}
    for library in ARRAY_API_LIBRARIES:
        if importlib.util.find_spec(library.split(".")[0]) is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                xp = load_namespace(library)
                devices = [device_label(d) for d in namespace_devices(xp)]
        except Exception as exc:
            libraries[library] = {"usable": False, "why_not": f"{type(exc).__name__}: {exc}"}
            continue
        libraries[library] = {"usable": True, "version": namespace_version(xp), "devices": devices}
    return libraries


def report(name: str) -> BackendReport:
    entry = BACKENDS[name]
    try:
        backend_class(name)
    except BackendNotInstalledError as exc:
        return BackendReport(name, False, why_not=str(exc.__cause__ or exc), install=entry.install)
    if name == "array-api":
        import array_api_compat

        return BackendReport(
            name,
            True,
            version=f"{array_api_compat.__version__} (array-api-compat)",
            devices=devices_of(name),
            namespaces=array_api_libraries(),
        )
    return BackendReport(name, True, version=get_backend(name).version, devices=devices_of(name))


def run(args: argparse.Namespace) -> int:
    if not args.json:
        require("rich", needed_for="the table of polylin backends (or pass --json)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # frameworks warn about themselves on import
        reports = [report(name) for name in BACKENDS]
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print_reports(reports)
    return 0


def print_reports(reports: list[BackendReport]) -> None:
    """One row per backend; then the Array API libraries found, and why each missing backend is missing."""
    rows = []
    for r in reports:
        if not r.installed:
            rows.append((r.name, "not installed", "-", "-"))
        elif r.namespaces is not None:
            rows.append((r.name, "installed", r.version or "", "those of the library it runs on (below)"))
        else:
            rows.append((r.name, "installed", r.version or "", ", ".join(r.devices) or "none"))
    print_table(table_of(("backend", "status", "version", "devices"), rows))
    for r in reports:
        if r.namespaces:
            print(f"\n{r.name} runs on any Array API library; here:")
            libraries = [
                (library, found["version"], ", ".join(found["devices"]))
                if found["usable"]
                else (library, "not usable", found["why_not"])
                for library, found in r.namespaces.items()
            ]
            print_table(table_of(("library", "version", "devices"), libraries))
    for r in reports:
        if not r.installed:
            print(f"\n{r.name} is not installed: {r.why_not}\n  install: {r.install}")
