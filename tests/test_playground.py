"""Tests for ``fastnn playground``: the toy data, the JSON API, the command, the page.

The API tests run the server in a thread of this process on a free port
(compiled kernels are shared with the rest of the suite) and talk to it over
HTTP with urllib.  One test runs ``python -m fastnn playground`` as a process
and stops it with Ctrl-C (SIGINT).  The page is checked in headless Chromium,
driven over the DevTools Protocol (tests/cdp.py); it is skipped only when no
Chromium binary is found.  Set ``FASTNN_PLAYGROUND_SCREENSHOT=docs/playground.png``
to write the README's screenshot from that test.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fastnn.cli import main
from fastnn.playground import PlaygroundServer, PortInUseError, Session, Settings, datasets2d
from fastnn.playground.session import GRID

from cdp import Browser, find_chromium

# ------------------------------------------------------------------ helpers


@pytest.fixture
def server():
    """A playground on a free port of 127.0.0.1, served from a thread; yields its URL."""
    session = Session(seed=0).start()
    assert session.wait_until_ready() is not None
    httpd = PlaygroundServer(session, 0)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpd.url.rstrip("/")
    finally:
        httpd.shutdown()
        httpd.server_close()
        session.close()
        thread.join(5)


def request(url, body=None, method=None, raw=None, headers=None):
    """``(status, decoded JSON or text)`` of one request; POST when a body is given."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method or ("GET" if data is None
                                                                   else "POST"),
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as answer:
            status, text, kind = answer.status, answer.read(), answer.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        status, text, kind = error.code, error.read(), error.headers["Content-Type"]
    return status, (json.loads(text) if "json" in kind else text.decode())


def post(base, path, body=None):
    status, answer = request(base + path, body if body is not None else {})
    assert status == 200, answer
    return answer


def state(base):
    status, answer = request(base + "/api/state")
    assert status == 200
    return answer


def wait_for(condition, timeout=30.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)
    return value


# ------------------------------------------------------------------ the toy data


@pytest.mark.parametrize("dataset", datasets2d.CLASSIFICATION + datasets2d.REGRESSION)
def test_datasets_lie_in_the_square_with_their_labels(dataset):
    points, labels = datasets2d.make_points(dataset, 400, 0.0, seed=1)
    assert points.shape == (400, 2) and labels.shape == (400,)
    assert np.abs(points).max() <= datasets2d.EXTENT + 1  # gauss's tails may pass a little
    if dataset in datasets2d.CLASSIFICATION:
        assert set(np.unique(labels)) == {0, 1}
        assert 0.3 < labels.mean() < 0.7  # both classes, in about equal numbers
    else:
        assert np.abs(labels).max() <= 1.25 and labels.std() > 0.1
    again = datasets2d.make_points(dataset, 400, 0.0, seed=1)
    assert np.array_equal(again[0], points)  # the seed repeats the points


def test_noise_flips_labels_near_the_circle_boundary():
    clean, labels = datasets2d.make_points("circle", 2000, 0.0, seed=3)
    _, noisy = datasets2d.make_points("circle", 2000, 0.5, seed=3)
    radius = np.hypot(*clean.T)
    assert np.array_equal(labels, radius < 2.5)  # no noise: the label is the disc
    assert 0 < (noisy != labels).mean() < 0.5


def test_features_and_grid():
    points = np.array([[1.0, 2.0], [-3.0, 0.5]])
    X = datasets2d.features(points, ["x1", "x2", "x1_squared", "x2_squared", "x1_x2",
                                     "sin_x1", "sin_x2"])
    assert X.dtype == np.float32 and X.flags.c_contiguous
    np.testing.assert_allclose(X[0], [1, 2, 1, 4, 2, np.sin(1), np.sin(2)], rtol=1e-6)
    cells = datasets2d.grid(4)
    assert cells.shape == (16, 2)
    assert cells[0, 0] < 0 < cells[0, 1]  # row 0 is the top left: x1 < 0, x2 > 0
    assert cells[3, 0] > 0 and cells[-1, 1] < 0


# ------------------------------------------------------------------ the JSON API


def test_state_at_start(server):
    s = state(server)
    assert s["step"] == 0 and s["status"] == "paused" and s["playing"] is False
    assert s["config"] == Settings().to_dict()
    assert s["network"]["sizes"] == [2, 4, 2, 1]
    values = np.array(s["boundary"]["values"])
    assert values.shape == (GRID, GRID) and ((values >= 0) & (values <= 1)).all()
    assert len(s["points"]["train"]) == len(s["points"]["test"]) == 250
    assert [len(layer) for layer in s["units"]] == [4, 2]
    assert np.array(s["units"][0]).shape == (4, s["unit_size"], s["unit_size"])
    assert s["train_loss"] > 0 and s["test_loss"] > 0 and s["history"]["step"] == [0]


#: per dataset: settings under which 150 steps learn it (spiral needs Adam and a wider net)
LEARNS = {
    "circle": {}, "xor": {}, "gauss": {},
    "spiral": {"optimizer": "adam", "hidden": [8, 8]},
    "plane": {}, "multi_gauss": {},
}


@pytest.mark.parametrize("dataset", list(LEARNS))
def test_losses_fall_on_each_dataset(server, dataset):
    start = post(server, "/api/config", {"dataset": dataset, "hidden": [8, 8], **LEARNS[dataset]})
    assert start["config"]["problem"] == datasets2d.problem_of(dataset) and start["step"] == 0
    end = post(server, "/api/step", {"steps": 150})
    assert end["step"] == 150
    assert end["train_loss"] < 0.5 * start["train_loss"], (start["train_loss"], end)
    assert end["test_loss"] < 0.6 * start["test_loss"], (start["test_loss"], end["test_loss"])
    history = end["history"]
    assert history["step"][0] == 0 and history["step"][-1] == 150
    assert history["train_loss"][-1] < history["train_loss"][0]
    moved = np.abs(np.array(end["boundary"]["values"]) - np.array(start["boundary"]["values"]))
    assert moved.max() > 0.1  # the heat map changed


def test_play_trains_in_the_background_and_pause_stops_it(server):
    post(server, "/api/config", {"steps_per_second": 200})
    assert post(server, "/api/play")["playing"] is True
    running = wait_for(lambda: (s := state(server))["step"] >= 20 and s)
    assert running["status"] == "running" and running["playing"]
    paused = post(server, "/api/pause")
    assert paused["playing"] is False and paused["status"] == "paused"
    time.sleep(0.2)
    assert state(server)["step"] == paused["step"]
    assert post(server, "/api/step", {"steps": 3})["step"] == paused["step"] + 3


#: bad control values -> the start of the one-line message
BAD = [
    ("/api/config", {"dataset": "moons"}, "unknown dataset 'moons'; expected one of"),
    ("/api/config", {"activation": "swish"}, "unknown activation 'swish'"),
    ("/api/config", {"lr": -0.1}, "lr must be in (0, inf); got -0.1"),
    ("/api/config", {"lr": 0}, "lr must be in (0, inf); got 0.0"),
    ("/api/config", {"reg_rate": -1}, "reg_rate must be in [0, inf); got -1.0"),
    ("/api/config", {"noise": 80}, "noise must be in [0, 50]; got 80.0"),
    ("/api/config", {"batch_size": 0}, "batch_size must be an integer in [1, 10000]; got 0"),
    ("/api/config", {"batch_size": "10"}, "batch_size must be an integer; got '10'"),
    ("/api/config", {"hidden": [4, 0]}, "hidden[1] must be an integer in [1, 256]; got 0"),
    ("/api/config", {"hidden": "4,2"}, "hidden must be a list of layer widths"),
    ("/api/config", {"features": []}, "features must name at least one input"),
    ("/api/config", {"features": ["x3"]}, "unknown feature 'x3'"),
    ("/api/config", {"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'"),
    ("/api/config", {"speed": 3}, "unknown setting 'speed'"),
    ("/api/config", {"problem": "classification", "dataset": "plane"},
     "dataset 'plane' is a regression dataset"),
    ("/api/step", {"steps": -1}, "steps must be an integer in [1, 10000]; got -1"),
    ("/api/reset", {"regenerate": "yes"}, "regenerate must be True or False"),
    ("/api/play", {"fast": True}, "unknown field 'fast': /api/play takes no fields"),
]


@pytest.mark.parametrize("path, body, message", BAD, ids=[str(b) for _, b, _ in BAD])
def test_a_bad_value_is_a_400_with_a_message_and_the_run_continues(server, path, body, message):
    post(server, "/api/config", {"steps_per_second": 200})
    post(server, "/api/play")
    before = wait_for(lambda: (s := state(server))["step"] >= 2 and s)
    status, answer = request(server + path, body)
    assert status == 400
    assert answer["error"].startswith(message), answer
    assert "\n" not in answer["error"]
    after = wait_for(lambda: (s := state(server))["step"] >= before["step"] + 5 and s)
    assert after["playing"] and after["config"] == before["config"]  # nothing changed
    post(server, "/api/pause")


@pytest.mark.parametrize("raw, message", [
    (b"{", "the request body is not JSON"),
    (b"[1, 2]", "the request body must be a JSON object"),
    (b"\xff", "the request body is not JSON"),
])
def test_a_malformed_body_is_a_400(server, raw, message):
    status, answer = request(server + "/api/config", raw=raw)
    assert status == 400 and answer["error"].startswith(message)
    assert state(server)["status"] == "paused"


def test_control_changes_take_effect(server):
    post(server, "/api/step", {"steps": 5})
    # a hyperparameter: the run goes on
    s = post(server, "/api/config", {"lr": 0.1, "regularization": "L2", "reg_rate": 0.001,
                                     "batch_size": 25, "optimizer": "momentum"})
    assert s["step"] == 5 and s["config"]["lr"] == 0.1 and s["config"]["optimizer"] == "momentum"
    assert post(server, "/api/step", {"steps": 2})["step"] == 7
    # the network's shape: a new network
    s = post(server, "/api/config", {"activation": "relu", "hidden": [3],
                                     "features": ["x1_squared", "x2_squared", "x1"]})
    assert s["step"] == 0 and s["network"]["sizes"] == [3, 3, 1]
    assert s["network"]["description"] == "3-3-1 relu/sigmoid"
    assert s["config"]["features"] == ["x1", "x1_squared", "x2_squared"]  # the page's order
    # the problem: its first dataset, an identity output, real-valued targets
    s = post(server, "/api/config", {"problem": "regression"})
    assert s["config"]["dataset"] == "plane" and s["network"]["sizes"][-1] == 1
    assert s["network"]["description"].endswith("/identity")
    assert any(abs(label) not in (0, 1) for *_, label in s["points"]["train"])
    # the data: 200 points, a fifth for training
    s = post(server, "/api/config", {"points": 200, "train_percent": 20, "noise": 10})
    assert len(s["points"]["train"]) == 40 and len(s["points"]["test"]) == 160
    # a linear model has no units to draw; a large one too many
    assert post(server, "/api/config", {"hidden": []})["units"] == []
    assert post(server, "/api/config", {"hidden": [64, 64]})["units"] is None


def test_reset_keeps_the_points_and_regenerate_draws_new_ones(server):
    first = post(server, "/api/step", {"steps": 10})
    reset = post(server, "/api/reset")
    assert reset["step"] == 0 and reset["points"] == first["points"]
    assert reset["boundary"] != first["boundary"]
    regenerated = post(server, "/api/reset", {"regenerate": True})
    assert regenerated["step"] == 0 and regenerated["points"] != first["points"]


def test_divergence_pauses_with_a_message_and_the_server_goes_on(server):
    post(server, "/api/config", {"dataset": "plane", "activation": "identity", "lr": 10,
                                 "features": ["x1", "x2", "x1_squared", "x1_x2"]})
    post(server, "/api/play")
    s = wait_for(lambda: (s := state(server))["message"] and s)
    assert "diverged" in s["message"] and "Lower the learning rate" in s["message"]
    assert s["playing"] is False and s["train_loss"] is not None
    s = post(server, "/api/config", {"lr": 0.001})
    post(server, "/api/step", {"steps": 2})
    assert state(server)["message"] is None


def test_routes(server):
    status, page = request(server + "/")
    assert status == 200 and "<canvas" in page and "fastnn playground" in page
    assert "http://" not in page.replace("http://www.w3.org", "")  # nothing from elsewhere
    status, answer = request(server + "/api/options")
    assert status == 200 and answer["datasets"]["regression"] == ["plane", "multi_gauss"]
    assert request(server + "/nothing")[0] == 404
    assert request(server + "/api/play", method="GET")[0] == 405
    assert request(server + "/api/state", body={})[0] == 405
    status, answer = request(server + "/api/state", headers={"Host": "example.com"})
    assert status == 403 and "127.0.0.1" in answer["error"]


def test_the_server_listens_on_127_0_0_1_only():
    with Session() as session:
        httpd = PlaygroundServer(session, 0)
        try:
            assert httpd.server_address[0] == "127.0.0.1"
            with pytest.raises(PortInUseError, match="is in use"):
                PlaygroundServer(session, httpd.server_port)
        finally:
            httpd.server_close()


# ------------------------------------------------------------------ the command


def test_cli_port_in_use_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["playground", "--port", str(port), "--no-browser"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err == (f"fastnn playground: error: port {port} on 127.0.0.1 is in use (another "
                   "program, or another playground, listens there); choose another with "
                   "--port, or --port 0 for a free one\n")


@pytest.mark.parametrize("argv, message", [
    (["--port", "70000"], "argument --port: expected a port number in 0..65535, got 70000"),
    (["--port", "http"], "argument --port: expected a port number in 0..65535, got 'http'"),
    (["--threads", "0"], "argument --threads: expected a positive integer, got 0"),
    (["--backend", "cuda"], "argument --backend: invalid choice: 'cuda'"),
])
def test_cli_bad_options(capsys, argv, message):
    assert main(["playground", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cli_runs_until_ctrl_c_and_exits_0():
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "fastnn", "playground", "--port", "0",
                                "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.match(r"fastnn playground: (http://127\.0\.0\.1:\d+)/ \(Ctrl-C to stop\)",
                         line)
        assert match, line
        base = match.group(1)
        # the kernels loaded, a few steps trained: then Ctrl-C
        wait_for(lambda: state(base)["status"] == "paused", timeout=120)
        assert post(base, "/api/step", {"steps": 3})["step"] == 3
        post(base, "/api/play")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "fastnn playground: stopped" in out
    assert "Traceback" not in err


# ------------------------------------------------------------------ the page


CHROMIUM = find_chromium()
HEATMAP = "document.getElementById('heatmap')"


@pytest.mark.skipif(CHROMIUM is None,
                    reason="no Chromium binary on PATH (chromium, chromium-browser, google-chrome;"
                           " or set FASTNN_CHROMIUM); Debian: apt-get install -y chromium")
def test_the_page_in_a_headless_browser(server, tmp_path):
    post(server, "/api/config", {"steps_per_second": 100})
    with Browser(CHROMIUM, width=1400, height=760) as browser:
        browser.navigate(server + "/")
        # loaded and drawn: the heat map of step 0 and one button per dataset
        assert browser.wait_until(f"{HEATMAP}.dataset.step") == "0"
        assert browser.evaluate("document.querySelectorAll('#datasets button').length") == 6
        assert browser.evaluate("document.querySelectorAll('#units canvas').length") == 6
        first = browser.evaluate(f"{HEATMAP}.toDataURL()")

        # play: the heat map changes while training runs
        browser.evaluate("document.getElementById('play').click()")
        browser.wait_until(f"Number({HEATMAP}.dataset.step) >= 20", timeout=30)
        second = browser.evaluate(f"{HEATMAP}.toDataURL()")
        step = int(browser.evaluate(f"{HEATMAP}.dataset.step"))
        browser.wait_until(f"Number({HEATMAP}.dataset.step) >= {step + 20}", timeout=30)
        third = browser.evaluate(f"{HEATMAP}.toDataURL()")
        assert first != second != third
        assert state(server)["playing"] is True
        assert int(browser.evaluate("document.body.dataset.step")) > 0

        # controls: a dataset button and a menu reach the server, and the page follows
        browser.evaluate("document.querySelector('#datasets button[data-dataset=xor]').click()")
        wait_for(lambda: state(server)["config"]["dataset"] == "xor")
        browser.evaluate("(() => { const s = document.getElementById('activation');"
                         " s.value = 'relu'; s.dispatchEvent(new Event('change')); })()")
        s = wait_for(lambda: (s := state(server))["config"]["activation"] == "relu" and s)
        assert s["network"]["description"] == "2-4-2-1 relu/sigmoid"
        browser.wait_until("document.querySelector('#datasets button.selected')"
                           ".dataset.dataset === 'xor'")
        browser.wait_until("document.getElementById('network-description').textContent"
                           ".startsWith('2-4-2-1 relu/sigmoid')")
        # a hidden layer's + button: one more unit
        browser.evaluate("document.querySelector('#units .layer button').click()")
        s = wait_for(lambda: (s := state(server))["config"]["hidden"] == [5, 2] and s)
        browser.wait_until("document.querySelectorAll('#units canvas').length === 7")

        # the README's picture: a wider network learns XOR for a moment
        browser.evaluate("document.getElementById('show-test').click()")
        post(server, "/api/config", {"hidden": [8, 6], "steps_per_second": 300})
        browser.wait_until(f"Number({HEATMAP}.dataset.step) >= 150", timeout=30)
        post(server, "/api/pause")
        browser.wait_until("document.getElementById('status').textContent.startsWith('paused')")

        png = browser.screenshot(tmp_path / "playground.png")
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        target = os.environ.get("FASTNN_PLAYGROUND_SCREENSHOT")
        if target:
            Path(target).write_bytes(png)
        assert browser.errors() == []
