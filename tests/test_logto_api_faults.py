"""Management API client against the Logto stand-in over real HTTP: tokens, retries, each fault class."""

from __future__ import annotations

import email.utils
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from components.logto_api import (
    LogtoAuthenticationError,
    LogtoConnection,
    LogtoConnectionError,
    LogtoError,
    LogtoNotFoundError,
    LogtoPermissionError,
    LogtoServerError,
    LogtoTimeoutError,
    LogtoValidationError,
    ManagementApi,
)
from components.logto_api import transport as transport_module
from tests.logto_standin import LogtoStandIn
from tests.ports import closed_port

REDIRECT = "http://lobe.localhost:3210/api/auth/callback/logto"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff sleeps instead of sleeping (keeps the suite fast; lets tests see Retry-After)."""
    recorded: list[float] = []
    monkeypatch.setattr(transport_module, "_sleep", recorded.append)
    return recorded


def connect(logto: LogtoStandIn, **overrides: Any) -> ManagementApi:
    settings: dict[str, Any] = dict(
        endpoint=logto.endpoint, client_id=logto.m2m_client_id, client_secret=logto.m2m_client_secret
    )
    settings.update(overrides)
    return ManagementApi(LogtoConnection(**settings))


def calls(logto: LogtoStandIn, method: str, path_prefix: str) -> list[tuple[str, str, Any]]:
    return [entry for entry in logto.requests_log if entry[0] == method and entry[1].startswith(path_prefix)]


def create_app(api: ManagementApi, name: str = "LobeChat") -> dict[str, Any]:
    return api.applications.create(
        name=name, redirect_uris=[REDIRECT], post_sign_out_redirect_uris=[], cors_allowed_origins=[]
    )


def assert_no_secret(exc: BaseException, *secrets: str) -> None:
    text = f"{exc}\n{exc!r}"
    leaked = [index for index, secret in enumerate(secrets) if secret in text]
    assert not leaked, f"secret number(s) {leaked} appear in the error text (not shown)"


def test_token_is_fetched_once_and_reused(logto: LogtoStandIn) -> None:
    api = connect(logto)
    api.applications.list()
    api.hooks.list()
    connect(logto).applications.list()  # a new client object in the same process shares the cache
    assert len(calls(logto, "POST", "/oidc/token")) == 1


def test_expired_token_is_refreshed_once_and_call_succeeds(logto: LogtoStandIn) -> None:
    api = connect(logto)
    api.applications.list()
    logto.expire_all_tokens()
    assert isinstance(api.applications.list(), list)
    assert len(calls(logto, "POST", "/oidc/token")) == 2
    assert [entry[2] for entry in calls(logto, "GET", "/api/applications")] == [200, 401, 200]


def test_concurrent_calls_after_expiry_share_one_new_token(logto: LogtoStandIn) -> None:
    connect(logto).applications.list()
    logto.expire_all_tokens()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: connect(logto).hooks.list(), range(16)))
    assert results == [[]] * 16
    assert len(calls(logto, "POST", "/oidc/token")) == 2


def test_token_rejected_twice_fails_after_one_refresh(logto: LogtoStandIn) -> None:
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=401, times=None)
    with pytest.raises(LogtoAuthenticationError) as info:
        connect(logto).applications.list()
    assert "resource indicator" in str(info.value)
    assert len(calls(logto, "POST", "/oidc/token")) == 2
    assert len(calls(logto, "GET", "/api/applications")) == 2


def test_retry_after_as_http_date_is_understood() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = transport_module._retry_after_seconds(response)
    assert seconds is not None and 25 <= seconds <= 31


def test_wrong_m2m_secret_raises_authentication_error_with_hint(logto: LogtoStandIn) -> None:
    wrong = "definitely-not-the-secret-123"
    with pytest.raises(LogtoAuthenticationError) as info:
        connect(logto, client_secret=wrong).applications.list()
    assert "M2M client id or secret is wrong" in str(info.value)
    assert info.value.status == 401
    assert_no_secret(info.value, wrong, logto.m2m_client_secret)


def test_missing_management_role_raises_permission_error_naming_the_role(logto: LogtoStandIn) -> None:
    client_id, client_secret = logto.add_m2m_app(with_role=False)
    with pytest.raises(LogtoPermissionError) as info:
        connect(logto, client_id=client_id, client_secret=client_secret).applications.list()
    assert info.value.code == "auth.forbidden"
    assert "Logto Management API access" in str(info.value)
    assert_no_secret(info.value, client_secret)


def test_a_cached_token_is_not_reused_for_a_wrong_secret(logto: LogtoStandIn) -> None:
    connect(logto).applications.list()  # caches a token for the right secret
    with pytest.raises(LogtoAuthenticationError):
        connect(logto, client_secret="not-the-secret").applications.list()


def test_wrong_resource_indicator_explains_self_hosted_indicator(logto: LogtoStandIn) -> None:
    with pytest.raises(LogtoValidationError) as info:
        connect(logto, resource="https://tenant1.logto.app/api").applications.list()
    assert "https://default.logto.app/api" in str(info.value)


def test_connection_refused_names_the_url(sleeps: list[float]) -> None:
    port = closed_port()
    # Nothing listens on the port any more: every attempt is refused before anything is sent.
    api = ManagementApi(LogtoConnection(f"http://127.0.0.1:{port}", "id", "secret-xyz", max_attempts=3))
    with pytest.raises(LogtoConnectionError) as info:
        api.applications.list()
    assert f"http://127.0.0.1:{port}" in str(info.value)
    assert "Is Logto running" in str(info.value)
    assert info.value.may_have_reached_server is False
    assert len(sleeps) == 2
    assert_no_secret(info.value, "secret-xyz")


def test_server_error_on_get_is_retried_then_succeeds(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = connect(logto)
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=503, times=2)
    assert isinstance(api.applications.list(), list)
    assert [entry[2] for entry in calls(logto, "GET", "/api/applications")] == [503, 503, 200]


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_errors_on_get_are_retried(logto: LogtoStandIn, sleeps: list[float], status: int) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="status", status=status, times=1)
    connect(logto).hooks.list()
    assert [entry[2] for entry in calls(logto, "GET", "/api/hooks")] == [status, 200]


def test_persistent_server_error_gives_up_after_bounded_attempts(logto: LogtoStandIn, sleeps: list[float]) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="status", status=503, times=None)
    with pytest.raises(LogtoServerError) as info:
        connect(logto, max_attempts=3).hooks.list()
    assert info.value.status == 503
    assert len(calls(logto, "GET", "/api/hooks")) == 3


def test_503_on_create_is_retried_and_creates_one_application(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = connect(logto)
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=503, times=1)
    app = create_app(api, "retried-create")
    named = [a for a in logto.state.applications.values() if a["name"] == "retried-create"]
    assert [a["id"] for a in named] == [app["id"]]


def test_502_on_create_is_not_retried_blindly(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = connect(logto)
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=502, times=1)
    with pytest.raises(LogtoServerError) as info:
        create_app(api)
    assert info.value.may_have_reached_server is True
    assert len(calls(logto, "POST", "/api/applications")) == 1


def test_429_waits_for_retry_after(logto: LogtoStandIn, sleeps: list[float]) -> None:
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=429, retry_after=2, times=1)
    connect(logto).applications.list()
    assert sleeps == [2.0]


def test_429_retry_after_beyond_the_cap_fails_instead_of_retrying_early(logto: LogtoStandIn, sleeps: list[float]) -> None:
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=429, retry_after=3600, times=1)
    with pytest.raises(LogtoError) as info:
        connect(logto, retry_after_cap=5.0).applications.list()
    assert "3600 s" in str(info.value) and sleeps == []


def test_other_4xx_is_not_retried(logto: LogtoStandIn, sleeps: list[float]) -> None:
    with pytest.raises(LogtoNotFoundError) as info:
        connect(logto).applications.get("does-not-exist")
    assert info.value.code == "entity.not_exists_with_id"
    assert len(calls(logto, "GET", "/api/applications/does-not-exist")) == 1
    assert sleeps == []


def test_validation_error_carries_logto_code_and_details(logto: LogtoStandIn) -> None:
    api = connect(logto)
    app = create_app(api)
    api.applications.create_secret(app["id"], "rotation")
    with pytest.raises(LogtoValidationError) as info:
        api.applications.create_secret(app["id"], "rotation")
    assert (info.value.status, info.value.code) == (422, "application.secret_name_exists")


def test_slow_response_beyond_timeout_gives_clear_timeout_error(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = connect(logto, timeout=0.3, max_attempts=2)
    api.applications.list()  # token first, so only the slow call is timed
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="delay", seconds=1.0, times=None)
    with pytest.raises(LogtoTimeoutError) as info:
        api.hooks.list()
    assert "0.3s" in str(info.value)
    assert f"{logto.endpoint}/api/hooks" in str(info.value)


def test_slow_response_within_timeout_succeeds(logto: LogtoStandIn) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="delay", seconds=0.2, times=1)
    assert connect(logto, timeout=5).hooks.list() == []


def test_dropped_connection_on_get_is_retried(logto: LogtoStandIn, sleeps: list[float]) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="drop", times=1)
    assert connect(logto).hooks.list() == []
    assert len(calls(logto, "GET", "/api/hooks")) == 2


def test_dropped_response_to_create_is_reported_as_possibly_applied(logto: LogtoStandIn, sleeps: list[float]) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="drop_after_commit", times=1)
    with pytest.raises(LogtoConnectionError) as info:
        create_app(connect(logto), "lost-response")
    assert info.value.may_have_reached_server is True
    # The transport did not repeat the POST: exactly one application exists.
    assert [a["name"] for a in logto.state.applications.values()].count("lost-response") == 1


def test_delete_after_lost_response_is_retried_and_reports_not_found(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = connect(logto)
    app = create_app(api)
    logto.faults.add(method="DELETE", path_prefix="/api/applications", kind="drop_after_commit", times=1)
    with pytest.raises(LogtoNotFoundError):
        api.applications.delete(app["id"])
    assert app["id"] not in logto.state.applications


def test_application_verbs_round_trip(logto: LogtoStandIn) -> None:
    api = connect(logto)
    app = create_app(api, "round-trip")
    assert api.applications.get(app["id"])["name"] == "round-trip"
    assert [a["id"] for a in api.applications.search("round-trip")] == [app["id"]]
    updated = api.applications.update(
        app["id"],
        name="renamed",
        oidc_client_metadata={"redirectUris": [REDIRECT], "postLogoutRedirectUris": ["http://lobe.localhost:3210/"]},
    )
    assert updated["oidcClientMetadata"]["postLogoutRedirectUris"] == ["http://lobe.localhost:3210/"]
    secret = api.applications.create_secret(app["id"], "rotation")
    assert {s["name"] for s in api.applications.list_secrets(app["id"])} == {"Default secret", "rotation"}
    api.applications.delete_secret(app["id"], "rotation")
    remaining = api.applications.default_secret(app["id"])
    assert remaining is not None
    survived = remaining == secret["value"]
    assert not survived, "the deleted named secret is still reported as the default"
    api.applications.delete(app["id"])
    assert app["id"] not in logto.state.applications


def test_hook_verbs_round_trip(logto: LogtoStandIn) -> None:
    api = connect(logto)
    hook = api.hooks.create(name="sync", url="http://127.0.0.1:9/hook", headers={"x-a": "1"})
    has_key = bool(hook["signingKey"])
    assert has_key, "no signing key"
    assert api.hooks.get(hook["id"])["config"]["headers"] == {"x-a": "1"}
    updated = api.hooks.update(hook["id"], url="http://127.0.0.1:9/other")
    assert updated["config"] == {"url": "http://127.0.0.1:9/other", "headers": {}}
    rotated = api.hooks.rotate_signing_key(hook["id"])
    unchanged = rotated["signingKey"] == hook["signingKey"]
    assert not unchanged, "signing key did not change"
    assert [h["id"] for h in api.hooks.list_all()] == [hook["id"]]
    api.hooks.delete(hook["id"])
    with pytest.raises(LogtoNotFoundError):
        api.hooks.delete(hook["id"])


def test_hook_test_delivery_to_unreachable_url_is_a_validation_error(logto: LogtoStandIn) -> None:
    api = connect(logto)
    hook = api.hooks.create(name="sync", url="http://127.0.0.1:9/hook")
    with pytest.raises(LogtoValidationError) as info:
        api.hooks.test(hook["id"], url="http://127.0.0.1:9/hook")
    assert info.value.status == 422


def test_bad_input_sends_no_request(logto: LogtoStandIn) -> None:
    api = connect(logto)
    with pytest.raises(LogtoError):
        api.hooks.create(name="sync", url="http://127.0.0.1:9/hook", events=[])
    with pytest.raises(LogtoError):
        api.applications.create(name="x", redirect_uris=["not a url"])
    with pytest.raises(LogtoError):
        api.applications.create(name="x", app_type="NextJS")
    assert logto.requests_log == []


def test_no_error_text_contains_the_m2m_secret_or_token(logto: LogtoStandIn, sleeps: list[float]) -> None:
    api = connect(logto)
    api.applications.list()
    token = transport_module._TOKEN_CACHE[api.connection.cache_key].access_token
    errors: list[LogtoError] = []
    for fault in ({"kind": "status", "status": 500}, {"kind": "drop_after_commit"}):
        logto.faults.add(method="POST", path_prefix="/api/applications", **fault)
        try:
            create_app(api)
        except LogtoError as exc:
            errors.append(exc)
    try:
        api.applications.get("nope")
    except LogtoError as exc:
        errors.append(exc)
    assert len(errors) == 3
    for exc in errors:
        assert_no_secret(exc, logto.m2m_client_secret, token)
