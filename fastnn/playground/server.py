"""The playground's HTTP server: one page and a small JSON API, on 127.0.0.1 only.

Routes (every answer is JSON except the page):

``GET /``
    The page (``page.html``, plain JavaScript and canvases, nothing fetched
    from elsewhere).
``GET /api/state``
    The latest snapshot of the session (:meth:`Session.state`).
``GET /api/options``
    The choices, limits and defaults of the controls.
``POST /api/config``
    A JSON object of settings to change, such as ``{"lr": 0.1, "dataset": "xor"}``.
``POST /api/play``, ``POST /api/pause``
``POST /api/step``
    ``{"steps": N}`` (1 by default): train N steps now.
``POST /api/reset``
    ``{"regenerate": true}`` also draws new points.

A POST answers with the state after the command was carried out.  A bad value
(an unknown dataset or activation, a negative rate, a malformed body) is
answered ``400`` with ``{"error": "<one line>"}`` and changes nothing; the run
goes on.

Only requests that name this machine in their Host header are served, so that
a web page elsewhere cannot reach the server through a DNS name of its own
that points at 127.0.0.1 (DNS rebinding).
"""

import errno
import json
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import urlsplit

from fastnn.playground import DEFAULT_PORT
from fastnn.playground.session import Session, options

HOST = "127.0.0.1"
#: the largest request body read (the largest real one, a settings object, is ~300 bytes)
MAX_BODY = 64 * 1024


class PortInUseError(OSError):
    """The port is taken; the message says what to do."""


def _page():
    return resources.files("fastnn.playground").joinpath("page.html").read_bytes()


class PlaygroundServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that serves one :class:`Session`.

    Parameters
    ----------
    session : Session
    port : int
        0 lets the operating system choose a free port (see ``server_port``).

    Raises
    ------
    PortInUseError
        When another program listens on the port.
    OSError
        When the port cannot be opened for another reason (a privileged port).
    """

    daemon_threads = True  # a request waiting on the session never blocks the shutdown

    def __init__(self, session, port=DEFAULT_PORT):
        self.session = session
        self.page = _page()
        try:
            super().__init__((HOST, port), PlaygroundHandler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    errno.EADDRINUSE,
                    f"port {port} on {HOST} is in use (another program, or another "
                    "playground, listens there); choose another with --port, or --port 0 "
                    "for a free one") from None
            raise OSError(error.errno, f"cannot listen on {HOST}:{port}: "
                                       f"{error.strerror or error}") from None

    @property
    def url(self):
        """The page's address, ``http://127.0.0.1:PORT/``."""
        return f"http://{HOST}:{self.server_port}/"


class PlaygroundHandler(BaseHTTPRequestHandler):
    """Answers the page and the API (see the module docstring)."""

    server_version = "fastnn-playground"
    protocol_version = "HTTP/1.1"  # keep-alive: the page polls several times a second

    #: POST routes -> (Session method, the body fields it takes)
    COMMANDS = {
        "/api/config": (None, None),  # the whole body is the settings
        "/api/play": ("play", ()),
        "/api/pause": ("pause", ()),
        "/api/step": ("step", ("steps",)),
        "/api/reset": ("reset", ("regenerate",)),
    }

    def log_message(self, format, *args):
        pass  # the page polls ten times a second: a line each would bury everything

    # ------------------------------------------------------------ answers

    def _send(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, value):
        self._send(status, json.dumps(value, allow_nan=False).encode())

    def _error(self, status, message, extra=()):
        self._send(status, json.dumps({"error": message}).encode(), extra=extra)

    def _host_allowed(self):
        host = self.headers.get("Host")
        if host is None:
            return True  # HTTP/1.0 clients send none; they reached 127.0.0.1 directly
        port = self.server.server_port
        return host in (f"{HOST}:{port}", f"localhost:{port}", f"[::1]:{port}")

    def _route(self):
        """The path, or None after answering 403 for a foreign Host."""
        if not self._host_allowed():
            self._error(HTTPStatus.FORBIDDEN,
                        f"this server answers requests for {HOST}:{self.server.server_port} "
                        "only")
            return None
        return urlsplit(self.path).path

    # ------------------------------------------------------------ methods

    def do_GET(self):
        path = self._route()
        if path is None:
            return
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif path == "/api/state":
            self._send(HTTPStatus.OK, self.server.session.state_json())
        elif path == "/api/options":
            self._json(HTTPStatus.OK, options())
        elif path in self.COMMANDS:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes POST",
                        extra=[("Allow", "POST")])
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    do_HEAD = do_GET

    def do_POST(self):
        path = self._route()
        if path is None:
            return
        if path not in self.COMMANDS:
            if path in ("/", "/index.html", "/api/state", "/api/options"):
                self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes GET",
                            extra=[("Allow", "GET")])
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")
            return
        try:
            body = self._body()
            state = self._command(path, body)
        except (ValueError, TypeError) as error:
            self._error(HTTPStatus.BAD_REQUEST, str(error))
            return
        except _TooLarge as error:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, str(error))
            return
        except RuntimeError as error:  # the training thread died: our bug, not the request's
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, str(error))
            return
        self._send(HTTPStatus.OK, json.dumps(state, allow_nan=False).encode())

    def _body(self):
        """The request's JSON object ({} when there is no body)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ValueError("Content-Length must be a number of bytes") from None
        if length > MAX_BODY:
            self.close_connection = True  # the body is left unread
            raise _TooLarge(f"the request body has {length} bytes; at most {MAX_BODY} are read")
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"the request body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise ValueError(f"the request body must be a JSON object; got {raw[:80]!r}")
        return body

    def _command(self, path, body):
        session = self.server.session
        method, accepted = self.COMMANDS[path]
        if method is None:
            return session.configure(body)
        unknown = [name for name in body if name not in accepted]
        if unknown:
            takes = (f"takes {', '.join(repr(a) for a in accepted)}" if accepted
                     else "takes no fields")
            raise ValueError(f"unknown field {unknown[0]!r}: {path} {takes}")
        return getattr(session, method)(**body)


class _TooLarge(Exception):
    pass


def serve(port=DEFAULT_PORT, open_browser=True, seed=0, backend="numba", n_threads=1,
          out=None):
    """Run the playground until Ctrl-C: the server, the training thread, the browser.

    Parameters
    ----------
    port : int, default 8765
        0 picks a free port.
    open_browser : bool, default True
        Open the page in the default web browser.
    seed, backend, n_threads
        As for :class:`fastnn.playground.session.Session`.
    out : file, optional
        Where the address and the closing line go (standard output by default).

    Returns
    -------
    int
        0 after Ctrl-C (or SIGTERM) has shut down the server and the training thread.

    Raises
    ------
    PortInUseError, OSError
        The port cannot be opened (before anything starts).
    ValueError, TypeError
        A bad seed, backend or thread count.
    """
    out = out or sys.stdout
    session = Session(seed=seed, backend=backend, n_threads=n_threads)  # checks them
    server = PlaygroundServer(session, port)
    session.start()
    # `kill` (SIGTERM) stops it as cleanly as Ctrl-C; signals reach the main thread only
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        print(f"fastnn playground: {server.url} (Ctrl-C to stop)", file=out, flush=True)
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("\nfastnn playground: stopped", file=out, flush=True)
    finally:
        server.server_close()
        session.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt
