"""Ambiguous gateway answers (issue 8, item 8): behind a proxy, a 502, 520-524 or any 5xx without
Logto's JSON error body may come while Logto commits the create. Such a create is treated like a
timeout: looked up by its ownership marker, never POSTed again, and a rerun is asked for when the
lookup finds nothing. A Retry-After longer than the client waits fails with the wait in the message.

The stand-in's ``gateway_then_commit`` fault answers with a proxy's HTML page at once and performs
the request only when the test calls ``commit_deferred()``: Logto finishing the create after the
client moved on, which is how two applications appeared before.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.logto_api import LogtoConnection, LogtoServerError, ManagementApi
from components.logto_api.errors import LogtoRateLimitedError
from components.logto_api import transport as transport_module
from components.logto_resources import LogtoApplicationProvider, LogtoWebhookProvider
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props

CALLBACK = "http://lobe.localhost:3210/api/auth/callback/logto"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(transport_module, "_sleep", recorded.append)
    return recorded


def app_inputs(logto: LogtoStandIn) -> dict[str, Any]:
    return {
        **connection_props(logto), "project": "lobechat-logto", "stack": "dev", "resource_name": "lobechat-app",
        "name": "LobeChat", "description": "LobeChat on this stack", "app_type": "Traditional",
        "redirect_uris": [CALLBACK], "post_sign_out_redirect_uris": ["http://lobe.localhost:3210/"],
        "cors_allowed_origins": ["http://lobe.localhost:3210"], "adopt_id": None,
    }


def hook_inputs(logto: LogtoStandIn) -> dict[str, Any]:
    return {
        **connection_props(logto), "project": "lobechat-logto", "stack": "dev", "resource_name": "lobechat-user-sync",
        "name": "LobeChat user sync", "url": "http://lobe.localhost:3210/api/webhooks/logto",
        "events": ["User.Data.Updated"], "headers": {}, "enabled": True, "adopt_id": None,
    }


def posts(logto: LogtoStandIn, path: str) -> int:
    return sum(1 for entry in logto.requests_log if entry[0] == "POST" and entry[1].split("?")[0] == path)


@pytest.mark.parametrize("status", [502, 504, 520, 521, 522, 523, 524, 500, 503])
def test_gateway_answer_on_create_is_not_posted_again_and_the_rerun_adopts_the_one_application(
    logto: LogtoStandIn, sleeps: list[float], status: int
) -> None:
    provider = LogtoApplicationProvider()
    props = provider.check({}, app_inputs(logto)).inputs
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="gateway_then_commit", status=status)
    with pytest.raises(LogtoServerError) as info:
        provider.create(props)
    assert "Run `pulumi up` again" in str(info.value) and f"HTTP {status}" in str(info.value)
    assert posts(logto, "/api/applications") == 1
    assert logto.commit_deferred() == 1  # Logto finishes the first create behind the gateway
    result = provider.create(props)  # the rerun
    named = [a for a in logto.state.applications.values() if a["name"] == "LobeChat"]
    assert [a["id"] for a in named] == [result.id]
    assert posts(logto, "/api/applications") == 1


@pytest.mark.parametrize("status", [502, 524])
def test_gateway_answer_on_webhook_create_leaves_one_hook(logto: LogtoStandIn, sleeps: list[float], status: int) -> None:
    provider = LogtoWebhookProvider()
    props = provider.check({}, hook_inputs(logto)).inputs
    logto.faults.add(method="POST", path_prefix="/api/hooks", kind="gateway_then_commit", status=status)
    with pytest.raises(LogtoServerError):
        provider.create(props)
    logto.commit_deferred()
    result = provider.create(props)
    hooks = [h for h in logto.state.hooks.values() if h["name"] == "LobeChat user sync"]
    assert [h["id"] for h in hooks] == [result.id]
    assert posts(logto, "/api/hooks") == 1


def test_logtos_own_503_with_its_json_body_is_still_retried_on_create(logto: LogtoStandIn, sleeps: list[float]) -> None:
    provider = LogtoApplicationProvider()
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=503, times=1)
    result = provider.create(provider.check({}, app_inputs(logto)).inputs)
    assert [a["id"] for a in logto.state.applications.values() if a["name"] == "LobeChat"] == [result.id]


def test_gateway_answer_on_a_read_is_retried(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = ManagementApi(LogtoConnection(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret))
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="gateway_then_commit", status=524)
    assert isinstance(api.applications.list(), list)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_longer_than_the_client_waits_fails_naming_the_wait(
    logto: LogtoStandIn, sleeps: list[float], status: int
) -> None:
    api = ManagementApi(LogtoConnection(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret, retry_after_cap=30.0))
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=status, retry_after=3600)
    with pytest.raises(LogtoRateLimitedError) as info:
        api.applications.list()
    message = str(info.value)
    assert "3600 s" in message and "30 s" in message and f"HTTP {status}" in message
    assert sleeps == []  # no early retry
    assert sum(1 for entry in logto.requests_log if entry[1].startswith("/api/applications")) == 1


def test_retry_after_within_the_wait_is_honoured(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = ManagementApi(LogtoConnection(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret, retry_after_cap=30.0))
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=429, retry_after=12)
    api.applications.list()
    assert sleeps == [12.0]
