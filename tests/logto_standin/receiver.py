"""A webhook receiver for tests: records every POST it gets (headers, raw body) and answers 200.

Used by the contract replay and by tests that check the stand-in's signed deliveries.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class ReceivedDelivery:
    """One request as the receiver saw it; ``headers`` keep the order and the lower-cased names."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    raw_body: bytes

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)


class _ReceiverHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ReceiverServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        """Silence the per-request stderr line."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        delivery = ReceivedDelivery(
            self.command, self.path, [(key.lower(), value) for key, value in self.headers.items()], raw,
        )
        with self.server.lock:
            self.server.deliveries.append(delivery)
            status = self.server.status
        body = b'{"ok":true}' if status < 400 else b'{"ok":false}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[ReceivedDelivery] = []
        self.status = 200
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)


class WebhookReceiver:
    """``with WebhookReceiver() as receiver:`` → ``receiver.url("/logto-hook")``, ``receiver.deliveries``.

    ``status`` sets what it answers (200 by default), to test failing endpoints.
    """

    def __init__(self) -> None:
        self._server = _ReceiverServer()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook-receiver", daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str = "/logto-hook") -> str:
        """A delivery URL on this receiver."""
        return self.base_url + path

    @property
    def deliveries(self) -> list[ReceivedDelivery]:
        """Everything received so far, oldest first (a copy)."""
        with self._server.lock:
            return list(self._server.deliveries)

    @property
    def status(self) -> int:
        """The status the receiver answers with."""
        return self._server.status

    @status.setter
    def status(self, value: int) -> None:
        with self._server.lock:
            self._server.status = value
