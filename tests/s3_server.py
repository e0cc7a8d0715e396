"""A real S3 protocol server for tests: moto's ``ThreadedMotoServer`` on 127.0.0.1, and a small
fault-injecting HTTP proxy in front of it.

Both listen on 127.0.0.1 on a free port, and both stop by themselves after ``LIFETIME`` seconds even
if a test never stops them (a watchdog), so no server outlives a test run.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from moto.server import ThreadedMotoServer

LIFETIME = 300.0
"""Seconds after which a server stops on its own."""


class MotoS3:
    """moto in server mode on 127.0.0.1 (S3 and IAM empty at the end of each instance)."""

    def __init__(self, lifetime: float = LIFETIME) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._watchdog: threading.Timer | None = None
        self._lifetime = lifetime
        self._expired = threading.Event()

    @property
    def alive(self) -> bool:
        """False once the watchdog stopped the server (a caller holding it must start another)."""
        return not self._expired.is_set()

    def _expire(self) -> None:
        self._expired.set()
        self._server.stop()

    def __enter__(self) -> MotoS3:
        self._server.start()
        self._watchdog = threading.Timer(self._lifetime, self._expire)
        self._watchdog.daemon = True
        self._watchdog.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.port = port
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        # moto keeps its backends per process: empty S3's and IAM's so the next server starts clean.
        from moto.backends import get_backend

        self._server.stop()
        for service in ("s3", "iam"):
            for backend in get_backend(service).values():
                for region in list(backend.values()):
                    region.reset()


@dataclass
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str
    action: str


Plan = Callable[[str, str, int], str]
"""(method, path with query, index of this request among those matching so far) -> action.

Actions: ``pass`` (forward), ``503`` / ``500`` (answer that without forwarding), ``slow`` (forward, so
the server acts on it, then hold the answer past the client's timeout: a lost response),
``drop`` (forward, then close the connection without answering)."""


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of ``upstream`` that injects faults by ``plan``."""

    upstream_port: int
    plan: Plan = field(default=lambda method, path, n: "pass")
    hold_seconds: float = 2.0
    seen: list[Seen] = field(default_factory=list)

    def __enter__(self) -> FaultProxy:
        proxy = self
        self._release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy._lock:
                    action = proxy.plan(self.command, self.path, len(proxy.seen))
                    proxy.seen.append(Seen(self.command, self.path, action))
                if action in ("500", "502", "503", "504"):
                    payload = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
                    self.send_response(int(action))
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                connection.close()
                if action == "slow":
                    proxy._release.wait(proxy.hold_seconds)
                if action == "drop":
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815

        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._watchdog = threading.Timer(LIFETIME, self._server.shutdown)
        self._watchdog.daemon = True
        self._watchdog.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._release.set()
        self._watchdog.cancel()
        self._server.shutdown()
        self._server.server_close()

    def count(self, method: str | None = None, contains: str | None = None) -> int:
        """Requests received (optionally of one method and with ``contains`` in the path)."""
        return sum(
            1 for s in self.seen if (method is None or s.method == method) and (contains is None or contains in s.path)
        )
