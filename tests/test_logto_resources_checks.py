"""Dynamic providers' check and diff, called as the engine calls them (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.runtime import rpc

from components.logto_api import LogtoInputError
from components.logto_resources import (
    LogtoApplicationProvider,
    LogtoConnectionArgs,
    LogtoApplicationSecretProvider,
    LogtoWebhookProvider,
)
from components.logto_resources.connection import connection_from_props

SECRET = "m2m-secret-never-shown"
CONNECTION = {
    "logto_endpoint": "http://127.0.0.1:9",
    "logto_client_id": "m2m",
    "logto_client_secret": SECRET,
    "logto_resource": "https://default.logto.app/api",
}
MARKER = {"project": "lobechat-logto", "stack": "dev", "resource_name": "lobechat-app"}


def app_inputs(**overrides: Any) -> dict[str, Any]:
    return {
        **CONNECTION,
        **MARKER,
        "name": "LobeChat",
        "description": None,
        "app_type": "Traditional",
        "redirect_uris": ["http://lobe.localhost:3210/api/auth/callback/logto"],
        "post_sign_out_redirect_uris": ["http://lobe.localhost:3210/"],
        "cors_allowed_origins": ["http://lobe.localhost:3210"],
        "adopt_id": None,
        **overrides,
    }


def app_outputs(**overrides: Any) -> dict[str, Any]:
    return {**app_inputs(), "app_id": "app1", "client_id": "app1", "client_secret": "x", **overrides}


def hook_inputs(**overrides: Any) -> dict[str, Any]:
    return {
        **CONNECTION,
        **MARKER,
        "resource_name": "lobechat-hook",
        "name": "LobeChat user sync",
        "url": "http://lobe.localhost:3210/api/webhooks/logto",
        "events": ["User.Data.Updated"],
        "headers": {},
        "enabled": True,
        "adopt_id": None,
        **overrides,
    }


def failed_properties(result: Any) -> set[str]:
    return {failure.property for failure in result.failures}


def test_application_check_accepts_good_inputs() -> None:
    assert LogtoApplicationProvider().check({}, app_inputs()).failures == []


def test_application_check_names_malformed_redirect_uri() -> None:
    result = LogtoApplicationProvider().check({}, app_inputs(redirect_uris=["not a url"]))
    assert failed_properties(result) == {"redirect_uris"}


def test_application_check_names_unknown_type() -> None:
    result = LogtoApplicationProvider().check({}, app_inputs(app_type="NextJS"))
    assert failed_properties(result) == {"app_type"}


def test_application_check_names_endpoint_that_is_not_a_url() -> None:
    result = LogtoApplicationProvider().check({}, app_inputs(logto_endpoint="auth.example.com"))
    assert failed_properties(result) == {"logto_endpoint"}


def test_application_check_failure_text_never_holds_the_m2m_secret() -> None:
    result = LogtoApplicationProvider().check({}, app_inputs(logto_endpoint="nope", name=""))
    assert result.failures
    assert all(SECRET not in failure.reason for failure in result.failures)


def test_application_check_skips_unknown_values_during_preview() -> None:
    result = LogtoApplicationProvider().check({}, app_inputs(redirect_uris=[rpc.UNKNOWN], logto_endpoint=rpc.UNKNOWN))
    assert result.failures == []


def test_application_create_with_bad_input_raises_before_any_request() -> None:
    # The endpoint is unreachable: reaching the network would raise a connection error instead.
    with pytest.raises(LogtoInputError) as info:
        LogtoApplicationProvider().create(app_inputs(cors_allowed_origins=["no-scheme.example"]))
    assert info.value.field.startswith("cors_allowed_origins")


def test_application_diff_with_nothing_changed_is_no_change() -> None:
    assert LogtoApplicationProvider().diff("app1", app_outputs(), app_inputs()).changes is False


def test_application_diff_redirect_uri_change_updates_in_place() -> None:
    news = app_inputs(redirect_uris=["http://lobe.localhost:3211/api/auth/callback/logto"])
    result = LogtoApplicationProvider().diff("app1", app_outputs(), news)
    assert result.changes is True
    assert result.replaces == []


def test_application_diff_type_change_replaces() -> None:
    result = LogtoApplicationProvider().diff("app1", app_outputs(), app_inputs(app_type="SPA"))
    assert result.replaces == ["app_type"]


def test_application_diff_m2m_secret_change_updates_in_place() -> None:
    result = LogtoApplicationProvider().diff("app1", app_outputs(), app_inputs(logto_client_secret="rotated"))
    assert result.changes is True
    assert result.replaces == []


def test_application_diff_engine_floats_and_empty_description_are_not_changes() -> None:
    result = LogtoApplicationProvider().diff("app1", app_outputs(description=""), app_inputs(description=None))
    assert result.changes is False


def test_application_diff_new_adopt_id_replaces() -> None:
    result = LogtoApplicationProvider().diff("app1", app_outputs(), app_inputs(adopt_id="other"))
    assert result.replaces == ["adopt_id"]


def test_application_diff_adopt_id_of_the_same_app_changes_nothing() -> None:
    result = LogtoApplicationProvider().diff("app1", app_outputs(adopt_id="app1"), app_inputs(adopt_id="app1"))
    assert result.changes is False


def test_webhook_check_names_empty_event_list() -> None:
    result = LogtoWebhookProvider().check({}, hook_inputs(events=[]))
    assert failed_properties(result) == {"events"}


def test_webhook_check_refuses_the_reserved_marker_header() -> None:
    result = LogtoWebhookProvider().check({}, hook_inputs(headers={"X-Managed-By": "me"}))
    assert failed_properties(result) == {"headers"}


def test_webhook_diff_event_order_is_not_a_change() -> None:
    olds = {**hook_inputs(events=["User.Data.Updated", "User.SuspensionStatus.Updated"]), "hook_id": "h"}
    news = hook_inputs(events=["User.SuspensionStatus.Updated", "User.Data.Updated"])
    assert LogtoWebhookProvider().diff("h", olds, news).changes is False


def test_webhook_diff_url_change_updates_in_place() -> None:
    olds = {**hook_inputs(), "hook_id": "h"}
    result = LogtoWebhookProvider().diff("h", olds, hook_inputs(url="http://lobe.localhost:3211/api/webhooks/logto"))
    assert (result.changes, result.replaces) == (True, [])


def secret_inputs(**overrides: Any) -> dict[str, Any]:
    return {**CONNECTION, "application_id": "app1", "secret_name": "rotation-1", "expires_at": None, **overrides}


def test_secret_check_normalises_iso_expiry_to_milliseconds() -> None:
    result = LogtoApplicationSecretProvider().check({}, secret_inputs(expires_at="2100-01-01T00:00:00Z"))
    assert result.failures == []
    assert result.inputs["expires_at"] == 4102444800000


def test_secret_check_names_garbage_expiry() -> None:
    result = LogtoApplicationSecretProvider().check({}, secret_inputs(expires_at="next tuesday"))
    assert failed_properties(result) == {"expires_at"}


def test_secret_diff_expiry_change_replaces_deleting_first() -> None:
    olds = {**secret_inputs(), "value": "v"}
    result = LogtoApplicationSecretProvider().diff("app1/rotation-1", olds, secret_inputs(expires_at=4102444800000))
    assert result.replaces == ["expires_at"]
    assert result.delete_before_replace is True


def test_secret_diff_rename_replaces_creating_first() -> None:
    olds = {**secret_inputs(), "value": "v"}
    result = LogtoApplicationSecretProvider().diff("app1/rotation-1", olds, secret_inputs(secret_name="rotation-2"))
    assert result.replaces == ["secret_name"]
    assert result.delete_before_replace is False


def test_connection_args_repr_hides_the_secret() -> None:
    leaked = SECRET in repr(LogtoConnectionArgs("http://auth.localhost:3001", "m2m", SECRET))
    assert not leaked, "the M2M secret appears in LogtoConnectionArgs' repr (not shown)"


def test_connection_timeout_input_reaches_the_client() -> None:
    assert connection_from_props({**CONNECTION, "logto_timeout": 2.5}).timeout == 2.5
    assert connection_from_props(CONNECTION).timeout == 10.0
