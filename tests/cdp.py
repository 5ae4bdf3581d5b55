"""Headless Chromium driven over the Chrome DevTools Protocol, with the standard library only.

For the playground's browser test: a WebSocket client (RFC 6455, just what the
protocol needs: text frames, masking, fragments, ping/pong), and a
:class:`Browser` that starts Chromium with one empty page, loads a URL, runs
JavaScript in it, takes screenshots and collects what the page logged as an
error (console errors, uncaught exceptions, failed loads).

Chromium is started the way this machine's notes say it runs as root in a
container: ``--no-sandbox``, no GPU, and no background networking (the
machine has no internet; Chromium's own calls home would fail at start).
"""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from urllib.parse import urlsplit

#: the names Debian's, other distributions' and Google's builds install under
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium():
    """The Chromium binary: ``$FASTNN_CHROMIUM``, else the first of :data:`BINARIES` on PATH."""
    chosen = os.environ.get("FASTNN_CHROMIUM")
    if chosen:
        return shutil.which(chosen)
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """A client WebSocket to ``ws://host:port/path``, blocking, with a timeout per read."""

    def __init__(self, url, timeout=30.0):
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self._buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        request = (f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self._sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise ConnectionError(f"the WebSocket handshake failed: {status.decode()!r}")

    def _fill(self):
        chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the browser closed the connection")
        self._buffer += chunk

    def _read(self, n):
        while len(self._buffer) < n:
            self._fill()
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _send_frame(self, opcode, payload):
        # a client masks every frame (RFC 6455, 5.3)
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def send(self, text):
        """Send one text message."""
        self._send_frame(0x1, text.encode())

    def receive(self):
        """The next text message (answering pings on the way)."""
        parts = []
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack(">H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack(">Q", self._read(8))
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:      # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:      # pong
                continue
            if opcode == 0x8:      # close
                raise ConnectionError("the browser closed the WebSocket")
            parts.append(payload)
            if first & 0x80:       # the last fragment
                return b"".join(parts).decode()

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self._sock.close()


class ProtocolError(RuntimeError):
    """The browser answered a command with an error, or a page's script threw."""


class Browser:
    """Headless Chromium with one page, driven over the DevTools Protocol.

    Parameters
    ----------
    binary : str
        The Chromium executable.
    width, height : int
        The window, and so the screenshots.
    timeout : float
        Seconds to wait for the browser to start, and for any one answer.
    """

    def __init__(self, binary, width=1400, height=820, timeout=30.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="fastnn-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-quic", "--no-first-run", "--no-default-browser-check",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--mute-audio", "--hide-scrollbars",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        self.events = []
        self._next_id = 0
        self._socket = None
        try:
            self._socket = WebSocket(self._page_socket_url(), timeout)
            for domain in ("Runtime", "Log", "Page"):
                self.call(f"{domain}.enable")
            # the page's size, whatever the headless window's frame takes
            self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                      deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def _page_socket_url(self):
        # Chromium writes the port it chose (with --remote-debugging-port=0) here
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with status {self.process.returncode}; "
                                   f"its log: {self._log_tail()}")
            if os.path.exists(port_file):
                lines = open(port_file).read().split()
                if lines:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{lines[0]}/json/list",
                                                    timeout=5) as answer:
                            targets = json.load(answer)
                        pages = [t for t in targets if t.get("type") == "page"]
                        if pages:
                            return pages[0]["webSocketDebuggerUrl"]
                    except OSError:
                        pass  # not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"chromium did not start within {self.timeout:g} s; its log: "
                                   f"{self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self):
        self._log.flush()
        with open(self.log_path, "rb") as log:
            return log.read()[-2000:].decode(errors="replace")

    # ------------------------------------------------------------ the protocol

    def call(self, method, **params):
        """Send one command and return its result (events met meanwhile are kept)."""
        self._next_id += 1
        ident = self._next_id
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.receive())
            if message.get("id") == ident:
                if "error" in message:
                    raise ProtocolError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def navigate(self, url):
        """Load ``url`` and wait for its load event."""
        seen = len(self.events)
        self.call("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired", since=seen)

    def wait_for_event(self, method, since=0):
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == method for e in self.events[since:]):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {self.timeout:g} s")
            self.evaluate("0")  # reads the events that arrived meanwhile

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ProtocolError(f"{expression!r} threw: {text}")
        return result["result"].get("value")

    def wait_until(self, expression, timeout=None, interval=0.05):
        """Evaluate ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} stayed false for {timeout or self.timeout} s")
            time.sleep(interval)

    def screenshot(self, path):
        """Write a PNG of the window to ``path``; returns its bytes."""
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as out:
            out.write(data)
        return data

    def errors(self):
        """What the page reported as an error so far, one line each: console.error and
        console.assert calls, uncaught exceptions, and the browser's error entries
        (a resource that failed to load, a blocked request)."""
        self.evaluate("0")  # collect the events still on their way
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                texts = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                found.append("console." + params["type"] + ": " + " ".join(texts))
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append("exception: " + (details.get("exception", {}).get("description")
                                              or details.get("text", "")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                entry = params["entry"]
                found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        return found

    # ------------------------------------------------------------ lifetime

    def close(self):
        """Stop the browser and remove its profile."""
        if self._socket is not None:
            try:
                self.call("Browser.close")
            except (OSError, ConnectionError, ProtocolError):
                pass
            self._socket.close()
            self._socket = None
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
