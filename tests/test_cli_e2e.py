"""The command line, end to end: the ``polylin`` console script of an installed copy of the package.

Once per test session, the package is built from this checkout and installed
with pip into a temporary directory (``pip install --no-deps --target``); every
test runs that directory's ``polylin`` script in a fresh process, with only
that directory on ``PYTHONPATH``, from a scratch working directory.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import polylin

REPO = Path(__file__).resolve().parents[1]
ERROR_LINE = re.compile(r"^polylin( \w+)?: error: .+\S$")


@dataclass(frozen=True)
class Installed:
    """An installed copy of polylin: its console script and the environment that finds it."""

    site: Path
    script: Path
    env: dict[str, str]


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(REPO / "polylin", source / "polylin", ignore=shutil.ignore_patterns("__pycache__"))
    site = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
    if importlib.util.find_spec("setuptools") is not None:  # build offline with the setuptools here
        command.append("--no-build-isolation")
    done = subprocess.run([*command, str(source)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    script = site / "bin" / "polylin"
    assert script.exists(), sorted(p.name for p in (site / "bin").iterdir())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLUMNS", "LINES")}
    env.update(PYTHONPATH=str(site), JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    return Installed(site, script, env)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def polylin_cli(
    installed: Installed, *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed.script), *args],
        capture_output=True, text=True, check=False, cwd=cwd, env=installed.env, timeout=timeout,
    )  # fmt: skip


def assert_one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if not line.startswith("polylin: warning:")]
    assert len(lines) == 1, done.stderr
    assert ERROR_LINE.match(lines[0]), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- the installed package ------------------------------------------------------------------------
def test_the_script_runs_the_installed_copy(installed: Installed, workdir: Path) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", "import polylin; print(polylin.__file__)"],
        capture_output=True, text=True, check=True, cwd=workdir, env=installed.env,
    )  # fmt: skip
    assert Path(probe.stdout.strip()).is_relative_to(installed.site)
    assert installed.script.read_text().splitlines()[0] == f"#!{sys.executable}"
    done = polylin_cli(installed, "--version", cwd=workdir)
    assert done.stdout.strip() == f"polylin {polylin.__version__}"


def test_help_shows_examples(installed: Installed, workdir: Path) -> None:
    top = polylin_cli(installed, "--help", cwd=workdir)
    assert top.returncode == 0 and "examples:" in top.stdout
    fit_help = polylin_cli(installed, "fit", "--help", cwd=workdir)
    assert fit_help.returncode == 0
    flags = (
        "--data --target --features --no-intercept --grad --loss --init --device --seed --dtype "
        "--on-divergence --checkpoint --resume --json --no-progress --backend-option --no-shuffle"
    )
    for flag in flags.split():
        assert flag in fit_help.stdout, flag
    assert "examples:" in fit_help.stdout and "polylin fit --data" in fit_help.stdout
    assert "examples:" in polylin_cli(installed, "backends", "--help", cwd=workdir).stdout


# -- fitting ---------------------------------------------------------------------------------------
def test_the_books_run(installed: Installed, workdir: Path) -> None:
    done = polylin_cli(installed, "fit", cwd=workdir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "epoch 1, loss 0.035129"
    assert [line.split(",")[0] for line in lines[:3]] == ["epoch 1", "epoch 2", "epoch 3"]
    assert float(lines[2].rsplit(" ", 1)[1]) < 1e-4
    assert lines[3].startswith("error in estimating w: [") and lines[4].startswith("error in estimating b: ")
    assert len(lines) == 5 and done.stderr == ""


def test_json_output(installed: Installed, workdir: Path) -> None:
    done = polylin_cli(
        installed, "fit", "--json", "--epochs", "4", "--dtype", "float64", "--seed", "2", cwd=workdir
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    (run,) = document["runs"]
    assert run["backend"] == "numpy" and run["dtype"] == "float64" and run["config"]["epochs"] == 4
    assert len(run["losses"]) == 4 and run["final_loss"] == run["losses"][-1] < 1e-4
    np.testing.assert_allclose(run["w"], [2.0, -3.4], atol=0.01)
    assert document["data"]["source"] == "synthetic" and document["data"]["true_w"] == [2.0, -3.4]
    reference = polylin.fit(epochs=4, dtype="float64", seed=2)
    assert run["w"] == reference.w.tolist() and run["b"] == reference.b


def test_several_backends_print_a_table(installed: Installed, workdir: Path) -> None:
    done = polylin_cli(installed, "fit", "--backend", "numpy,array-api", "--epochs", "2", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("== numpy") == 1 and done.stdout.count("== array-api") == 1
    table = done.stdout.split("\n\n")[-1].splitlines()
    assert table[0].split()[:4] == ["backend", "version", "device", "dtype"]
    assert [row.split()[0] for row in table[1:]] == ["numpy", "array-api"]


def test_ohms_law_from_a_csv_with_a_header(installed: Installed, workdir: Path) -> None:
    rng = np.random.default_rng(0)
    amps = rng.uniform(0, 10, 200)
    volts = 4.7 * amps + rng.normal(0, 0.05, 200)
    lines = ["# Ohm's law: V = I R", "volts,amps"] + [
        f"{v:.6f},{a:.6f}" for v, a in zip(volts, amps, strict=True)
    ]
    (workdir / "ohm.csv").write_text("\n".join(lines) + "\n")
    done = polylin_cli(
        installed, "fit", "--data", "ohm.csv", "--target", "volts", "--no-intercept",
        "--lr", "0.01", "--epochs", "30", "--dtype", "float64", "--json", cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["data"]["features"] == ["amps"] and document["data"]["target"] == "volts"
    (run,) = document["runs"]
    assert run["b"] == 0.0 and abs(run["w"][0] - 4.7) < 0.01
    assert run["w_error"] is None  # the truth is unknown unless --true-w says it
    text = polylin_cli(
        installed, "fit", "--data", "ohm.csv", "--target", "0", "--no-intercept", "--lr", "0.01",
        "--true-w", "4.7", "--true-b", "0", cwd=workdir,
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "error in estimating w:" in text.stdout and "error in estimating b: 0.0" in text.stdout


def test_npy_and_npz_files(installed: Installed, workdir: Path) -> None:
    X, y = polylin.synthetic_data(n=300, seed=1, dtype="float64")
    np.save(workdir / "table.npy", np.column_stack([y, X]))
    np.savez(workdir / "xy.npz", X=X, y=y)
    np.savez(workdir / "named.npz", inputs=X, outputs=y, extra=np.zeros(3))
    np.savez(workdir / "single.npz", np.column_stack([X, y]))
    reference = polylin.fit(X, y, dtype="float64")
    for args in (
        ("--data", "table.npy", "--target", "0"),
        ("--data", "table.npy", "--target", "0", "--features", "1,2"),
        ("--data", "xy.npz"),
        ("--data", "named.npz", "--features", "inputs", "--target", "outputs"),
        ("--data", "single.npz"),
    ):
        done = polylin_cli(installed, "fit", *args, "--dtype", "float64", "--json", cwd=workdir)
        assert done.returncode == 0, (args, done.stderr)
        (run,) = json.loads(done.stdout)["runs"]
        assert run["w"] == reference.w.tolist(), args


def test_bad_data_and_options_are_one_line_errors(installed: Installed, workdir: Path) -> None:
    (workdir / "bad.csv").write_text("x,y\n1,2\n3,oops\n")
    (workdir / "data.csv").write_text("x,y\n1,2\n3,4\n5,7\n")
    np.savez(workdir / "other.npz", a=np.zeros((3, 2)), b=np.zeros(3))
    cases = [
        (("fit", "--data", "missing.csv"), ("missing.csv", "no such file")),
        (("fit", "--data", "bad.csv"), ("line 3", "'y'", "'oops'")),
        (("fit", "--data", "data.csv", "--target", "z"), ("--target 'z'", "columns: x, y")),
        (("fit", "--data", "other.npz"), ("['a', 'b']", "--features KEY")),
        (("fit", "--data", "data.csv", "--batch-size", "10"), ("batch_size=10", "3 examples")),
        (("fit", "--epochs", "abc"), ("--epochs", "invalid int value")),
        (("fit", "--loss", "cubic"), ("--loss", "cubic")),
        (("fit", "--lr", "-1"), ("lr=-1.0",)),
        (("fit", "--backend", "tensorflow"), ("not a known backend",)),
        (("fit", "--device", "gpu:7"), ("device='gpu:7'",)),
        (("fit", "--resume", "nothing.npz"), ("--resume nothing.npz", "no such file")),
        (("fit", "--backend-option", "oops"), ("KEY=VALUE",)),
        (("fit", "--target", "y"), ("need --data",)),
    ]
    for args, fragments in cases:
        done = polylin_cli(installed, *args, cwd=workdir)
        assert_one_error_line(done, *fragments)
        assert done.stdout == "", args


def test_divergence(installed: Installed, workdir: Path) -> None:
    raised = polylin_cli(installed, "fit", "--lr", "30", "--no-stability-check", cwd=workdir)
    assert_one_error_line(raised, "diverged on numpy", "epoch 1, step", "--on-divergence stop")
    assert "warning" not in raised.stderr
    stopped = polylin_cli(installed, "fit", "--lr", "30", "--on-divergence", "stop", cwd=workdir)
    assert stopped.returncode == 1
    assert "polylin: warning: lr=30 is above 2/λ_max" in stopped.stderr
    assert "Pass --no-stability-check" in stopped.stderr
    assert "polylin: numpy diverged at epoch 1, step" in stopped.stderr


def test_output_into_a_closed_pipe_ends_quietly(installed: Installed, workdir: Path) -> None:
    reader = subprocess.Popen(
        ["head", "-c", "10"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=workdir
    )
    done = subprocess.run(
        [str(installed.script), "fit", "--epochs", "300", "--json"], stdout=reader.stdin,
        stderr=subprocess.PIPE, text=True, cwd=workdir, env=installed.env, check=False,
    )  # fmt: skip
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(timeout=60)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_backend_options_reach_the_backend(installed: Installed, workdir: Path) -> None:
    done = polylin_cli(
        installed, "fit", "--backend", "array-api", "--backend-option", "namespace=array_api_strict",
        "--backend-option", "jax:fused_epoch=false", "--json", cwd=workdir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert run["backend_version"].endswith("(array_api_strict)") and run["device"] == "CPU_DEVICE"


# -- Ctrl-C, checkpoints, resume ------------------------------------------------------------------
def interrupt_after_epoch(
    installed: Installed, workdir: Path, epoch: int, *args: str
) -> tuple[int, str, str]:
    process = subprocess.Popen(
        [str(installed.script), "fit", "--epochs", "100000", "--batch-size", "5", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=workdir, env=installed.env,
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(f"epoch {epoch},"):
            process.send_signal(signal.SIGINT)
            break
    out, err = process.communicate(timeout=60)
    return process.returncode, "".join(seen) + out, err


def test_ctrl_c_saves_the_last_epoch_and_resume_continues(installed: Installed, workdir: Path) -> None:
    code, out, err = interrupt_after_epoch(installed, workdir, 2, "--checkpoint", "run.npz")
    assert code == 130, err
    assert re.search(r"interrupted after epoch (\d+) of 100000 on numpy; saved to run\.npz", err), err
    assert "Continue with: polylin fit [the same options] --resume run.npz" in err
    saved = polylin.load(workdir / "run.npz")
    assert saved.interrupted and saved.epochs_completed >= 2
    printed = [line for line in out.splitlines() if line.startswith("epoch ")]
    for line, loss in zip(printed, saved.losses, strict=False):
        assert line.endswith(f"loss {loss:f}")
    total = saved.epochs_completed + 2
    resumed = polylin_cli(
        installed,
        "fit",
        "--epochs",
        str(total),
        "--batch-size",
        "5",
        "--resume",
        "run.npz",
        "--json",
        cwd=workdir,
    )
    assert resumed.returncode == 0, resumed.stderr
    (run,) = json.loads(resumed.stdout)["runs"]
    assert len(run["losses"]) == total and not run["interrupted"]
    straight = polylin.fit(epochs=total, batch_size=5)
    assert run["w"] == straight.w.tolist()


def test_ctrl_c_without_a_checkpoint_option_saves_to_the_default_file(
    installed: Installed, workdir: Path
) -> None:
    code, _, err = interrupt_after_epoch(installed, workdir, 1)
    assert code == 130, err
    assert "saved to polylin-interrupted.npz" in err
    assert polylin.load(workdir / "polylin-interrupted.npz").interrupted


# -- the progress bar -------------------------------------------------------------------------------
def run_in_terminal(installed: Installed, workdir: Path, *args: str) -> tuple[int, str]:
    """Run with stdout on a pseudo-terminal, as in an interactive shell."""
    leader, follower = pty.openpty()
    env = {**installed.env, "COLUMNS": "120", "TERM": "xterm-256color"}
    process = subprocess.Popen([str(installed.script), *args], stdout=follower, stderr=subprocess.PIPE,
                               cwd=workdir, env=env)  # fmt: skip
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_progress_bar_in_a_terminal_only(installed: Installed, workdir: Path) -> None:
    code, screen = run_in_terminal(installed, workdir, "fit", "--epochs", "4", "--batch-size", "2")
    assert code == 0
    assert re.search(r"epoch 4/4 steps\W+2000/2000", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)), screen[
        -2000:
    ]
    assert "loss " in screen and "epoch 4, loss" in screen
    code, plain = run_in_terminal(
        installed, workdir, "fit", "--epochs", "4", "--batch-size", "2", "--no-progress"
    )
    assert code == 0 and "steps" not in plain and "epoch 4, loss" in plain
    piped = polylin_cli(installed, "fit", "--epochs", "4", "--batch-size", "2", cwd=workdir)
    assert "steps" not in piped.stdout and "\x1b" not in piped.stdout


# -- polylin backends ----------------------------------------------------------------------------------
def test_backends_lists_every_backend(installed: Installed, workdir: Path) -> None:
    done = polylin_cli(installed, "backends", cwd=workdir)
    assert done.returncode == 0, done.stderr
    for name in polylin.KNOWN_BACKENDS:
        assert re.search(rf"^{re.escape(name)}\s+(installed|not installed)\s", done.stdout, re.M), name
    assert re.search(r"^numpy\s+installed\s+" + re.escape(np.__version__) + r"\s+cpu$", done.stdout, re.M)
    assert "array_api_strict" in done.stdout and "device1" in done.stdout
    reports = json.loads(polylin_cli(installed, "backends", "--json", cwd=workdir).stdout)
    assert [r["name"] for r in reports] == list(polylin.KNOWN_BACKENDS)
    for r in reports:
        assert r["installed"] == (r["version"] is not None) == (r["why_not"] is None)


def test_backends_explains_a_missing_framework(installed: Installed, workdir: Path) -> None:
    (workdir / "shadow").mkdir()
    (workdir / "shadow" / "torch.py").write_text("raise ImportError('simulated: no torch on this machine')\n")
    env = {**installed.env, "PYTHONPATH": f"{workdir / 'shadow'}{os.pathsep}{installed.site}"}
    done = subprocess.run([str(installed.script), "backends"], capture_output=True, text=True, check=False,
                          cwd=workdir, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"^torch\s+not installed\s+-\s+-$", done.stdout, re.M)
    assert "torch is not installed: simulated: no torch on this machine" in done.stdout
    assert "install: pip install -r environments/torch.txt" in done.stdout
