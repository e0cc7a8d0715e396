"""LogtoApplicationSecret's provider against the Logto stand-in, called the way the engine calls it."""

from __future__ import annotations

import time
from typing import Any

import pytest

from components.logto_api import LogtoInputError
from components.logto_resources import LogtoApplicationSecretProvider
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props

pytestmark = pytest.mark.usefixtures("no_backoff_sleep")


@pytest.fixture
def provider() -> LogtoApplicationSecretProvider:
    return LogtoApplicationSecretProvider()


@pytest.fixture
def app_id(logto: LogtoStandIn) -> str:
    return logto.state.create_application({"name": "LobeChat", "type": "Traditional"})["id"]


def inputs(logto: LogtoStandIn, app_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        **connection_props(logto),
        "application_id": app_id,
        "secret_name": "rotation-2026",
        "expires_at": None,
        **overrides,
    }


def engine_create(provider: LogtoApplicationSecretProvider, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    checked = provider.check({}, props)
    assert checked.failures == []
    result = provider.create(checked.inputs)
    return result.id, result.outs


def named(logto: LogtoStandIn, app_id: str, name: str) -> list[dict[str, Any]]:
    return [s for s in logto.state.secrets[app_id] if s["name"] == name]


def same_secret(actual: object, expected: object, what: str) -> None:
    """Compare secret values without pytest printing them on failure."""
    matches = actual == expected
    assert matches, f"{what}: values differ (not shown)"


def test_create_outputs_the_value_logto_stores(logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str) -> None:
    _, outs = engine_create(provider, inputs(logto, app_id))
    same_secret([s["value"] for s in named(logto, app_id, "rotation-2026")], [outs["value"]], "stored vs output value")


def test_create_with_expiry_passes_it_to_logto(logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str) -> None:
    expires = int(time.time() * 1000) + 86_400_000
    _, outs = engine_create(provider, inputs(logto, app_id, expires_at=expires))
    assert named(logto, app_id, "rotation-2026")[0]["expiresAt"] == expires
    assert outs["expires_at"] == expires


def test_expiry_in_the_past_is_rejected_before_any_request(
    logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str
) -> None:
    with pytest.raises(LogtoInputError) as info:
        provider.create(inputs(logto, app_id, expires_at="2001-01-01T00:00:00Z"))
    assert info.value.field == "expires_at"
    assert logto.requests_log == []


def test_read_with_nothing_changed_gives_no_diff(logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str) -> None:
    secret_id, outs = engine_create(provider, inputs(logto, app_id))
    read = provider.read(secret_id, outs)
    assert read.id == secret_id
    assert provider.diff(secret_id, read.outs, inputs(logto, app_id)).changes is False


def test_refresh_of_secret_deleted_in_console_reads_as_gone(
    logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str
) -> None:
    secret_id, outs = engine_create(provider, inputs(logto, app_id))
    logto.state.secrets[app_id] = [s for s in logto.state.secrets[app_id] if s["name"] != "rotation-2026"]
    assert provider.read(secret_id, outs).id == ""


def test_refresh_after_application_deleted_reads_as_gone(
    logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str
) -> None:
    secret_id, outs = engine_create(provider, inputs(logto, app_id))
    logto.state.delete_application(app_id)
    assert provider.read(secret_id, outs).id == ""


def test_delete_then_delete_again_is_fine(logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str) -> None:
    secret_id, outs = engine_create(provider, inputs(logto, app_id))
    provider.delete(secret_id, outs)
    assert named(logto, app_id, "rotation-2026") == []
    provider.delete(secret_id, outs)


def test_existing_name_is_taken_over_not_duplicated(logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str) -> None:
    existing = logto.state.create_secret(app_id, {"name": "rotation-2026"})
    _, outs = engine_create(provider, inputs(logto, app_id))
    same_secret(outs["value"], existing["value"], "taken-over value")
    assert len(named(logto, app_id, "rotation-2026")) == 1


def test_lost_create_response_does_not_duplicate(logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str) -> None:
    logto.faults.add(method="POST", path_prefix=f"/api/applications/{app_id}/secrets", kind="drop_after_commit", times=1)
    _, outs = engine_create(provider, inputs(logto, app_id))
    same_secret([s["value"] for s in named(logto, app_id, "rotation-2026")], [outs["value"]], "stored vs output value")


def test_update_of_m2m_credentials_rereads_without_writing(
    logto: LogtoStandIn, provider: LogtoApplicationSecretProvider, app_id: str
) -> None:
    secret_id, outs = engine_create(provider, inputs(logto, app_id))
    client_id, client_secret = logto.add_m2m_app(with_role=True)
    news = inputs(logto, app_id, logto_client_id=client_id, logto_client_secret=client_secret)
    before = [e for e in logto.requests_log if e[0] != "GET" and not e[1].startswith("/oidc")]
    result = provider.update(secret_id, outs, news)
    after = [e for e in logto.requests_log if e[0] != "GET" and not e[1].startswith("/oidc")]
    assert before == after
    same_secret(result.outs["value"], outs["value"], "value after update")
