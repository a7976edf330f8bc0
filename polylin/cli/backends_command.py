"""``polylin backends``: which backends are installed, their versions and devices."""

from __future__ import annotations

import argparse
from typing import Any

from polylin.backends import BACKENDS, get_backend
from polylin.errors import BackendNotInstalledError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backends",
        help="list the backends, whether each is installed, its version",
        description="List every backend: installed or not (and how to install it), version, device.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for name, entry in BACKENDS.items():
        try:
            backend = get_backend(name)
        except BackendNotInstalledError as exc:
            print(f"{name:6}  not installed: {exc.__cause__ or exc}; install: {entry.install}")
            continue
        print(f"{name:6}  {backend.version:10}  default device {backend.device_name}")
    return 0
