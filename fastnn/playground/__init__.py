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

from fastnn.playground.server import DEFAULT_PORT, PlaygroundServer, PortInUseError, serve
from fastnn.playground.session import Session, Settings, check_settings, options

__all__ = ["serve", "PlaygroundServer", "PortInUseError", "DEFAULT_PORT", "Session", "Settings",
           "check_settings", "options"]
