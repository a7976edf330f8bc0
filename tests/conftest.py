"""Which backends the tests run on, and a hard failure when a required one is missing.

``POLYLIN_REQUIRE_BACKENDS`` (comma-separated, set by each nox session) names
the backends a session exists to test: if any of them cannot be imported the
whole run fails at start-up, never skips. Without it (a plain ``pytest`` in a
development environment) the tests run on every installed backend and show a
skip, with the reason, for each one that is not installed.
"""

from __future__ import annotations

import os

import pytest

from polylin.backends import KNOWN_BACKENDS, backend_class
from polylin.errors import BackendNotInstalledError

REQUIRED_ENV = "POLYLIN_REQUIRE_BACKENDS"


def _required() -> list[str]:
    names = [n.strip() for n in os.environ.get(REQUIRED_ENV, "").split(",") if n.strip()]
    unknown = sorted(set(names) - set(KNOWN_BACKENDS))
    if unknown:
        raise pytest.UsageError(f"{REQUIRED_ENV} names unknown backends {unknown}")
    return names


def _import_problems() -> dict[str, str]:
    problems = {}
    for name in KNOWN_BACKENDS:
        try:
            backend_class(name)
        except BackendNotInstalledError as exc:
            problems[name] = str(exc)
    return problems


IMPORT_PROBLEMS = _import_problems()
REQUIRED = _required()


def pytest_configure(config: pytest.Config) -> None:
    missing = {name: IMPORT_PROBLEMS[name] for name in REQUIRED if name in IMPORT_PROBLEMS}
    if missing:
        lines = "\n".join(f"  {name}: {why}" for name, why in missing.items())
        raise pytest.UsageError(f"{REQUIRED_ENV} requires backends that cannot be imported:\n{lines}")


EMPTY_SET = "got empty parameter set"
_deselected_for_backends: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop, rather than skip, the tests whose backend list is empty in this session.

    In the numpy session ``backend_params(AUTODIFF_BACKENDS)`` is empty; pytest
    would show each such test as a skip "got empty parameter set", which hides
    the skips that matter. A session that does not require a backend simply has
    no test for it; every remaining skip names what is missing.
    """
    kept, dropped = [], []
    for item in items:
        reasons = [str(m.kwargs.get("reason", "")) for m in item.iter_markers("skip")]
        if REQUIRED and any(reason.startswith(EMPTY_SET) for reason in reasons):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
        _deselected_for_backends.extend(item.nodeid for item in dropped)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _deselected_for_backends:
        terminalreporter.write_line(
            f"polylin: {len(_deselected_for_backends)} tests are only for backends this session does not "
            f"require ({REQUIRED_ENV}={','.join(REQUIRED)}); deselected, not skipped."
        )


def pytest_report_header(config: pytest.Config) -> list[str]:
    installed = [n for n in KNOWN_BACKENDS if n not in IMPORT_PROBLEMS]
    return [
        f"polylin backends installed: {installed}; required here: {REQUIRED or 'none'}",
        *(f"polylin backend {n} NOT installed: {why}" for n, why in IMPORT_PROBLEMS.items()),
    ]


def backend_params(names: tuple[str, ...] | list[str] = KNOWN_BACKENDS) -> list[object]:
    """``pytest.param`` per backend, visibly skipped (with the reason) when not installed.

    Inside a nox session (``POLYLIN_REQUIRE_BACKENDS`` set) only the session's own
    backends are parametrised, and they are guaranteed importable.
    """
    params = []
    for name in names:
        if REQUIRED and name not in REQUIRED:
            continue
        if name in IMPORT_PROBLEMS:
            params.append(pytest.param(name, id=name, marks=pytest.mark.skip(reason=IMPORT_PROBLEMS[name])))
        else:
            params.append(pytest.param(name, id=name))
    return params


AUTODIFF_BACKENDS = ("jax", "torch", "mxnet")
