"""Management API client: connection settings, input checks and error texts (no server needed)."""

from __future__ import annotations

import time

import pytest

from components.logto_api import (
    LogtoAuthenticationError,
    LogtoConnection,
    LogtoInputError,
    LogtoPermissionError,
    ManagementApi,
    management_resource,
    validate_events,
    validate_uri,
)

SECRET = "s3cr3t-value-that-must-never-leak"
# Port 9 (discard) on loopback: nothing listens, and these tests must fail before connecting anyway.
UNUSED_ENDPOINT = "http://127.0.0.1:9"


def api() -> ManagementApi:
    return ManagementApi(LogtoConnection(UNUSED_ENDPOINT, "m2m-id", SECRET, max_attempts=1))


def test_connection_repr_hides_the_client_secret() -> None:
    connection = LogtoConnection("https://auth.example.com", "m2m-id", SECRET)
    leaked = SECRET in repr(connection) or SECRET in str(connection)
    assert not leaked, "the client secret appears in the connection's repr (not shown)"


def test_connection_strips_trailing_slash_from_endpoint() -> None:
    assert LogtoConnection("https://auth.example.com/", "id", SECRET).endpoint == "https://auth.example.com"


@pytest.mark.parametrize("endpoint", ["auth.example.com", "ftp://auth.example.com", "", "http://", "https://a b"])
def test_endpoint_that_is_not_a_url_is_rejected_naming_the_field(endpoint: str) -> None:
    with pytest.raises(LogtoInputError) as info:
        LogtoConnection(endpoint, "id", SECRET)
    assert info.value.field == "endpoint"


@pytest.mark.parametrize("suffix", ["/oidc", "/api", "/oidc/"])
def test_endpoint_with_oidc_or_api_suffix_is_rejected_with_hint(suffix: str) -> None:
    with pytest.raises(LogtoInputError) as info:
        LogtoConnection("https://auth.example.com" + suffix, "id", SECRET)
    assert "adds /oidc and /api" in str(info.value)


def test_empty_client_secret_is_rejected() -> None:
    with pytest.raises(LogtoInputError) as info:
        LogtoConnection("https://auth.example.com", "id", "")
    assert info.value.field == "client_secret"


def test_management_resource_for_self_hosted_logto() -> None:
    assert management_resource(None) == "https://default.logto.app/api"
    assert management_resource("default") == "https://default.logto.app/api"


def test_management_resource_for_logto_cloud_tenant() -> None:
    assert management_resource("abc123") == "https://abc123.logto.app/api"


def test_management_resource_rejects_garbage_tenant() -> None:
    with pytest.raises(LogtoInputError):
        management_resource("evil.example.com/x")


@pytest.mark.parametrize("uri", ["not a url", "/relative/cb", "lobe.localhost:3210/cb", "http:///cb", "http://a/cb#frag"])
def test_malformed_redirect_uri_is_rejected(uri: str) -> None:
    with pytest.raises(LogtoInputError):
        validate_uri("redirect_uris[0]", uri)


def test_valid_redirect_uri_is_accepted() -> None:
    assert validate_uri("x", "http://lobe.localhost:3210/api/auth/callback/logto").startswith("http://")


def test_native_custom_scheme_only_when_allowed() -> None:
    assert validate_uri("x", "io.lobe://callback", allow_custom_scheme=True) == "io.lobe://callback"
    with pytest.raises(LogtoInputError):
        validate_uri("x", "io.lobe://callback")


def test_create_application_with_malformed_redirect_uri_fails_naming_field() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().applications.create(
            name="LobeChat", redirect_uris=["not a url"], post_sign_out_redirect_uris=[], cors_allowed_origins=[]
        )
    assert info.value.field == "redirect_uris[0]"


def test_create_application_with_unknown_type_fails_naming_field() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().applications.create(name="LobeChat", app_type="NextJS")
    assert info.value.field == "app_type"
    assert "Traditional" in str(info.value)


def test_redirect_uris_as_a_single_string_is_rejected() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().applications.create(name="x", redirect_uris="http://a/cb")  # type: ignore[arg-type]
    assert info.value.field == "redirect_uris"


def test_update_with_half_of_oidc_metadata_is_rejected() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().applications.update("app", oidc_client_metadata={"redirectUris": ["http://a/cb"]})
    assert "postLogoutRedirectUris" in info.value.field


def test_empty_event_list_is_rejected() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().hooks.create(name="sync", url="http://lobe.localhost:3210/api/webhooks/logto", events=[])
    assert info.value.field == "events"


def test_unknown_event_is_rejected() -> None:
    with pytest.raises(LogtoInputError):
        validate_events(["User.Nope"])


def test_hook_headers_without_url_is_rejected() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().hooks.update("hook", headers={"x": "y"})
    assert info.value.field == "headers"


def test_secret_expiry_in_the_past_is_rejected() -> None:
    with pytest.raises(LogtoInputError) as info:
        api().applications.create_secret("app", "rotation", expires_at=int(time.time() * 1000) - 1000)
    assert info.value.field == "expires_at"


def test_error_text_carries_method_path_status_code_and_hint() -> None:
    error = LogtoPermissionError(
        "Logto denied the Management API call.",
        method="GET",
        path="/api/applications",
        url="http://127.0.0.1:3001/api/applications",
        status=403,
        code="auth.forbidden",
        logto_message="Forbidden. Please check your user roles and permissions.",
    )
    text = str(error)
    for part in ("GET", "/api/applications", "403", "auth.forbidden", "Logto Management API access"):
        assert part in text


def test_authentication_error_default_hint_names_client_id_or_secret() -> None:
    assert "M2M client id or secret is wrong" in str(LogtoAuthenticationError("refused", status=401))


def test_repr_of_error_is_its_text() -> None:
    error = LogtoInputError("name", "must be a non-empty string")
    assert repr(error) == f"LogtoInputError({str(error)!r})"
