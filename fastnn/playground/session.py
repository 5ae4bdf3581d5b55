"""The playground's training state machine: settings, data, the network and its pictures.

One :class:`Session` owns one :class:`fastnn.Network` and the toy data it learns.
Its training thread is the only code that touches them: it builds the data and
the network, trains one step at a time (one pass over the training points in
mini-batches, the original's "epoch") while playing, and publishes a
*snapshot* after each change and, while training, a few times a second: the
step, the training and test loss and their history, the output over a grid of
the plane (the decision boundary or the regression surface), each hidden unit's
response, and the points.  The HTTP threads never touch the network: they check
a change of the settings (:func:`check_settings`, the one place that validates
the page's input), hand the training thread a command, wait until it has been
carried out and read the snapshot it published.  So a slow step (compiling the
kernels the first time) never blocks the page's polling, and no two threads
ever run the kernels on one network.

Which change rebuilds what (as in the original):

- the data (``problem``, ``dataset``, ``noise``, ``train_percent``,
  ``points``): new points and a new network;
- the network's shape (``activation``, ``hidden``, ``features``): a new network
  on the same points;
- ``optimizer``: the next step starts with fresh optimizer state;
- the rest (``lr``, ``regularization``, ``reg_rate``, ``batch_size``,
  ``steps_per_second``): the next step uses them.
"""

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace

import numpy as np

from fastnn.network import Network
from fastnn.optim import kernel_path, step_settings
from fastnn.playground import datasets2d
from fastnn.threads import available_threads
from fastnn.training import DivergenceError
from fastnn.validation import (
    BACKENDS,
    check_bool,
    check_choice,
    check_int,
    check_n_threads,
    check_real,
    check_seed,
)

PROBLEMS = ("classification", "regression")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "identity")
REGULARIZATIONS = ("none", "L2")
OPTIMIZERS = ("sgd", "momentum", "adam")
#: the momentum of the "momentum" optimizer (SGD with PyTorch's heavy-ball momentum)
MOMENTUM = 0.9

#: limits of the integer settings, inclusive
LIMITS = {
    "points": (10, 10_000),
    "batch_size": (1, 10_000),
    "hidden_layers": (0, 8),
    "hidden_width": (1, 256),
    "steps_per_second": (1, 1000),
    "steps": (1, 10_000),  # one /api/step request
}

#: cells per side of the output grid, and of each hidden unit's picture
GRID = 60
UNIT_GRID = 20
#: hidden units are drawn when the network has at most this many (the original has 48)
UNIT_LIMIT = 64
#: points of the loss history kept; beyond, every second point is dropped
HISTORY_LIMIT = 1000
#: while playing, a snapshot at most this often (the page polls about as often)
PUBLISH_SECONDS = 0.08
#: how long a request waits for the training thread (a cold compile of a path takes ~30 s)
WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class Settings:
    """The page's controls; the defaults are the original's.

    Attributes
    ----------
    problem : {"classification", "regression"}
    dataset : str
        ``circle``, ``xor``, ``gauss``, ``spiral`` (classification), ``plane``,
        ``multi_gauss`` (regression).
    noise : float
        In [0, 50], percent as on the page (the original's 0-0.5 scale times 100).
    train_percent : float
        Share of the points used for training, in [10, 90]; the rest are test points.
    points : int
        Number of points in all.
    batch_size : int
    lr : float
        Learning rate, > 0.
    activation : {"relu", "tanh", "sigmoid", "identity"}
        Of every hidden layer.
    regularization : {"none", "L2"}
        L2 is fastnn's ``weight_decay`` (on the weights, not the biases).
    reg_rate : float
        The L2 strength, >= 0 (ignored with ``regularization="none"``).
    optimizer : {"sgd", "momentum", "adam"}
        Plain SGD, SGD with momentum 0.9, or Adam.
    hidden : tuple of int
        Widths of the hidden layers (none for a linear model).
    features : tuple of str
        The network's inputs, names from :data:`fastnn.playground.datasets2d.FEATURES`.
    steps_per_second : int
        The pace while playing (at most; a step may take longer).
    """

    problem: str = "classification"
    dataset: str = "circle"
    noise: float = 0.0
    train_percent: float = 50.0
    points: int = 500
    batch_size: int = 10
    lr: float = 0.03
    activation: str = "tanh"
    regularization: str = "none"
    reg_rate: float = 0.0
    optimizer: str = "sgd"
    hidden: tuple = (4, 2)
    features: tuple = ("x1", "x2")
    steps_per_second: int = 30

    def to_dict(self):
        """The settings as JSON-ready values (lists for the tuples)."""
        values = asdict(self)
        values["hidden"] = list(self.hidden)
        values["features"] = list(self.features)
        return values

    @property
    def weight_decay(self):
        """fastnn's ``weight_decay``: the L2 rate, or 0 without regularisation."""
        return self.reg_rate if self.regularization == "L2" else 0.0


#: settings whose change makes new points (and so a new network)
DATA_FIELDS = ("problem", "dataset", "noise", "train_percent", "points")
#: settings whose change makes a new network on the same points
NETWORK_FIELDS = ("activation", "hidden", "features")


def _bounded_int(name, value, limits=None):
    low, high = limits or LIMITS[name]
    value = check_int(name, value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}]; got {value}")
    return value


def _check_hidden(value):
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"hidden must be a list of layer widths such as [4, 2]; got {value!r}")
    low, high = LIMITS["hidden_layers"]
    if not low <= len(value) <= high:
        raise ValueError(f"hidden must list {low} to {high} layer widths; got {len(value)}")
    return tuple(_bounded_int(f"hidden[{i}]", width, LIMITS["hidden_width"])
                 for i, width in enumerate(value))


def _check_features(value):
    names = tuple(datasets2d.FEATURES)
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"features must be a list of names from {list(names)}; got {value!r}")
    chosen = {check_choice("feature", name, names) for name in value}
    if not chosen:
        raise ValueError(f"features must name at least one input, from {list(names)}")
    return tuple(name for name in names if name in chosen)  # the page's order, no repeats


#: one check per setting; each returns the converted value or raises ValueError/TypeError
_CHECKS = {
    "problem": lambda v: check_choice("problem", v, PROBLEMS),
    "dataset": lambda v: check_choice("dataset", v,
                                      datasets2d.CLASSIFICATION + datasets2d.REGRESSION),
    "noise": lambda v: check_real("noise", v, 0, 50),
    "train_percent": lambda v: check_real("train_percent", v, 10, 90),
    "points": lambda v: _bounded_int("points", v),
    "batch_size": lambda v: _bounded_int("batch_size", v),
    "lr": lambda v: check_real("lr", v, 0, min_inclusive=False),
    "activation": lambda v: check_choice("activation", v, ACTIVATIONS),
    "regularization": lambda v: check_choice("regularization", v, REGULARIZATIONS),
    "reg_rate": lambda v: check_real("reg_rate", v, 0),
    "optimizer": lambda v: check_choice("optimizer", v, OPTIMIZERS),
    "hidden": _check_hidden,
    "features": _check_features,
    "steps_per_second": lambda v: _bounded_int("steps_per_second", v),
}


def check_settings(current, changes):
    """Apply ``changes`` to ``current`` after checking every one of them.

    The one place where the page's (or any client's) values are checked.  A
    dataset implies its problem; a change of the problem alone switches to that
    problem's first dataset.

    Parameters
    ----------
    current : Settings
    changes : dict
        Setting names to new values, as decoded from JSON.

    Returns
    -------
    Settings

    Raises
    ------
    ValueError, TypeError
        The first bad name or value, saying what was expected; nothing is changed.
    """
    if not isinstance(changes, dict):
        raise TypeError(f"settings must be a JSON object of names and values; got {changes!r}")
    unknown = [name for name in changes if name not in _CHECKS]
    if unknown:
        raise ValueError(f"unknown setting {unknown[0]!r}; expected some of {list(_CHECKS)}")
    checked = {name: _CHECKS[name](value) for name, value in changes.items()}
    if "dataset" in checked and "problem" not in checked:
        checked["problem"] = datasets2d.problem_of(checked["dataset"])
    elif "problem" in checked and "dataset" not in checked:
        if datasets2d.problem_of(current.dataset) != checked["problem"]:
            checked["dataset"] = datasets2d.DATASETS[checked["problem"]][0]
    settings = replace(current, **checked)
    if datasets2d.problem_of(settings.dataset) != settings.problem:
        raise ValueError(f"dataset {settings.dataset!r} is a "
                         f"{datasets2d.problem_of(settings.dataset)} dataset; the "
                         f"{settings.problem} datasets are "
                         f"{list(datasets2d.DATASETS[settings.problem])}")
    return settings


def options():
    """What the controls may be set to: choices, limits and defaults (``/api/options``)."""
    return {
        "problems": list(PROBLEMS),
        "datasets": {problem: list(names) for problem, names in datasets2d.DATASETS.items()},
        "activations": list(ACTIVATIONS),
        "regularizations": list(REGULARIZATIONS),
        "optimizers": list(OPTIMIZERS),
        "features": list(datasets2d.FEATURES),
        "limits": {name: list(bounds) for name, bounds in LIMITS.items()},
        "defaults": Settings().to_dict(),
        "extent": datasets2d.EXTENT,
        "grid": GRID,
        "unit_grid": UNIT_GRID,
        "unit_limit": UNIT_LIMIT,
    }


def _finite(value):
    """A float for JSON, or None for NaN and infinities (which JSON cannot carry)."""
    value = float(value)
    return value if np.isfinite(value) else None


def _rounded(array, decimals=4):
    """Nested lists of finite floats for JSON (a diverging net can leave inf in a picture)."""
    return np.round(np.nan_to_num(np.asarray(array, dtype=np.float64), nan=0.0,
                                  posinf=1e6, neginf=-1e6), decimals).tolist()


class Session:
    """A playground: its settings, its training thread and the snapshots it publishes.

    Parameters
    ----------
    seed : int, default 0
        Seeds the points and the networks; each reset draws the next network,
        each regeneration the next points, so a run can be repeated.
    backend : {"numba", "numpy"}, default "numba"
    n_threads : int, default 1
        Threads the network uses; one is the fastest for the playground's small
        networks (waking threads costs more than the arithmetic of a few units).
    settings : Settings, optional
        The starting settings (the original's defaults).

    Every public method is safe to call from any thread.  Use it as a context
    manager, or call :meth:`start` and :meth:`close`.
    """

    def __init__(self, seed=0, backend="numba", n_threads=1, settings=None):
        self.seed = check_seed(seed)
        self.backend = check_choice("backend", backend, BACKENDS)
        self.n_threads = check_n_threads(n_threads, available_threads())
        self._cond = threading.Condition()
        # shared with the HTTP threads, under self._cond
        self._settings = settings or Settings()
        self._commands = []        # (ticket, kind, argument)
        self._next_ticket = 1
        self._done = 0             # the last ticket carried out
        self._playing = False
        self._closing = False
        self._failure = None       # the training thread's own error, if it died
        self._snapshot = {"step": 0, "status": "starting", "playing": False,
                          "config": self._settings.to_dict(), "message": None}
        self._snapshot_json = None
        self._thread = threading.Thread(target=self._run, name="fastnn-playground",
                                        daemon=True)
        # the training thread's own (no lock: no other thread reads them)
        self._applied = None       # the settings the data and the network were made for
        self._data_generation = 0
        self._network_generation = 0
        self._ready_paths = set()
        self._message = None
        self._last_publish = 0.0
        self._step_times = deque(maxlen=64)

    # ------------------------------------------------------------ lifetime

    def start(self):
        """Start the training thread (paused: nothing trains before :meth:`play`)."""
        self._thread.start()
        return self

    def wait_until_ready(self, timeout=WAIT_SECONDS):
        """Wait for the first snapshot of a network (after the kernels are loaded or
        compiled); returns it, or None after ``timeout`` seconds."""
        with self._cond:
            ready = self._cond.wait_for(
                lambda: "boundary" in self._snapshot or self._failure is not None, timeout)
            return self._snapshot if ready else None

    def close(self, timeout=10.0):
        """Stop the training thread after its current step; waiting requests return."""
        with self._cond:
            self._closing = True
            self._playing = False
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------ the HTTP threads' side

    def state(self):
        """The latest snapshot (a dict; do not modify it).

        Keys: ``step``, ``status`` (``starting``, ``compiling``, ``paused``,
        ``running``, ``error``), ``playing``, ``train_loss``, ``test_loss``,
        ``history`` (``step``, ``train_loss``, ``test_loss`` lists), ``config``
        (the settings the snapshot shows), ``network`` (``sizes``,
        ``parameters``, ``description``), ``boundary`` (``size``, ``extent`` and
        ``values``: rows from the top of the plane, x2 = +extent, down; columns
        from x1 = -extent; the probability of class 1 or the regression output),
        ``units`` (per hidden layer, per unit, a ``unit_size`` square picture of
        its activation, or None for large networks), ``points`` (``train`` and
        ``test`` lists of ``[x1, x2, label]``), ``rate`` (steps per second
        lately) and ``message`` (why training stopped, or None).
        """
        with self._cond:
            return self._snapshot

    def state_json(self):
        """:meth:`state` encoded as JSON bytes, encoded once per snapshot."""
        import json

        with self._cond:
            snapshot, encoded = self._snapshot, self._snapshot_json
        if encoded is None:
            encoded = json.dumps(snapshot, allow_nan=False, separators=(",", ":")).encode()
            with self._cond:
                if self._snapshot is snapshot:
                    self._snapshot_json = encoded
        return encoded

    def configure(self, changes):
        """Change some settings (see :func:`check_settings`); returns the new state.

        Raises
        ------
        ValueError, TypeError
            A bad name or value; the settings and the run are left as they were.
        """
        with self._cond:
            self._settings = check_settings(self._settings, changes)
        return self._submit("configure")

    def play(self):
        """Train continuously, ``steps_per_second`` at most; returns the state."""
        with self._cond:
            self._playing = True
        return self._submit("play")

    def pause(self):
        """Stop training after the current step; returns the state."""
        with self._cond:
            self._playing = False
        return self._submit("pause")

    def step(self, steps=1):
        """Train ``steps`` steps now (playing or not); returns the state after them."""
        return self._submit("step", _bounded_int("steps", steps))

    def reset(self, regenerate=False):
        """A new network (the next seed) on the same points, or on new ones.

        Parameters
        ----------
        regenerate : bool, default False
            Also draw new points (the original's "regenerate").
        """
        return self._submit("reset", check_bool("regenerate", regenerate))

    def _submit(self, kind, argument=None):
        """Queue a command for the training thread and wait until it is carried out."""
        with self._cond:
            if self._failure is not None:
                raise RuntimeError(self._failure)
            if self._closing:
                return self._snapshot
            ticket = self._next_ticket
            self._next_ticket += 1
            self._commands.append((ticket, kind, argument))
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._done >= ticket or self._closing
                                or self._failure is not None, timeout=WAIT_SECONDS)
            if self._failure is not None:
                raise RuntimeError(self._failure)
            return self._snapshot

    # ------------------------------------------------------------ the training thread

    def _run(self):
        try:
            self._loop()
        except Exception as error:  # a bug of ours: say so on the page, keep serving
            with self._cond:
                self._failure = f"the playground's training thread stopped: {error!r}"
                self._snapshot = dict(self._snapshot, status="error", playing=False,
                                      message=self._failure)
                self._snapshot_json = None
                self._cond.notify_all()
            raise

    def _loop(self):
        with self._cond:
            settings = self._settings
        # the first network's losses run the forward kernels: say that they compile
        self._show_compiling()
        self._apply(settings)
        self._ready_paths.add("forward")
        self._prepare_training(settings)  # so that the first play starts at once
        self._publish()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._commands or self._playing or self._closing)
                if self._closing:
                    return
                commands, self._commands = self._commands, []
                settings = self._settings
            self._apply(settings)
            if commands:
                for _, kind, argument in commands:
                    if kind == "reset":
                        self._reset(settings, regenerate=argument)
                    elif kind == "step":
                        self._train(settings, argument)
                self._publish(done=commands[-1][0])
                continue
            started = time.perf_counter()
            self._train(settings, 1)
            if time.perf_counter() - self._last_publish >= PUBLISH_SECONDS:
                self._publish()
            # the pace: sleep out the rest of the step's share of a second, but
            # wake at once for a command
            rest = 1.0 / settings.steps_per_second - (time.perf_counter() - started)
            if rest > 0:
                with self._cond:
                    self._cond.wait_for(lambda: self._commands or self._closing, timeout=rest)

    def _apply(self, settings):
        """Rebuild what a change of the settings needs (see the module docstring)."""
        old = self._applied
        if old is settings:
            return
        if old is None or any(getattr(old, f) != getattr(settings, f) for f in DATA_FIELDS):
            self._make_data(settings)
            self._make_network(settings)
        elif any(getattr(old, f) != getattr(settings, f) for f in NETWORK_FIELDS):
            self._make_network(settings)
        elif old.optimizer != settings.optimizer:
            self._fresh_optimizer = True
        self._applied = settings

    def _reset(self, settings, regenerate):
        if regenerate:
            self._data_generation += 1
            self._make_data(settings)
        self._network_generation += 1
        self._make_network(settings)

    def _make_data(self, settings):
        points, labels = datasets2d.make_points(
            settings.dataset, settings.points, settings.noise / 100,
            seed=[self.seed, self._data_generation])
        self._points = datasets2d.split(points, labels, settings.train_percent)

    def _make_network(self, settings):
        classification = settings.problem == "classification"
        features = settings.features
        (train_points, train_labels), (test_points, test_labels) = self._points
        self._train_data = (datasets2d.features(train_points, features), train_labels)
        self._test_data = (datasets2d.features(test_points, features), test_labels)
        self._grid = datasets2d.features(datasets2d.grid(GRID), features)
        self._net = Network([len(features), *settings.hidden, 1],
                            activation=settings.activation,
                            output="sigmoid" if classification else "identity",
                            seed=self.seed + self._network_generation,
                            backend=self.backend, n_threads=self.n_threads)
        self._fresh_optimizer = True
        self._step = 0
        self._record_every = 1
        self._history = {"step": [], "train_loss": [], "test_loss": []}
        self._message = None
        self._losses = self._evaluate()
        self._record()

    def _show_compiling(self):
        """Publish the last snapshot with status ``compiling`` (no new pictures: drawing
        them would run the very kernels that are compiling)."""
        with self._cond:
            self._snapshot = dict(self._snapshot, status="compiling")
            self._snapshot_json = None
            self._cond.notify_all()

    @staticmethod
    def _fit_options(settings, n_rows):
        """fit's optimizer arguments for the settings (the batch capped at the rows)."""
        return {"optimizer": "adam" if settings.optimizer == "adam" else "sgd",
                "momentum": MOMENTUM if settings.optimizer == "momentum" else 0.0,
                "batch_size": min(settings.batch_size, n_rows)}

    def _prepare_training(self, settings):
        """Compile (or load from the cache) the training kernels of these settings
        before their first use, saying so on the page."""
        options = self._fit_options(settings, self._train_data[0].shape[0])
        path = kernel_path(step_settings(self._net.dtype, options["optimizer"],
                                         momentum=options["momentum"]),
                           options["batch_size"])
        if path in self._ready_paths:
            return
        self._show_compiling()
        with self._net.thread_scope():  # the thread count the path is compiled for
            self._net.kernels.prepare(self._net.dtype, [path])
        self._ready_paths.add(path)

    def _train(self, settings, steps):
        """``steps`` passes over the training points; stops early on divergence or close."""
        X, y = self._train_data
        options = self._fit_options(settings, X.shape[0])
        self._prepare_training(settings)
        for _ in range(steps):
            if self._closing:
                break
            try:
                self._net.fit(X, y, epochs=1, lr=settings.lr,
                              weight_decay=settings.weight_decay,
                              warm_start=not self._fresh_optimizer, **options)
            except DivergenceError:
                self._diverged(settings)
                break
            self._fresh_optimizer = False
            self._message = None  # a divergence reported before is over
            self._step += 1
            self._step_times.append(time.perf_counter())
            self._losses = self._evaluate()
            if self._step % self._record_every == 0:
                self._record()
            if steps > 1 and time.perf_counter() - self._last_publish >= PUBLISH_SECONDS:
                self._publish()  # a long /api/step shows its progress

    def _diverged(self, settings):
        with self._cond:
            self._playing = False
        regularised = " or the regularisation rate" if settings.weight_decay else ""
        self._message = (f"training diverged in step {self._step + 1} (a loss or a weight "
                         f"became NaN or infinite) with learning rate {settings.lr:g}; the "
                         f"network is kept as it was before that step. Lower the learning "
                         f"rate{regularised}, then play again.")
        self._publish()  # now: paused, the loop would not publish again

    def _evaluate(self):
        return self._net.loss(*self._train_data), self._net.loss(*self._test_data)

    def _record(self):
        history = self._history
        history["step"].append(self._step)
        history["train_loss"].append(_finite(self._losses[0]))
        history["test_loss"].append(_finite(self._losses[1]))
        if len(history["step"]) > HISTORY_LIMIT:
            # thin out: every second point, and record half as often from now on
            for values in history.values():
                del values[1::2]
            self._record_every *= 2

    def _pictures(self):
        """The output over the grid and each hidden unit's activation, by the kernels."""
        net = self._net
        architecture = net.architecture
        n = self._grid.shape[0]
        workspace = architecture.workspace(n, deltas=False)
        outputs = np.empty((n, 1), dtype=net.dtype)
        with net.thread_scope():
            net.kernels.forward(net.params, architecture.table, architecture.hidden,
                                self._grid, workspace.acts)
            net.kernels.output_activation(architecture.output_code, workspace.logits(n),
                                          outputs)
        boundary = outputs.reshape(GRID, GRID)
        units = None
        hidden = architecture.sizes[1:-1]
        if sum(hidden) <= UNIT_LIMIT:
            stride = GRID // UNIT_GRID  # the centre cell of each stride x stride block
            units = []
            for layer, width in enumerate(hidden):
                block = workspace.block(workspace.acts, layer, n).reshape(GRID, GRID, width)
                units.append(_rounded(
                    block[stride // 2::stride, stride // 2::stride].transpose(2, 0, 1), 3))
        return boundary, units

    def _publish(self, done=None):
        """Make a new snapshot; ``done``: the last command it carries out."""
        boundary, units = self._pictures()
        (train_points, train_labels), (test_points, test_labels) = self._points
        now = time.perf_counter()
        times = [t for t in self._step_times if now - t <= 2.0]
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
        with self._cond:
            playing = self._playing
        net = self._net
        snapshot = {
            "step": self._step,
            "status": "running" if playing else "paused",
            "playing": playing,
            "train_loss": _finite(self._losses[0]),
            "test_loss": _finite(self._losses[1]),
            "history": {name: list(values) for name, values in self._history.items()},
            "config": self._applied.to_dict(),
            "network": {"sizes": list(net.sizes), "parameters": int(net.n_params),
                        "description": net.architecture.describe()},
            "boundary": {"size": GRID, "extent": datasets2d.EXTENT,
                         "values": _rounded(boundary, 3)},
            "units": units,
            "unit_size": UNIT_GRID,
            "points": {"train": _rounded(np.column_stack([train_points, train_labels]), 3),
                       "test": _rounded(np.column_stack([test_points, test_labels]), 3)},
            "rate": round(rate, 1),
            "message": self._message,
        }
        with self._cond:
            self._snapshot = snapshot
            self._snapshot_json = None
            if done is not None:
                self._done = max(self._done, done)
            self._cond.notify_all()
        self._last_publish = time.perf_counter()


__all__ = ["Session", "Settings", "check_settings", "options"]
