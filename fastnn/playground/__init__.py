"""``fastnn playground``: the TensorFlow Playground's live training page, trained by fastnn.

A local web page (served on 127.0.0.1 only) where a small network learns
two-dimensional toy data while you watch the decision boundary or regression
surface, each hidden unit's response and the training and test loss move,
with the original's controls: learning rate, activation, L2 regularisation
and its rate, problem type, hidden layers and widths, batch size, noise,
train/test ratio, dataset, optimizer, feature inputs, play/pause/step/reset.
The training is :class:`fastnn.Network` in a background thread.

Modules: :mod:`~fastnn.playground.datasets2d` (the toy data and the feature
inputs), :mod:`~fastnn.playground.session` (the settings and their checks,
the training thread and the snapshots it publishes),
:mod:`~fastnn.playground.server` (the HTTP server and its JSON API) and
``page.html`` (the page: plain JavaScript and canvases).

>>> from fastnn.playground import serve
>>> serve(port=8765)                      # doctest: +SKIP
"""

import importlib

#: the port ``fastnn playground`` listens on by default (on 127.0.0.1)
DEFAULT_PORT = 8765

#: the public names and their modules, imported on first use: every ``fastnn``
#: command builds the parser that names DEFAULT_PORT, and none but this one
#: needs the HTTP server (about 0.1 s of imports)
_EXPORTS = {"serve": "server", "PlaygroundServer": "server", "PortInUseError": "server",
            "Session": "session", "Settings": "session", "check_settings": "session",
            "options": "session"}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"fastnn.playground.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'fastnn.playground' has no attribute {name!r}")


__all__ = ["serve", "PlaygroundServer", "PortInUseError", "DEFAULT_PORT", "Session", "Settings",
           "check_settings", "options"]
