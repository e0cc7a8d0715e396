"""LogtoApplication's provider against the Logto stand-in, called the way the engine calls it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from components.logto_api import LogtoAuthenticationError, LogtoConnectionError, LogtoInputError, LogtoTimeoutError
from components.logto_resources import LogtoApplicationProvider
from components.logto_resources.connection import api_from_props, marker
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props

pytestmark = pytest.mark.usefixtures("no_backoff_sleep")

CALLBACK = "http://lobe.localhost:3210/api/auth/callback/logto"


@pytest.fixture
def provider() -> LogtoApplicationProvider:
    return LogtoApplicationProvider()


def inputs(logto: LogtoStandIn, **overrides: Any) -> dict[str, Any]:
    return {
        **connection_props(logto),
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": "lobechat-app",
        "name": "LobeChat",
        "description": "LobeChat on this stack",
        "app_type": "Traditional",
        "redirect_uris": [CALLBACK],
        "post_sign_out_redirect_uris": ["http://lobe.localhost:3210/"],
        "cors_allowed_origins": ["http://lobe.localhost:3210"],
        "adopt_id": None,
        **overrides,
    }


def engine_create(provider: LogtoApplicationProvider, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    checked = provider.check({}, props)
    assert checked.failures == []
    result = provider.create(checked.inputs)
    return result.id, result.outs


def writes(logto: LogtoStandIn) -> list[tuple[str, str, Any]]:
    return [e for e in logto.requests_log if e[0] in {"POST", "PATCH", "PUT", "DELETE"} and not e[1].startswith("/oidc")]


def wait_until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    """Poll the stand-in's state (its request threads finish on their own schedule)."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the stand-in never reached the expected state"
        time.sleep(0.05)


def apps_named(logto: LogtoStandIn, name: str) -> list[dict[str, Any]]:
    return [app for app in logto.state.applications.values() if app["name"] == name]


def same_secret(actual: object, expected: object, what: str) -> None:
    """Compare secret values without pytest printing them on failure."""
    matches = actual == expected
    assert matches, f"{what}: values differ (not shown)"


def test_create_sends_complete_metadata_and_marker(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, _ = engine_create(provider, inputs(logto))
    app = logto.state.applications[app_id]
    assert app["type"] == "Traditional"
    assert app["oidcClientMetadata"]["redirectUris"] == [CALLBACK]
    assert app["oidcClientMetadata"]["postLogoutRedirectUris"] == ["http://lobe.localhost:3210/"]
    assert app["customClientMetadata"]["corsAllowedOrigins"] == ["http://lobe.localhost:3210"]
    assert app["customData"] == {
        "managedBy": "lobechat-logto", "project": "lobechat-logto", "stack": "dev", "resource": "lobechat-app"
    }


def test_create_outputs_default_secret_not_internal_value(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    default = next(s for s in logto.state.secrets[app_id] if s["name"] == "Default secret")
    same_secret(outs["client_secret"], default["value"], "client_secret vs Default secret")
    internal = outs["client_secret"].startswith("#internal:")
    assert not internal, "client_secret is the internal secret column"
    assert outs["client_id"] == outs["app_id"] == app_id


def test_read_with_nothing_changed_gives_no_diff(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    read = provider.read(app_id, outs)
    assert read.id == app_id
    assert provider.diff(app_id, read.outs, inputs(logto)).changes is False


def test_refresh_shows_redirect_uri_edited_in_console(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    logto.state.applications[app_id]["oidcClientMetadata"]["redirectUris"] = ["http://evil.example/cb"]
    read = provider.read(app_id, outs)
    assert read.outs["redirect_uris"] == ["http://evil.example/cb"]
    assert read.inputs["redirect_uris"] == ["http://evil.example/cb"]
    diff = provider.diff(app_id, read.outs, inputs(logto))
    assert (diff.changes, diff.replaces) == (True, [])


def test_update_repairs_drift_and_keeps_console_only_fields(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    live = logto.state.applications[app_id]
    live["oidcClientMetadata"]["redirectUris"] = ["http://evil.example/cb"]
    live["oidcClientMetadata"]["logoUri"] = "http://lobe.localhost:3210/logo.png"
    live["customData"] = {"note": "set in console"}
    read = provider.read(app_id, outs)
    result = provider.update(app_id, read.outs, inputs(logto))
    assert logto.state.applications[app_id]["oidcClientMetadata"]["redirectUris"] == [CALLBACK]
    assert logto.state.applications[app_id]["oidcClientMetadata"]["logoUri"].endswith("/logo.png")
    assert logto.state.applications[app_id]["customData"]["note"] == "set in console"
    assert logto.state.applications[app_id]["customData"]["managedBy"] == "lobechat-logto"
    assert result.outs["redirect_uris"] == [CALLBACK]


def test_update_returns_all_outputs(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    news = inputs(logto, cors_allowed_origins=["http://lobe.localhost:3210", "http://127.0.0.1:3210"])
    result = provider.update(app_id, outs, news)
    assert set(outs) <= set(result.outs)
    same_secret(result.outs["client_secret"], outs["client_secret"], "client_secret after update")
    assert result.outs["cors_allowed_origins"] == ["http://lobe.localhost:3210", "http://127.0.0.1:3210"]


def test_update_of_m2m_credentials_only_writes_nothing(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    client_id, client_secret = logto.add_m2m_app(with_role=True)
    news = inputs(logto, logto_client_id=client_id, logto_client_secret=client_secret)
    assert provider.diff(app_id, outs, news).changes is True
    before = len(writes(logto))
    result = provider.update(app_id, outs, news)
    assert len(writes(logto)) == before
    assert result.outs["logto_client_id"] == client_id


def test_refresh_of_app_deleted_in_console_reads_as_gone(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    del logto.state.applications[app_id]
    assert provider.read(app_id, outs).id == ""


def test_delete_then_delete_again_is_fine(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    provider.delete(app_id, outs)
    assert app_id not in logto.state.applications
    provider.delete(app_id, outs)


def test_deleted_default_secret_is_recreated_by_update(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto))
    logto.state.secrets[app_id] = [s for s in logto.state.secrets[app_id] if s["name"] != "Default secret"]
    read = provider.read(app_id, outs)
    same_secret(read.outs["client_secret"], "", "client_secret of app without Default secret")
    assert provider.diff(app_id, read.outs, inputs(logto)).changes is True
    result = provider.update(app_id, read.outs, inputs(logto))
    default = next(s for s in logto.state.secrets[app_id] if s["name"] == "Default secret")
    same_secret(result.outs["client_secret"], default["value"], "client_secret vs new Default secret")


def test_adopt_id_takes_over_existing_application(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    existing = logto.state.create_application({"name": "made by hand", "type": "Traditional"})
    app_id, outs = engine_create(provider, inputs(logto, adopt_id=existing["id"]))
    assert app_id == existing["id"]
    assert logto.state.applications[app_id]["name"] == "LobeChat"
    assert logto.state.applications[app_id]["customData"]["managedBy"] == "lobechat-logto"
    assert len([a for a in logto.state.applications.values() if a["type"] == "Traditional"]) == 1


def test_adopt_id_of_missing_application_is_a_clear_error(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    with pytest.raises(LogtoInputError) as info:
        provider.create(inputs(logto, adopt_id="no-such-app"))
    assert info.value.field == "adopt_id"


def test_adopt_id_of_other_type_is_refused(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    existing = logto.state.create_application({"name": "spa", "type": "SPA"})
    with pytest.raises(LogtoInputError) as info:
        provider.create(inputs(logto, adopt_id=existing["id"]))
    assert info.value.field == "app_type"


def test_adopt_id_of_app_owned_by_another_stack_is_refused(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    prod_id, _ = engine_create(provider, inputs(logto, stack="prod"))
    with pytest.raises(LogtoInputError) as info:
        provider.create(inputs(logto, adopt_id=prod_id))
    assert "lobechat-logto/prod" in str(info.value)
    assert logto.state.applications[prod_id]["customData"]["stack"] == "prod"


def test_public_client_has_no_secret_and_none_is_created(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    app_id, outs = engine_create(provider, inputs(logto, app_type="SPA", resource_name="spa"))
    assert outs["client_secret"] == ""
    assert logto.state.secrets[app_id] == []
    assert provider.diff(app_id, provider.read(app_id, outs).outs, inputs(logto, app_type="SPA", resource_name="spa")).changes is False


def test_create_after_lost_state_reuses_marked_application(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    first_id, _ = engine_create(provider, inputs(logto))
    second_id, _ = engine_create(provider, inputs(logto))
    assert second_id == first_id
    assert len(apps_named(logto, "LobeChat")) == 1


def test_other_stack_marker_is_not_taken_over(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    dev_id, _ = engine_create(provider, inputs(logto))
    prod_id, _ = engine_create(provider, inputs(logto, stack="prod"))
    assert dev_id != prod_id


def test_lost_create_response_does_not_duplicate(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="drop_after_commit", times=1)
    app_id, outs = engine_create(provider, inputs(logto))
    assert [a["id"] for a in apps_named(logto, "LobeChat")] == [app_id]
    has_secret = bool(outs["client_secret"])
    assert has_secret, "no client_secret output"


def test_create_whose_request_was_dropped_creates_exactly_one(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="drop", times=1)
    app_id, _ = engine_create(provider, inputs(logto))
    assert [a["id"] for a in apps_named(logto, "LobeChat")] == [app_id]


def test_rerun_after_a_crashed_create_does_not_duplicate(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    # The first `pulumi up` sent its POST and lost the response, then died before looking for the
    # application (the provider process was killed). The re-run must find it by its marker.
    props = inputs(logto)
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="drop_after_commit", times=1)
    with pytest.raises(LogtoConnectionError):
        api_from_props(props).applications.create(
            name=props["name"], redirect_uris=props["redirect_uris"], custom_data=marker(props)
        )
    app_id, outs = engine_create(provider, props)
    assert [a["id"] for a in apps_named(logto, "LobeChat")] == [app_id]
    # The re-run also brought the half-configured application to the desired state.
    assert outs["post_sign_out_redirect_uris"] == ["http://lobe.localhost:3210/"]


def test_create_timing_out_is_not_repeated_and_the_rerun_adopts_it(
    logto: LogtoStandIn, provider: LogtoApplicationProvider
) -> None:
    # Logto answers after the client gave up: the POST may still commit, so a second POST could
    # make a duplicate. The provider must fail with a re-run hint instead; the re-run adopts it.
    props = inputs(logto, logto_timeout=0.3)
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="delay", seconds=1.0, times=1)
    with pytest.raises(LogtoTimeoutError) as info:
        provider.create(props)
    assert "Run `pulumi up` again" in str(info.value)
    wait_until(lambda: len(apps_named(logto, "LobeChat")) == 1)
    app_id, _ = engine_create(provider, props)
    assert [a["id"] for a in apps_named(logto, "LobeChat")] == [app_id]


def test_bad_input_is_rejected_before_any_request(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    for bad in ({"redirect_uris": ["not a url"]}, {"app_type": "NextJS"}, {"logto_endpoint": "auth.localhost"}):
        assert provider.check({}, inputs(logto, **bad)).failures
        with pytest.raises(LogtoInputError):
            provider.create(inputs(logto, **bad))
    assert logto.requests_log == []


def test_wrong_m2m_secret_fails_create_without_leaking_it(logto: LogtoStandIn, provider: LogtoApplicationProvider) -> None:
    wrong = "wrong-m2m-secret-0001"
    with pytest.raises(LogtoAuthenticationError) as info:
        provider.create(inputs(logto, logto_client_secret=wrong))
    assert wrong not in str(info.value) and wrong not in repr(info.value)
