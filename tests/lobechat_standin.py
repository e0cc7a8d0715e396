"""A LobeChat stand-in on 127.0.0.1: the routes verification touches, answering as LobeChat does.

Built from the behaviour in ``shared/docs/lobechat.md`` (both generations):

- health: 1.x ``GET /`` (any answer below 500), 2.x ``GET /api/version`` 200;
- sign-in, 1.x (Auth.js): ``GET /api/auth/csrf`` -> ``{csrfToken}`` plus a cookie, then
  ``POST /api/auth/signin/logto`` with that token -> 302 to ``<AUTH_LOGTO_ISSUER>/auth?...`` with
  ``redirect_uri=<NEXTAUTH_URL>/callback/logto``; 2.x (Better Auth): ``POST /api/auth/sign-in/oauth2``
  ``{providerId}`` -> 200 ``{url, redirect: true}`` with ``redirect_uri=<APP_URL>/api/auth/callback/logto``;
- ``POST /api/webhooks/logto``: verifies ``logto-signature-sha-256`` (hex HMAC-SHA256 of the raw body
  with ``LOGTO_WEBHOOK_SIGNING_KEY``): a bad signature is 400, a missing key variable 500,
  ``User.Data.Updated`` 200 (even for an unknown user), any other event 400 (1.x).

Its environment is what the container would get (``configure(env, generation)``). It stops by itself
after ``lifetime`` seconds, in case a test never closes it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode

SIGNATURE_HEADER = "logto-signature-sha-256"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""

    def _send(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        payload = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None and not isinstance(body, bytes):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:  # noqa: N802
        standin = self.server.standin
        path = self.path.split("?", 1)[0]
        standin.record("GET", path)
        if standin.generation == 2 and path == "/api/version":
            return self._send(200, {"version": "2.2.10"})
        if path == "/":
            return self._send(200, b"<html>LobeChat</html>", {"Content-Type": "text/html"})
        if standin.generation == 1 and path == "/api/auth/csrf":
            token = secrets.token_hex(16)
            with standin.lock:
                standin.csrf_tokens.add(token)
            return self._send(200, {"csrfToken": token}, {"Set-Cookie": f"authjs.csrf-token={token}; Path=/; HttpOnly"})
        return self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        standin = self.server.standin
        path = self.path.split("?", 1)[0]
        raw = self._body()
        standin.record("POST", path)
        env = standin.env
        if path == "/api/webhooks/logto":
            return self._webhook(raw)
        if standin.generation == 1 and path == "/api/auth/signin/logto":
            form = parse_qs(raw.decode())
            token = (form.get("csrfToken") or [""])[0]
            with standin.lock:
                valid = token in standin.csrf_tokens
            if not valid or f"authjs.csrf-token={token}" not in (self.headers.get("Cookie") or ""):
                return self._send(302, None, {"Location": f"{env.get('NEXTAUTH_URL', '')}/signin?csrf=true"})
            redirect_uri = f"{env.get('NEXTAUTH_URL', '')}/callback/logto"
            return self._send(302, None, {"Location": standin.authorize_url(redirect_uri)})
        if standin.generation == 2 and path == "/api/auth/sign-in/oauth2":
            body = json.loads(raw or b"{}")
            if body.get("providerId") not in standin.providers():
                return self._send(400, {"message": "provider not found"})
            redirect_uri = f"{env.get('APP_URL', '')}/api/auth/callback/logto"
            return self._send(200, {"url": standin.authorize_url(redirect_uri), "redirect": True})
        return self._send(404, {"error": "not found"})

    def _webhook(self, raw: bytes) -> None:
        standin = self.server.standin
        key = standin.env.get("LOGTO_WEBHOOK_SIGNING_KEY")
        if not key:
            return self._send(500, {"error": "LOGTO_WEBHOOK_SIGNING_KEY is not set"})
        expected = hmac.new(key.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, self.headers.get(SIGNATURE_HEADER) or ""):
            with standin.lock:
                standin.webhook_results.append(400)
            return self._send(400, {"error": "Invalid signature"})
        event = json.loads(raw).get("event")
        handled = {"User.Data.Updated"} | ({"User.SuspensionStatus.Updated"} if standin.generation == 2 else set())
        status = 200 if event in handled else 400
        with standin.lock:
            standin.webhook_results.append(status)
        return self._send(status, {"success": status == 200})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, standin: LobeChatStandIn) -> None:
        self.standin = standin
        super().__init__(("127.0.0.1", 0), _Handler)


class LobeChatStandIn:
    """``with LobeChatStandIn(env, generation=1) as lobe:`` -> ``lobe.url``, ``lobe.webhook_results``."""

    def __init__(self, env: Mapping[str, str] | None = None, *, generation: int = 1, lifetime: float = 300.0) -> None:
        self.env: dict[str, str] = dict(env or {})
        self.generation = generation
        self.lock = threading.Lock()
        self.csrf_tokens: set[str] = set()
        self.webhook_results: list[int] = []
        self.requests: list[tuple[str, str]] = []
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True

    def configure(self, env: Mapping[str, str], generation: int) -> None:
        """The environment the container got (what it read at start)."""
        with self.lock:
            self.env = dict(env)
            self.generation = generation

    def providers(self) -> list[str]:
        variable = "AUTH_SSO_PROVIDERS" if self.generation == 2 else "NEXT_AUTH_SSO_PROVIDERS"
        return [p.strip() for p in self.env.get(variable, "").split(",") if p.strip()]

    def authorize_url(self, redirect_uri: str) -> str:
        query = urlencode({
            "client_id": self.env.get("AUTH_LOGTO_ID", ""), "redirect_uri": redirect_uri,
            "response_type": "code", "scope": "openid profile email", "state": secrets.token_hex(8),
        })
        return f"{self.env.get('AUTH_LOGTO_ISSUER', '')}/auth?{query}"

    def record(self, method: str, path: str) -> None:
        with self.lock:
            self.requests.append((method, path))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LobeChatStandIn:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
        self._thread.join(timeout=5)
