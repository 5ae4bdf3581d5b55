"""Tests for fastnn.plotting: the notes' figures 6.7/6.8 from a hand-built History.

The histories are built by hand (no training), so these tests check the
drawing alone and take well under a second each once matplotlib is imported.
"""

import struct
import sys

import numpy as np
import pytest

from fastnn import History, plotting


def png_size(path):
    """(width, height) from a PNG's IHDR chunk; fails if the file is not a PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def make_history(classification=True, per_iteration=True, validation=True, steps=250,
                 eval_every=50, epochs=5):
    """A History shaped like fit(..., validation_data=..., eval_every=...) returns."""
    rng = np.random.default_rng(0)
    history = History()
    decay = np.exp(-np.arange(1, steps + 1) / 60)
    history.iterations = {"step": [], "loss": [], "error": []}
    history.validations = {"step": [], "val_loss": [], "val_error": []}
    if per_iteration:
        history.iterations["step"] = list(range(1, steps + 1))
        history.iterations["loss"] = list(2.3 * decay + 0.05 * rng.random(steps))
        if classification:
            history.iterations["error"] = list(0.9 * decay + 0.05 * rng.random(steps))
        if validation:
            at = list(range(eval_every, steps + 1, eval_every))
            history.validations["step"] = at
            history.validations["val_loss"] = [2.3 * np.exp(-s / 60) + 0.1 for s in at]
            if classification:
                history.validations["val_error"] = [0.9 * np.exp(-s / 60) + 0.02 for s in at]
    for epoch in range(epochs):
        record = {"loss": 1.0 / (epoch + 1)}
        if classification:
            record["error"] = 0.3 / (epoch + 1)
        record["time"] = 0.1
        if validation:
            record["val_loss"] = 1.2 / (epoch + 1)
            if classification:
                record["val_error"] = 0.35 / (epoch + 1)
        history.record(epoch, **record)
    return history


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib", reason="matplotlib is an optional extra "
                                                    '(pip install "fastnn[plot]")')


def test_two_panels_per_iteration(mpl, tmp_path):
    path = tmp_path / "curves.png"
    returned = plotting.plot_training(make_history(), path, title="784-200-10 on digits")
    assert returned == path and path.is_file()
    width, height = png_size(path)
    # two panels side by side: the figure is much wider than tall
    assert width > 2 * height


def test_regression_has_one_panel(mpl, tmp_path):
    two, one = tmp_path / "two.png", tmp_path / "one.png"
    plotting.plot_training(make_history(), two)
    plotting.plot_training(make_history(classification=False), one)
    # no misclassification panel without error records: a narrower figure
    assert png_size(one)[0] < 0.7 * png_size(two)[0]


def test_without_validation(mpl, tmp_path):
    path = tmp_path / "train_only.png"
    plotting.plot_training(make_history(validation=False), path)
    assert png_size(path)[0] > 0


def test_per_epoch_history_falls_back_to_epochs(mpl, tmp_path):
    # fit without eval_every: empty per-iteration records, one point per epoch
    path = tmp_path / "epochs.png"
    plotting.plot_training(make_history(per_iteration=False), path)
    assert png_size(path)[0] > 0


def test_history_without_iteration_attributes(mpl, tmp_path):
    # a bare per-epoch History (no iterations/validations attributes at all)
    history = History()
    for epoch in range(3):
        history.record(epoch, loss=1.0 / (epoch + 1), error=0.2, time=0.1)
    path = tmp_path / "bare.png"
    plotting.plot_training(history, path)
    assert png_size(path)[0] > 0


def test_no_suffix_is_png_at_that_exact_path(mpl, tmp_path):
    path = tmp_path / "curves"
    plotting.plot_training(make_history(), path)
    assert path.is_file() and not (tmp_path / "curves.png").exists()
    png_size(path)


def test_svg_by_suffix(mpl, tmp_path):
    path = tmp_path / "curves.svg"
    plotting.plot_training(make_history(), path)
    assert b"<svg" in path.read_bytes()[:2000]


def test_unknown_suffix_is_refused(mpl, tmp_path):
    with pytest.raises(ValueError, match=r"unknown image format 'xyz'.*\.png"):
        plotting.plot_training(make_history(), tmp_path / "curves.xyz")
    assert not (tmp_path / "curves.xyz").exists()


def test_empty_history_is_refused(mpl, tmp_path):
    with pytest.raises(ValueError, match="no training records"):
        plotting.plot_training(History(), tmp_path / "empty.png")


def test_pyplot_not_imported(mpl, tmp_path, monkeypatch):
    # pyplot would pick (and could switch) a user's interactive backend; the
    # Figure/Agg pair draws off-screen without it
    for name in [m for m in sys.modules if m == "matplotlib.pyplot"]:
        monkeypatch.delitem(sys.modules, name)
    plotting.plot_training(make_history(), tmp_path / "c.png")
    assert "matplotlib.pyplot" not in sys.modules


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    # None in sys.modules makes the import fail as if matplotlib were absent
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pip install "fastnn\[plot\]"'):
        plotting.plot_training(make_history(), tmp_path / "curves.png")
    assert not (tmp_path / "curves.png").exists()
