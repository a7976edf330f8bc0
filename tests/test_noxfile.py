"""The noxfile: demo and tests(all) install the same environment, with every extra polylin has.

The noxfile is loaded with a small stand-in for nox (the test environments
need not have nox), and its sessions are called with a recording session.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
FRAMEWORK_EXTRAS = {"jax", "torch", "mxnet"}  # environments/*.txt pin the frameworks instead
NOT_FOR_USERS = {"docs", "dev"}  # the site build and the linters have sessions of their own


def _stand_in_for_nox() -> types.ModuleType:
    nox = types.ModuleType("nox")
    nox.options = types.SimpleNamespace()  # type: ignore[attr-defined]
    nox.Session = object  # type: ignore[attr-defined]

    def session(func: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            f.nox_session = kwargs  # type: ignore[attr-defined]
            return f

        return register(func) if func is not None else register

    def parametrize(name: str, values: list[Any]) -> Callable[..., Any]:
        def register(f: Callable[..., Any]) -> Callable[..., Any]:
            f.nox_parameters = (name, values)  # type: ignore[attr-defined]
            return f

        return register

    nox.session = session  # type: ignore[attr-defined]
    nox.parametrize = parametrize  # type: ignore[attr-defined]
    nox.param = lambda value, id=None: value  # type: ignore[attr-defined]
    return nox


@pytest.fixture(scope="module")
def noxfile() -> types.ModuleType:
    saved = sys.modules.get("nox")
    sys.modules["nox"] = _stand_in_for_nox()
    try:
        spec = importlib.util.spec_from_file_location("polylin_noxfile", REPO / "noxfile.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["nox"]
        else:
            sys.modules["nox"] = saved
    return module


class Recorder:
    """Records what a session installs and runs."""

    def __init__(self, tmp: Path) -> None:
        self.installs: list[tuple[str, ...]] = []
        self.runs: list[tuple[tuple[str, ...], dict[str, Any]]] = []
        self.posargs: list[str] = []
        self.invoked_from = str(REPO)
        self.bin = str(REPO / ".nox" / "demo" / "bin")
        self.tmp = tmp

    def install(self, *args: str) -> None:
        self.installs.append(args)

    def run(self, *args: str, **kwargs: Any) -> None:
        self.runs.append((args, kwargs))

    def create_tmp(self) -> str:
        return str(self.tmp)


def test_demo_and_tests_all_install_the_same_environment(noxfile: types.ModuleType, tmp_path: Path) -> None:
    demo, tests_all = Recorder(tmp_path), Recorder(tmp_path)
    noxfile.demo(demo)
    noxfile.tests(tests_all, "all")
    assert demo.installs == tests_all.installs
    assert demo.installs[0] == ("-r", "environments/all.txt")
    env = tests_all.runs[0][1]["env"]
    assert env["POLYLIN_REQUIRE_BACKENDS"] == "numpy,jax,torch,mxnet,array-api"


def test_the_everything_environment_has_every_extra_a_user_can_need(noxfile: types.ModuleType) -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert set(noxfile.EVERY_EXTRA) == extras - FRAMEWORK_EXTRAS - NOT_FOR_USERS, (
        "a new extra in pyproject.toml belongs in noxfile.EVERY_EXTRA (the demo environment), "
        "or in this test's exclusions with the reason"
    )
    frameworks = (REPO / "environments" / f"{noxfile.EVERYTHING}.txt").read_text()
    for framework in ("numpy==", "jax==", "torch==", "mxnet=="):
        assert framework in frameworks


def test_demo_ends_with_the_line_that_enters_its_environment(
    noxfile: types.ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = Recorder(tmp_path)
    noxfile.demo(session)
    assert session.runs[0][0][:4] == ("polylin", "fit", "--backend", "all")
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].strip() == "source .nox/demo/bin/activate"
    assert "$ source .nox/demo/bin/activate" in (REPO / "README.md").read_text()


def test_each_environment_has_its_file_and_its_session_requires_its_backends(
    noxfile: types.ModuleType, tmp_path: Path
) -> None:
    name, environments = noxfile.tests.nox_parameters
    assert name == "environment"
    assert set(environments) == set(noxfile.REQUIRED_BACKENDS) == {"numpy", "jax", "torch", "mxnet", "all"}
    for environment in environments:
        assert (REPO / "environments" / f"{environment}.txt").is_file()
        session = Recorder(tmp_path)
        noxfile.tests(session, environment)
        assert session.installs[0] == ("-r", f"environments/{environment}.txt")
        required = session.runs[0][1]["env"]["POLYLIN_REQUIRE_BACKENDS"].split(",")
        assert environment == "all" or environment in required
    for environment in noxfile.report_part.nox_parameters[1]:
        assert (REPO / "environments" / f"{environment}.txt").is_file()


def test_the_default_run_is_lint_every_test_session_and_the_docs(noxfile: types.ModuleType) -> None:
    assert noxfile.nox.options.sessions == ["lint", "tests", "scale", "docs"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3.11 -m nox\n" in ci  # CI runs the default sessions
    readme = (REPO / "README.md").read_text()
    assert "python3.11 -m pip install nox && python3.11 -m nox -s demo" in readme


def test_the_out_of_core_bench_runs_in_the_scale_environment_with_dask_ml(
    noxfile: types.ModuleType, tmp_path: Path
) -> None:
    """dask-ml needs NumPy >= 1.24, so its comparison runs beside the scale environment's pins, not
    in the bench's all-four environment (MXNet pins NumPy 1.23)."""
    session = Recorder(tmp_path)
    noxfile.bench_out_of_core(session)
    assert session.installs[0] == ("-r", "environments/scale-bench.txt")
    assert session.runs[0][0][:3] == ("python", "-m", "benchmarks.out_of_core")
    assert "--dask-cluster" in session.runs[0][0]
    pins = (REPO / "environments" / "scale-bench.txt").read_text().splitlines()
    scale = (REPO / "environments" / "scale.txt").read_text().splitlines()
    assert {line for line in scale if "==" in line} <= set(pins)  # the scale environment's pins, and more
    assert any(line.startswith("dask-ml==") for line in pins)
    assert any(line.startswith("distributed==") for line in pins)
