"""What fit offers beyond plain SGD: schedules, validation and early stopping,
callbacks, weights, warm starts, per-iteration records, faults and checkpoints."""

import functools
import math

import numpy as np
import pytest

from fastnn import DivergenceError, Network, schedules
from fastnn.checkpoint import read_checkpoint

import helpers

#: Gaussian clusters, well separated unless ``spread`` is small
blobs = functools.partial(helpers.blobs, n=300, d=8)


# ---------------------------------------------------------------- schedules

@pytest.mark.parametrize("schedule,expected", [
    (schedules.ConstantLR(), [0.1] * 5),
    (schedules.StepLR(2, gamma=0.5), [0.1, 0.1, 0.05, 0.05, 0.025]),
    (schedules.ExponentialLR(0.9), [0.1 * 0.9 ** e for e in range(5)]),
    (schedules.CosineLR(4, eta_min=0.02),
     [0.02 + 0.08 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]),
    (lambda epoch: 0.1 / (1 + epoch), [0.1 / (1 + e) for e in range(5)]),
], ids=["constant", "step", "exponential", "cosine", "callable"])
def test_schedules_set_each_epochs_rate(schedule, expected):
    X, y = blobs()
    history = Network([8, 6, 3]).fit(X, y, epochs=5, lr=0.1, lr_schedule=schedule)
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-12)


def test_reduce_on_plateau_follows_pytorch_rules():
    plateau = schedules.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1)
    rates = []
    for loss in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]:
        rates.append(plateau.lr_at(0, 1.0))
        plateau.observe(loss)
    # a drop after more than `patience` bad epochs, then one epoch of cooldown
    assert rates == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert plateau.lr_at(0, 1.0) == 0.25


def test_reduce_on_plateau_matches_pytorch():
    torch = pytest.importorskip("torch")
    losses = np.random.default_rng(0).uniform(0.5, 1.0, 40).cumsum()[::-1] / 20
    losses[10:25] = losses[10]  # a long plateau
    mine = schedules.ReduceLROnPlateau(factor=0.3, patience=2, cooldown=2, threshold=1e-3)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.3, patience=2,
                                                        cooldown=2, threshold=1e-3)
    for loss in losses:
        assert mine.lr_at(0, 1.0) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-12)
        mine.observe(float(loss))
        theirs.step(float(loss))


def test_reduce_on_plateau_in_fit_watches_validation_loss():
    X, y = blobs(n=200)
    history = Network([8, 6, 3]).fit(X, y, epochs=8, lr=0.05, validation_split=0.25,
                                     lr_schedule=schedules.ReduceLROnPlateau(patience=0))
    assert history["lr"][0] == 0.05
    assert all(b <= a for a, b in zip(history["lr"], history["lr"][1:]))


def test_schedule_arguments_are_checked():
    with pytest.raises(ValueError, match="step_size must be an integer >= 1"):
        schedules.StepLR(0)
    with pytest.raises(ValueError, match=r"factor must be in \(0, 1\)"):
        schedules.ReduceLROnPlateau(factor=2)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        schedules.ExponentialLR("0.9")
    X, y = blobs(n=20)
    with pytest.raises(ValueError, match=r"lr_schedule\(0\) returned -1"):
        Network([8, 3]).fit(X, y, epochs=1, lr_schedule=lambda e: -1)


# ---------------------------------------------------- validation, early stopping

def test_validation_metrics_every_epoch():
    X, y = blobs()
    history = Network([8, 6, 3]).fit(X[:200], y[:200], epochs=3,
                                     validation_data=(X[200:], y[200:]))
    assert set(history.history) == {"loss", "error", "lr", "time", "val_loss", "val_error"}
    net = Network([8, 6, 3])
    net.fit(X[:200], y[:200], epochs=3)
    assert history["val_loss"][-1] == pytest.approx(net.loss(X[200:], y[200:]), rel=1e-6)


def test_validation_r2_for_regression():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 3))
    y = X @ [1.0, -2.0, 0.5]
    history = Network([3, 1], output="identity").fit(X, y, epochs=3, validation_split=0.2)
    assert "val_r2" in history and "val_error" not in history


def test_validation_split_holds_out_the_last_rows():
    X, y = blobs(n=100)
    net = Network([8, 6, 3], seed=0)
    reference = Network([8, 6, 3], seed=0)
    split = net.fit(X, y, epochs=2, validation_split=0.2)
    given = reference.fit(X[:80], y[:80], epochs=2, validation_data=(X[80:], y[80:]))
    np.testing.assert_array_equal(net.params, reference.params)
    assert split["val_loss"] == given["val_loss"]


def test_early_stopping_restores_the_best_epoch():
    """Overfit a tiny noisy set: validation loss turns up, training stops, best restored."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 20))
    y = rng.integers(0, 2, 60)  # labels are noise: validation loss can only get worse
    X_val = rng.standard_normal((60, 20))
    y_val = rng.integers(0, 2, 60)
    net = Network([20, 64, 2], dtype="float64", seed=0)
    history = net.fit(X, y, epochs=200, batch_size=10, lr=0.1, momentum=0.9,
                      validation_data=(X_val, y_val), patience=3)
    assert history.stop_reason == "early_stopping"
    assert len(history) < 200
    best = int(np.argmin(history["val_loss"]))
    assert history.best_epoch == history.epoch[best]
    assert len(history) == best + 1 + 3
    assert net.loss(X_val, y_val) == pytest.approx(history["val_loss"][best], rel=1e-12)


# ------------------------------------------------------------------ callbacks

def test_callbacks_see_history_and_can_stop():
    X, y = blobs()
    seen = []

    def stop_after_two(network, history):
        seen.append((network, len(history)))
        return len(history) == 2

    class Recorder:
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, network, history):
            self.epochs.append(history.epoch[-1])

    recorder = Recorder()
    net = Network([8, 6, 3])
    history = net.fit(X, y, epochs=10, callbacks=[stop_after_two, recorder])
    assert len(history) == 2 and history.stop_reason == "callback"
    assert seen == [(net, 1), (net, 2)]
    assert recorder.epochs == [0, 1]


# ------------------------------------------------------------------- weights

@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_sample_weight_equals_repeating_rows(backend):
    """Full-batch GD: weight 2 on a row is the same as the row twice."""
    X, y = blobs(n=40)
    w = np.where(np.arange(40) % 3 == 0, 2.0, 1.0)
    repeated = np.repeat(np.arange(40), w.astype(int))
    weighted = Network([8, 5, 3], dtype="float64", seed=0, backend=backend)
    duplicated = Network([8, 5, 3], dtype="float64", seed=0, backend=backend)
    weighted.fit(X, y, epochs=3, batch_size=1000, sample_weight=w, shuffle=False)
    duplicated.fit(X[repeated], y[repeated], epochs=3, batch_size=1000, shuffle=False)
    np.testing.assert_allclose(weighted.params, duplicated.params, rtol=1e-12, atol=1e-14)
    assert weighted.loss(X, y, sample_weight=w) == pytest.approx(
        duplicated.loss(X[repeated], y[repeated]), rel=1e-12)
    np.testing.assert_allclose(weighted.gradient(X, y, sample_weight=w),
                               duplicated.gradient(X[repeated], y[repeated]), rtol=1e-10,
                               atol=1e-14)


def test_zero_weight_rows_are_ignored():
    X, y = blobs(n=60)
    w = np.ones(60)
    w[40:] = 0.0
    a = Network([8, 5, 3], dtype="float64", seed=0)
    b = Network([8, 5, 3], dtype="float64", seed=0)
    a.fit(X, y, epochs=2, batch_size=1000, sample_weight=w, shuffle=False)
    b.fit(X[:40], y[:40], epochs=2, batch_size=1000, shuffle=False)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12)


def test_a_batch_of_zero_weights_takes_no_step():
    X, y = blobs(n=20)
    w = np.zeros(20)
    w[:10] = 1.0
    net = Network([8, 5, 3], dtype="float64", seed=0)
    probe = Network([8, 5, 3], dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=10, sample_weight=w, shuffle=False)
    probe.fit(X[:10], y[:10], epochs=1, batch_size=10, shuffle=False)
    np.testing.assert_array_equal(net.params, probe.params)


def test_class_weight_balanced_and_mapping():
    X, y = blobs(n=300, classes=2)
    y = np.where(np.arange(300) < 270, 0, 1)  # 90% / 10%
    balanced = Network([8, 5, 2], dtype="float64", seed=0)
    mapped = Network([8, 5, 2], dtype="float64", seed=0)
    manual = Network([8, 5, 2], dtype="float64", seed=0)
    balanced.fit(X, y, epochs=2, class_weight="balanced")
    weights = {0: 300 / (2 * 270), 1: 300 / (2 * 30)}
    mapped.fit(X, y, epochs=2, class_weight=weights)
    manual.fit(X, y, epochs=2, sample_weight=np.where(y == 0, weights[0], weights[1]))
    np.testing.assert_allclose(balanced.params, manual.params, rtol=1e-12)
    np.testing.assert_allclose(mapped.params, manual.params, rtol=1e-12)


# ------------------------------------------------------- warm starts, partial_fit

def test_partial_fit_keeps_optimizer_state():
    """Two partial_fit calls with momentum equal one two-epoch fit on the same order."""
    X, y = blobs(n=50)
    two_calls = Network([8, 5, 3], dtype="float64", seed=0)
    one_fit = Network([8, 5, 3], dtype="float64", seed=0)
    for _ in range(2):
        two_calls.partial_fit(X, y, batch_size=10, lr=0.05, momentum=0.9, shuffle=False)
    one_fit.fit(X, y, epochs=2, batch_size=10, lr=0.05, momentum=0.9, shuffle=False)
    np.testing.assert_array_equal(two_calls.params, one_fit.params)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_warm_start_continues_and_cold_start_resets(optimizer):
    X, y = blobs(n=50)
    options = dict(batch_size=10, lr=0.01, shuffle=False, optimizer=optimizer)
    if optimizer == "sgd":
        options["momentum"] = 0.9
    continued = Network([8, 5, 3], dtype="float64", seed=0)
    whole = Network([8, 5, 3], dtype="float64", seed=0)
    restarted = Network([8, 5, 3], dtype="float64", seed=0)
    continued.fit(X, y, epochs=2, **options)
    continued.fit(X, y, epochs=1, warm_start=True, **options)
    whole.fit(X, y, epochs=3, **options)
    np.testing.assert_array_equal(continued.params, whole.params)
    restarted.fit(X, y, epochs=2, **options)
    restarted.fit(X, y, epochs=1, **options)
    assert not np.array_equal(restarted.params, whole.params)


def test_partial_fit_refuses_fit_only_options():
    X, y = blobs(n=20)
    with pytest.raises(TypeError, match="partial_fit does not take 'patience'"):
        Network([8, 3]).partial_fit(X, y, patience=2)


# -------------------------------------------------------- iterations, progress

def test_eval_every_records_every_batch_and_validates_every_n_steps():
    X, y = blobs(n=400)
    history = Network([8, 6, 3]).fit(X[:300], y[:300], epochs=3, batch_size=20, eval_every=7,
                                     validation_data=(X[300:], y[300:]))
    steps = history.iterations["step"]
    assert steps == list(range(1, 3 * 15 + 1))
    assert len(history.iterations["loss"]) == len(history.iterations["error"]) == 45
    assert history.validations["step"] == list(range(7, 46, 7))
    assert len(history.validations["val_loss"]) == len(history.validations["val_error"]) == 6
    # the per-batch losses average to the epoch loss
    assert np.mean(history.iterations["loss"][:15]) == pytest.approx(history["loss"][0])


def test_chunked_epochs_train_exactly_like_whole_epochs():
    X, y = blobs(n=200)
    whole = Network([8, 6, 3], seed=3)
    chunked = Network([8, 6, 3], seed=3)
    whole.fit(X, y, epochs=2, batch_size=16, momentum=0.9)
    chunked.fit(X, y, epochs=2, batch_size=16, momentum=0.9, eval_every=5)
    np.testing.assert_array_equal(whole.params, chunked.params)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs(n=100)
    Network([8, 6, 3]).fit(X, y, epochs=3, verbose=1, validation_split=0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("epoch 1/3") and "val_error" in lines[0] and "loss" in lines[0]


def test_progress_bar_draws_and_trains_the_same(capsys):
    pytest.importorskip("tqdm")
    X, y = blobs(n=200)
    quiet = Network([8, 6, 3], seed=1)
    shown = Network([8, 6, 3], seed=1)
    quiet.fit(X, y, epochs=2, batch_size=10)
    shown.fit(X, y, epochs=2, batch_size=10, progress=True)
    assert "batch" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet.params, shown.params)


# ---------------------------------------------------------------------- faults

@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_divergence_stops_restores_and_names_the_epoch(backend):
    X, y = blobs(n=100, spread=30.0)
    net = Network([8, 16, 3], output="softmax", seed=0, backend=backend)
    net.fit(X, y, epochs=1, lr=1e-3)
    before = net.params.copy()
    with np.errstate(all="ignore"), pytest.raises(
            DivergenceError, match=r"diverged in epoch 1 .*smaller learning rate") as raised:
        net.fit(X, y, epochs=5, lr=1e12, momentum=0.9)
    np.testing.assert_array_equal(net.params, before)
    assert raised.value.epoch == 1 and len(raised.value.history) == 0
    net.fit(X, y, epochs=1, lr=1e-3)  # still usable
    assert np.isfinite(net.params).all()


def interrupt_in_epoch(monkeypatch, network, epoch, call_in_epoch=2):
    """Ctrl-C in the middle of ``epoch`` (0-based, over the network's life): the
    backend's ``call_in_epoch``-th train_epoch call of that epoch changes the
    parameters and then raises KeyboardInterrupt, as a Ctrl-C arriving there would."""
    kernels = network.kernels
    real = kernels.train_epoch
    calls = {"n": 0}

    def flaky(*args):
        if network.training_state.epochs_done == epoch:
            calls["n"] += 1
            if calls["n"] == call_in_epoch:
                real(*args)
                raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(kernels, "train_epoch", flaky)


def test_ctrl_c_keeps_the_last_completed_epoch(monkeypatch):
    X, y = blobs(n=100)
    reference = Network([8, 6, 3], seed=2)
    reference.fit(X, y, epochs=2, momentum=0.9, batch_size=10, eval_every=3)
    interrupted = Network([8, 6, 3], seed=2)
    interrupt_in_epoch(monkeypatch, interrupted, 2)
    history = interrupted.fit(X, y, epochs=5, momentum=0.9, batch_size=10, eval_every=3)
    assert history.stop_reason == "interrupted"
    assert len(history) == 2 and history.epoch == [0, 1]
    assert history.iterations["step"] == list(range(1, 21))
    np.testing.assert_array_equal(interrupted.params, reference.params)


# ----------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_checkpointed_interrupted_resumed_fit_is_bit_identical(tmp_path, monkeypatch, optimizer):
    X, y = blobs(n=120)
    options = dict(epochs=6, batch_size=16, lr=0.05 if optimizer == "sgd" else 0.01,
                   optimizer=optimizer, validation_split=0.25, patience=10,
                   lr_schedule=schedules.ReduceLROnPlateau(patience=1, factor=0.5),
                   eval_every=4)
    if optimizer == "sgd":
        options.update(momentum=0.9, nesterov=True)
    path = tmp_path / "fit.ckpt"

    uninterrupted = Network([8, 6, 3], seed=5)
    full = uninterrupted.fit(X, y, **options)

    first = Network([8, 6, 3], seed=5)
    interrupt_in_epoch(monkeypatch, first, 2)
    cut = first.fit(X, y, checkpoint=path, **options)
    assert cut.stop_reason == "interrupted" and len(cut) == 2
    monkeypatch.undo()

    resumed = Network([8, 6, 3], seed=99)  # a fresh process would build a fresh network
    history = resumed.fit(X, y, checkpoint=path, resume=True, **options)
    np.testing.assert_array_equal(resumed.params, uninterrupted.params)
    assert history.history == full.history | {"time": history["time"]}
    assert history.iterations == full.iterations
    assert history.validations == full.validations
    assert history.epoch == full.epoch


def test_checkpoint_every_k_epochs_and_loadable_as_a_network(tmp_path):
    X, y = blobs(n=60)
    path = tmp_path / "every2.ckpt"
    net = Network([8, 6, 3], seed=1)
    writes = []
    def record(network, history):
        writes.append(path.exists() and read_checkpoint(path)[1].fit["epochs_done"])

    net.fit(X, y, epochs=5, checkpoint=path, checkpoint_every=2, callbacks=[record])
    # callbacks run before the epoch's checkpoint is written: they see the previous one
    assert writes == [False, False, 2, 2, 4]
    assert read_checkpoint(path)[1].fit["epochs_done"] == 5, "the end of the fit is saved too"
    loaded = Network.load(path)
    np.testing.assert_array_equal(loaded.params, net.params)


def test_resume_without_a_checkpoint_file_starts_fresh(tmp_path):
    X, y = blobs(n=60)
    fresh = Network([8, 6, 3], seed=1)
    resumed = Network([8, 6, 3], seed=1)
    fresh.fit(X, y, epochs=2)
    resumed.fit(X, y, epochs=2, checkpoint=tmp_path / "none.ckpt", resume=True)
    np.testing.assert_array_equal(fresh.params, resumed.params)


def test_resume_refuses_a_different_fit(tmp_path):
    X, y = blobs(n=60)
    path = tmp_path / "a.ckpt"
    Network([8, 6, 3], seed=1).fit(X, y, epochs=2, batch_size=10, checkpoint=path)
    other = Network([8, 6, 3], seed=1)
    before = other.params.copy()
    with pytest.raises(ValueError,
                       match=r"different fit \(batch_size: 10 in the checkpoint, 20 now"):
        other.fit(X, y, epochs=4, batch_size=20, checkpoint=path, resume=True)
    np.testing.assert_array_equal(other.params, before)
    with pytest.raises(ValueError, match="architecture"):
        Network([8, 7, 3], seed=1).fit(X, y, epochs=4, batch_size=10, checkpoint=path,
                                       resume=True)


def test_model_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    Network([8, 3]).save(path)
    with pytest.raises(ValueError, match="model file, not a checkpoint"):
        read_checkpoint(path)


def test_infinite_validation_loss_is_divergence():
    """The training loss (7e41) and the parameters (5e32) can still be finite in
    the epoch where training blows up; the validation loss is then infinite."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 4))
    y = X @ [1.0, -2.0, 0.5, 3.0]
    net = Network([4, 8, 1], output="identity", seed=0)
    before = net.params.copy()
    # epochs counted from 1 in the message, as the progress lines count them
    with np.errstate(all="ignore"), pytest.raises(DivergenceError,
                                                  match="diverged in epoch 1 of 3") as raised:
        net.fit(X[:150], y[:150], epochs=3, lr=3, validation_data=(X[150:], y[150:]))
    np.testing.assert_array_equal(net.params, before)
    assert raised.value.epoch == 0, "the attribute counts as History.epoch does, from 0"
    assert (raised.value.epoch_in_fit, raised.value.epochs, raised.value.lr) == (1, 3, 3.0)
