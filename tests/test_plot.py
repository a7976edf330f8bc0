"""The pictures: what they draw, the seed question they answer, and the files they write."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import polylin
from polylin import plot
from polylin.cli import main


def test_import_polylin_does_not_import_matplotlib() -> None:
    code = "import sys, polylin; assert 'matplotlib' not in sys.modules; polylin.plot; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "ok" in done.stdout


def test_marginal_slopes_answer_the_forum_question() -> None:
    # Why does column 2 look tight and column 1 spread? Each column is seen through the
    # spread the *other* column adds: sd sqrt(Σ_{k≠j} w_k²) for unit-variance features.
    X, y = polylin.synthetic_data(n=20_000, seed=0, dtype="float64")
    slope1, _, spread1 = plot.marginal_slope(X[:, 0], y)
    slope2, _, spread2 = plot.marginal_slope(X[:, 1], y)
    assert slope1 == pytest.approx(2.0, abs=0.05) and slope2 == pytest.approx(-3.4, abs=0.05)
    assert spread1 == pytest.approx(3.4, rel=0.03) and spread2 == pytest.approx(2.0, rel=0.03)


def test_data_figure_has_an_overlay_and_one_panel_per_column() -> None:
    X, y = polylin.synthetic_data()
    fig = plot.data(X, y, w=[2.0, -3.4])
    assert len(fig.axes) == 3
    texts = " ".join(t.get_text() for ax in fig.axes[1:] for t in ax.texts)
    assert "marginal slope" in texts and "w2 = -3.40" in texts
    with pytest.raises(ValueError, match="shape"):
        plot.data(X, y[:10])


def test_plane_needs_two_features() -> None:
    X, y = polylin.synthetic_data(w=[1.0, 2.0, 3.0], n=50)
    with pytest.raises(ValueError, match="exactly 2 feature columns"):
        plot.plane(X, y, [1.0, 2.0, 3.0], 0.0)
    X, y = polylin.synthetic_data(n=50)
    fig = plot.plane(X, y, [2.0, -3.4], 4.2)
    assert fig.axes[0].name == "3d"


def test_loss_curves_overlay_and_mark_divergence() -> None:
    good = polylin.fit(backend="numpy", epochs=2)
    with np.errstate(all="ignore"):
        bad = polylin.fit(backend="numpy", lr=3.0, epochs=2, on_divergence="stop", check_stability=False)
    fig = plot.loss_curves({"lr 0.03": good, "lr 3": bad})
    lines = fig.axes[0].get_lines()
    assert len(lines[0].get_ydata()) == 3  # initial loss + 2 epochs
    assert all(np.all(np.isfinite(line.get_ydata())) for line in lines)
    assert any("diverged" in t.get_text() for t in fig.axes[0].texts)
    with pytest.raises(ValueError, match="empty"):
        plot.loss_curves([])


def test_save_writes_png_and_svg_and_refuses_other_formats(tmp_path) -> None:
    fig = plot.loss_curves(polylin.fit(backend="numpy", epochs=1))
    assert plot.save(fig, tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in plot.save(fig, tmp_path / "a.svg").read_text()
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        plot.save(fig, tmp_path / "a.pdf")


@pytest.mark.parametrize("kind", ["data", "plane", "losses"])
def test_plot_command(kind: str, tmp_path, capsys) -> None:
    out = tmp_path / f"{kind}.svg"
    assert main(["plot", kind, "--backend", "numpy", "--epochs", "1", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    assert "<svg" in out.read_text()


def test_plot_command_errors(tmp_path, capsys) -> None:
    assert main(["plot", "plane", "--backend", "numpy,numpy", "--out", str(tmp_path / "p.png")]) == 2
    assert "one backend" in capsys.readouterr().err
    assert main(["plot", "data", "--out", str(tmp_path / "p.jpg")]) == 2
    assert ".png or .svg" in capsys.readouterr().err
