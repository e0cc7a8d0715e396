"""The front with the real Caddy binary on 127.0.0.1, loaded with the configuration the stack generates.

The config comes from the stack files (``stacks/Pulumi.<stack>.yaml``) through the same functions the
program uses (``front_sites`` and ``render``); only the listen ports (free loopback ports), the
upstream addresses (stand-in servers on 127.0.0.1) and the issuer (Caddy's internal CA instead of ACME)
are changed. Config changes go through the stack's writer script, run as its one-shot container runs it.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.config import MappingConfigSource, StageConfig, load_stage_config
from components.front.caddy import render
from components.front.caddy_config import Listen, TlsSettings
from components.front.sites import front_sites
from tests.caddy_harness import (
    CaddyProcess,
    Client,
    Upstream,
    free_port,
    internal_ca,
    require_caddy,
    run_writer,
    shell_tools,
    wait_port,
)
from tests.pulumi_mocks import stack_config

MIN_ROLLOUT_REQUESTS = 2000


def stage(stack: str, **overrides: object) -> StageConfig:
    values = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()}
    values.update(overrides)
    return load_stage_config(MappingConfigSource(values), stack)


@dataclasses.dataclass
class Front:
    caddy: CaddyProcess
    config: StageConfig
    listen: Listen
    admin: str
    upstreams: dict[str, Upstream]
    ca: list[str] | None = None

    def render(self, lobechat: Upstream, tls: TlsSettings | None = None) -> tuple[str, list[str]]:
        sites = front_sites(self.config, lobechat_upstream=lobechat.address, logto_upstream_host="logto")
        addresses = {"lobechat": lobechat.address, "logto": self.upstreams["logto"].address,
                     "logto-admin": self.upstreams["logto-admin"].address}
        sites = [dataclasses.replace(s, upstream=addresses[s.role]) for s in sites]
        text = render(
            self.config, sites, tls=tls or TlsSettings(mode="internal"), listen=self.listen, admin=self.admin,
            storage_root=str(self.caddy.root / "data" / "caddy"),
        )
        return text, sorted({s.upstream for s in sites})

    def load(self, lobechat: Upstream, *, drain_s: int = 10, tls: TlsSettings | None = None, **kw: object):
        text, upstreams = self.render(lobechat, tls)
        return run_writer(self.caddy, text, admin=self.admin, upstreams=upstreams, drain_s=drain_s, **kw)

    def client(self, host: str, *, public: bool = True) -> Client:
        port = self.listen.public_https if public else self.listen.internal_https
        return Client(host, port, tls=True, ca_files=self.ca)


@pytest.fixture
def front_factory(tmp_path: Path) -> Iterator:
    require_caddy()
    tools = shell_tools(tmp_path / "bin")
    started: list[tuple[CaddyProcess, list[Upstream]]] = []

    def make(stack: str, **overrides: object) -> Front:
        config = stage(stack, **overrides)
        root = tmp_path / f"caddy-{len(started)}"
        root.mkdir()
        caddy = CaddyProcess(root, tools)
        listen = Listen(host="127.0.0.1", internal_https=free_port(), public_https=free_port(), public_http=free_port())
        upstreams = {"lobechat": Upstream("lobechat-old").start(), "logto": Upstream("logto").start(),
                     "logto-admin": Upstream("logto-admin").start()}
        started.append((caddy, list(upstreams.values())))
        front = Front(caddy, config, listen, f"127.0.0.1:{free_port()}", upstreams)
        first = front.load(upstreams["lobechat"])
        assert first.returncode == 0, first.output
        wait_port(listen.public_https)
        front.ca = internal_ca(caddy)
        return front

    yield make
    for caddy, upstreams in started:
        caddy.stop()
        for upstream in upstreams:
            upstream.stop()


# --- routes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_each_public_name_reaches_its_upstream_and_nothing_else(front_factory, stack):
    front = front_factory(stack)
    config = front.config
    lobe, logto, admin = config.lobechat_url.host, config.logto.endpoint.host, config.logto.admin_endpoint.host
    for host, label in ((lobe, "lobechat-old"), (logto, "logto")):
        for public in (True, False):
            status, headers, body, _ = front.client(host, public=public).get("/some/path?x=1")
            assert (status, body.decode()) == (200, label), (host, public)
            assert (headers.get("strict-transport-security") == "max-age=31536000") == (stack == "prod")
    # The closed admin console (the default on staging and prod) is not routed at all.
    with pytest.raises(Exception):
        front.client(admin, public=True).get("/console")  # no certificate for that name either
    http = Client(admin, front.listen.public_http, tls=False)
    assert http.get("/console")[0] == 404


def test_plain_http_redirects_to_https_for_public_names_only(front_factory):
    front = front_factory("prod")
    http = Client("chat.example.com", front.listen.public_http, tls=False)
    status, headers, _, _ = http.get("/chat?session=1")
    assert status == 308 and headers["location"] == "https://chat.example.com/chat?session=1"
    assert Client("auth-admin.example.com", front.listen.public_http, tls=False).get("/console")[0] == 404
    assert Client("elsewhere.example.org", front.listen.public_http, tls=False).get("/")[0] == 404


def test_admin_console_is_routed_when_the_stage_exposes_it(front_factory):
    logto = {**stack_config("staging")["lobechat-logto:logto"], "exposeAdminConsole": True}
    front = front_factory("staging", logto=logto)
    for public in (True, False):
        assert front.client("auth-admin-staging.example.com", public=public).get("/console")[2] == b"logto-admin"


# --- rollouts ----------------------------------------------------------------------------------------


class Traffic:
    """Clients sending GETs without pause (every 40th one a slow request) until told to stop."""

    def __init__(self, front: Front, host: str, workers: int = 4) -> None:
        self.front, self.host, self.workers = front, host, workers
        self.sent = self.failed = self.reuse_retries = 0
        self.by_label: dict[str, int] = {}
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(workers)]

    def __enter__(self) -> Traffic:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=60)

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.sent < count:
            assert time.monotonic() < deadline, f"only {self.sent} requests in {timeout} s"
            time.sleep(0.02)

    def _run(self, worker: int) -> None:
        client = self.front.client(self.host)
        n = 0
        while not self.stopping.is_set():
            n += 1
            path = "/slow" if n % 40 == worker else f"/chat/{n}"
            label = self._one(client, path)
            with self.lock:
                self.sent += 1
                if label is None:
                    self.failed += 1
                else:
                    self.by_label[label] = self.by_label.get(label, 0) + 1
        client.close()

    def _one(self, client: Client, path: str) -> str | None:
        for attempt in (1, 2):
            try:
                status, _, body, _ = client.get(path)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                closed_early = isinstance(error, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError))
                if attempt == 1 and getattr(error, "reused", False) and closed_early:
                    # What browsers do for an idempotent request whose kept-alive connection the
                    # server closed as the request left (RFC 9112, 9.3.1): send it again, once.
                    with self.lock:
                        self.reuse_retries += 1
                    continue
                with self.lock:
                    self.errors.append(f"{path}: {type(error).__name__}: {error}")
                return None
            if status != 200:
                with self.lock:
                    self.errors.append(f"{path}: HTTP {status}")
                return None
            return body.decode()
        return None


def _rollout(front: Front, *, drain_s: int) -> tuple[Traffic, dict[str, float]]:
    old = front.upstreams["lobechat"]
    times: dict[str, float] = {}
    with Traffic(front, front.config.lobechat_url.host) as traffic:
        traffic.wait_for(500)
        start = time.monotonic()
        new = Upstream("lobechat-new").start()  # the new container, started next to the old one
        wait_port(new.port)                      # ... and healthy
        times["new_healthy_s"] = time.monotonic() - start
        old.slow_started.clear()
        assert old.slow_started.wait(10), "no slow request reached the old upstream"
        writer = front.load(new, drain_s=drain_s)  # traffic moves; the writer waits for the old requests
        assert writer.returncode == 0, writer.output
        times["reload_and_drain_s"] = writer.seconds
        old.stop()                                # Pulumi deletes the old container last
        times["old_gone_s"] = time.monotonic() - start
        served_by_old_at_stop = old.requests
        traffic.wait_for(traffic.sent + 200)
        traffic.wait_for(MIN_ROLLOUT_REQUESTS)
        front.upstreams["lobechat"] = new
    times["old_requests_after_stop"] = old.requests - served_by_old_at_stop
    front.new = new  # type: ignore[attr-defined]
    return traffic, times


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_rollout_moves_traffic_to_the_new_lobechat_with_zero_failed_requests(front_factory, stack, capsys):
    front = front_factory(stack)
    traffic, times = _rollout(front, drain_s=30)
    with capsys.disabled():
        print(
            f"\nfront rollout ({stack}, real Caddy): {traffic.failed} failed of {traffic.sent} requests "
            f"(old {traffic.by_label.get('lobechat-old', 0)}, new {traffic.by_label.get('lobechat-new', 0)}; "
            f"{traffic.reuse_retries} idempotent re-sends after a closed kept-alive connection); "
            f"reload+drain {times['reload_and_drain_s']:.2f} s, old gone {times['old_gone_s']:.2f} s after the new one started"
        )
    assert traffic.sent >= MIN_ROLLOUT_REQUESTS
    assert traffic.failed == 0, traffic.errors[:5]
    assert traffic.by_label.get("lobechat-old", 0) > 0 and traffic.by_label.get("lobechat-new", 0) > 0
    assert times["old_requests_after_stop"] == 0


def test_without_the_drain_requests_in_flight_on_the_old_lobechat_fail(front_factory):
    # The same sequence with no wait for the old upstream's requests: what the drain prevents.
    front = front_factory("prod")
    front.upstreams["lobechat"].slow_s = 5.0  # still in flight when the old upstream goes
    traffic, _ = _rollout(front, drain_s=0)
    assert traffic.failed > 0


def test_a_config_the_writer_cannot_validate_leaves_the_running_one_serving(front_factory):
    front = front_factory("prod")
    broken = json.loads(front.render(front.upstreams["lobechat"])[0])
    broken["apps"]["http"]["servers"]["https-public"]["routes"][0]["handle"][-1] = {"handler": "no_such_handler"}
    run = run_writer(front.caddy, json.dumps(broken), admin=front.admin, upstreams=[], drain_s=0)
    assert run.returncode == 2 and "refused the generated config" in run.output
    assert front.client("chat.example.com").get("/")[2] == b"lobechat-old"
    assert json.loads((front.caddy.config_dir / "caddy.json").read_text())["apps"] != broken["apps"]


def test_the_writer_reports_a_caddy_that_does_not_answer(front_factory):
    front = front_factory("prod")
    text, upstreams = front.render(front.upstreams["lobechat"])
    run = run_writer(front.caddy, text, admin=f"127.0.0.1:{free_port()}", upstreams=upstreams, drain_s=0, wait_s=1)
    assert run.returncode == 3 and "did not answer" in run.output


def test_certificate_files_from_secret_config_are_served(front_factory, tmp_path):
    from tests.test_front_config import ca_signed_pem

    ca, cert, key = ca_signed_pem(["chat.example.com", "auth.example.com", "auth-admin.example.com"])
    front = front_factory("prod")
    files = TlsSettings(mode="files", cert_file=str(front.caddy.config_dir / "tls" / "certificate.pem"),
                        key_file=str(front.caddy.config_dir / "tls" / "private-key.pem"))
    # Delivered as the writer container gets them: 0600 files in FRONT_TLS_DIR, deleted once copied.
    delivered = tmp_path / "delivered-tls"
    delivered.mkdir(mode=0o700)
    for file_name, content in (("certificate.pem", cert), ("private-key.pem", key)):
        (delivered / file_name).write_text(content)
        (delivered / file_name).chmod(0o600)
    run = front.load(front.upstreams["lobechat"], tls=files, drain_s=0, extra_env={"FRONT_TLS_DIR": str(delivered)})
    assert run.returncode == 0, run.output
    printed = key in run.output or "PRIVATE" in run.output  # a boolean: a failure must not print the key
    assert not printed
    assert list(delivered.iterdir()) == []
    (tmp_path / "test-ca.pem").write_text(ca)
    client = Client("chat.example.com", front.listen.public_https, tls=True, ca_files=[str(tmp_path / "test-ca.pem")])
    assert client.get("/")[2] == b"lobechat-old"
    assert oct((front.caddy.config_dir / "tls" / "private-key.pem").stat().st_mode & 0o777) == "0o600"


def test_missing_certificate_files_leave_the_running_config_alone(front_factory, tmp_path):
    front = front_factory("prod")
    assert front.load(front.upstreams["lobechat"], drain_s=0).returncode == 0
    before = (front.caddy.config_dir / "caddy.json").read_text()
    delivered = tmp_path / "delivered-tls"
    delivered.mkdir()
    (delivered / "private-key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot-shown\n-----END PRIVATE KEY-----\n")
    files = TlsSettings(mode="files", cert_file=str(front.caddy.config_dir / "tls" / "certificate.pem"),
                        key_file=str(front.caddy.config_dir / "tls" / "private-key.pem"))
    run = front.load(front.upstreams["lobechat"], tls=files, drain_s=0, extra_env={"FRONT_TLS_DIR": str(delivered)})
    assert run.returncode == 2 and "certificate files were not delivered" in run.output and "not-shown" not in run.output
    assert list(delivered.iterdir()) == []  # the key that did arrive is deleted too
    assert (front.caddy.config_dir / "caddy.json").read_text() == before
    assert not (front.caddy.config_dir / "tls" / "private-key.pem").exists()
    assert front.client("chat.example.com").get("/")[2] == b"lobechat-old"


def test_sign_in_waits_through_a_logto_restart_instead_of_failing(front_factory):
    front = front_factory("prod")
    logto = front.upstreams["logto"]
    port = logto.port
    logto.stop()                                   # the Logto container is replaced (delete first)
    def restart() -> None:
        # time.sleep, not threading.Timer: a timed condition wait never times out under libfaketime
        # (.ci/run runs the suite under faketime too), a plain sleep does.
        time.sleep(1.5)
        front.upstreams["logto"] = Upstream("logto", port=port).start()

    restarted = threading.Thread(target=restart, daemon=True)
    restarted.start()
    started = time.monotonic()
    status, _, body, _ = front.client("auth.example.com").get("/oidc/auth")
    waited = time.monotonic() - started
    restarted.join()
    assert (status, body) == (200, b"logto") and waited >= 1.0
