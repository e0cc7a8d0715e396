"""Faults during ``pulumi up``: the dev program under the engine-like mocks against the Logto stand-in
with its fault injection. Logto not ready yet, Logto restarting mid-run, Logto gone (its Postgres
down), Management API 5xx and 429: a bounded wait that reports progress, a retry, or one clear
error; and a second run converges with no duplicate Logto object and nothing lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.logto_api import LogtoConnectionError, LogtoServerError, readiness
from components.logto_api import transport as transport_module
from tests.logto_standin import LogtoStandIn
from tests.test_program_against_standin import (
    Deployment,
    EngineLikeMocks,
    dev_config,
    failing_run_quietly,
    run_against,
    same_secret,
)


@pytest.fixture
def progress(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The readiness wait's progress messages (and no real sleeping anywhere in the transport)."""
    messages: list[str] = []
    monkeypatch.setattr(readiness, "PROGRESS", [messages.append])
    monkeypatch.setattr(transport_module, "_sleep", lambda seconds: None)
    return messages


@pytest.fixture
def standin() -> Iterator[LogtoStandIn]:
    with LogtoStandIn() as server:
        yield server
        violations = list(server.openapi_violations)
        assert violations == []


def deploy(standin: LogtoStandIn, config=None, **kwargs) -> Deployment:
    mocks = EngineLikeMocks(standin, **kwargs)
    return Deployment(standin, run_against(standin, config or dev_config(standin), mocks), mocks)


def status_polls(standin: LogtoStandIn) -> int:
    return sum(1 for r in standin.requests_log if r.path == "/api/status")


def test_logto_not_ready_yet_is_waited_for_with_progress(standin, progress):
    # Logto's API and /api/status answer 503 for a while (a proxy in front of a starting Logto).
    standin.faults.add(method="POST", path_prefix="/oidc/token", kind="status", status=503, times=1)
    standin.faults.add(method="GET", path_prefix="/api/status", kind="status", status=503, times=3)
    deployment = deploy(standin)
    assert len(deployment.owned_app_ids()) == 1 and len(deployment.hook_ids()) == 1
    waiting = [m for m in progress if "is not ready" in m]
    assert len(waiting) == 1 and "HTTP 503" in waiting[0] and "of at most 180 s" in waiting[0]
    assert any("is ready again" in m for m in progress)
    assert status_polls(standin) == 4  # one look at once, then polls until the first 204


def test_no_status_poll_while_logto_answers(standin, progress):
    deploy(standin)
    assert status_polls(standin) == 0 and progress == []


def test_logto_restarting_mid_run_is_waited_for_and_the_run_completes(standin, monkeypatch):
    port = standin.port
    messages: list[str] = []
    sleeps: list[float] = []
    monkeypatch.setattr(readiness, "PROGRESS", [messages.append])

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 3:
            standin.restart(port)  # Logto is back after three polls, with its database

    monkeypatch.setattr(transport_module, "_sleep", sleep)
    first = deploy(standin)
    app_id, secret = first.app()["id"], first.default_secret()
    config = dev_config(standin)
    standin.stop()  # Logto goes down (its Postgres restarted) before the next run's calls
    second = deploy(standin, config)  # a lost state: every create again, each first looks for its marker
    assert "connection refused" in messages[0] and any("is ready again" in m for m in messages)
    assert second.owned_app_ids() == [app_id] and len(second.hook_ids()) == 1
    assert same_secret(second.env("AUTH_LOGTO_SECRET"), secret), "the rerun wired another client secret"


def test_logto_that_does_not_come_back_is_one_clear_error_and_a_rerun_converges(standin, monkeypatch):
    sleeps: list[float] = []
    messages: list[str] = []
    monkeypatch.setattr(transport_module, "_sleep", sleeps.append)
    monkeypatch.setattr(readiness, "PROGRESS", [messages.append])
    port, config = standin.port, dev_config(standin)
    standin.stop()
    with failing_run_quietly(LogtoConnectionError), pytest.raises(LogtoConnectionError) as failure:
        deploy(standin, config)
    message = str(failure.value)
    assert "did not become ready within 180 s" in message and "Postgres" in message and "pulumi up" in message
    assert standin.m2m_client_secret not in message
    # Bounded: each waiting Logto resource (they run in parallel) polls 90 times, 2 s apart, and
    # reports at the start and every 10 s.
    waits = sum(1 for m in messages if "waiting, 2 s of" in m)
    assert waits >= 1 and sleeps.count(2.0) == 90 * waits
    assert sum(1 for m in messages if "is not ready" in m) == 19 * waits
    standin.restart(port)
    deployment = deploy(standin, config)
    assert len(deployment.owned_app_ids()) == 1 and len(deployment.hook_ids()) == 1


def test_a_persistent_5xx_on_create_is_one_clear_error_and_the_rerun_creates_once(standin, progress):
    standin.faults.add(method="POST", path_prefix="/api/hooks", kind="status", status=500, times=None)
    with failing_run_quietly(LogtoServerError), pytest.raises(LogtoServerError) as failure:
        deploy(standin)
    message = str(failure.value)
    assert "POST" in message and "/api/hooks" in message and "500" in message
    app_id = [a["id"] for a in standin.state.applications.values() if a["type"] == "Traditional"]
    standin.faults.clear()
    deployment = deploy(standin)
    assert deployment.owned_app_ids() == app_id and len(deployment.hook_ids()) == 1
    assert progress == []  # a 500 is Logto answering: no readiness wait


def test_429_with_retry_after_is_retried_honouring_it(standin, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(transport_module, "_sleep", sleeps.append)
    standin.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=429, retry_after=3, times=2)
    deployment = deploy(standin)
    statuses = [r.status for r in standin.requests_log if r.method == "POST" and r.path == "/api/applications"]
    assert statuses == [429, 429, 200] and sleeps.count(3.0) == 2
    assert len(deployment.owned_app_ids()) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_on_a_read_is_retried(standin, progress, status):
    standin.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=status, times=2)
    deployment = deploy(standin)
    assert len(deployment.owned_app_ids()) == 1 and len(deployment.hook_ids()) == 1
