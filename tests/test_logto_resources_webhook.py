"""LogtoWebhook's provider against the Logto stand-in, called the way the engine calls it."""

from __future__ import annotations

from typing import Any

import pytest

from components.logto_api import LogtoInputError
from components.logto_resources import MARKER_HEADER, LogtoWebhookProvider
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props

pytestmark = pytest.mark.usefixtures("no_backoff_sleep")

LOBE_HOOK_URL = "http://lobe.localhost:3210/api/webhooks/logto"


@pytest.fixture
def provider() -> LogtoWebhookProvider:
    return LogtoWebhookProvider()


def inputs(logto: LogtoStandIn, **overrides: Any) -> dict[str, Any]:
    return {
        **connection_props(logto),
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": "lobechat-user-sync",
        "name": "LobeChat user sync",
        "url": LOBE_HOOK_URL,
        "events": ["User.Data.Updated"],
        "headers": {"x-lobe-source": "logto"},
        "enabled": True,
        "adopt_id": None,
        **overrides,
    }


def engine_create(provider: LogtoWebhookProvider, props: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    checked = provider.check({}, props)
    assert checked.failures == []
    result = provider.create(checked.inputs)
    return result.id, result.outs


def same_secret(actual: object, expected: object, what: str) -> None:
    """Compare secret values without pytest printing them on failure."""
    matches = actual == expected
    assert matches, f"{what}: values differ (not shown)"


def test_create_outputs_hook_id_and_signing_key(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    assert outs["hook_id"] == hook_id
    same_secret(outs["signing_key"], logto.state.hooks[hook_id]["signingKey"], "signing_key")


def test_create_puts_marker_header_in_config_but_not_in_outputs(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    live_headers = logto.state.hooks[hook_id]["config"]["headers"]
    assert live_headers[MARKER_HEADER] == "lobechat-logto/lobechat-logto/dev/lobechat-user-sync"
    assert live_headers["x-lobe-source"] == "logto"
    assert outs["headers"] == {"x-lobe-source": "logto"}


def test_read_with_nothing_changed_gives_no_diff(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    read = provider.read(hook_id, outs)
    assert provider.diff(hook_id, read.outs, inputs(logto)).changes is False


def test_refresh_shows_url_edited_in_console_and_update_repairs_it(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    logto.state.hooks[hook_id]["config"]["url"] = "http://evil.example/hook"
    logto.state.hooks[hook_id]["enabled"] = False
    read = provider.read(hook_id, outs)
    assert (read.outs["url"], read.outs["enabled"]) == ("http://evil.example/hook", False)
    assert provider.diff(hook_id, read.outs, inputs(logto)).changes is True
    result = provider.update(hook_id, read.outs, inputs(logto))
    assert logto.state.hooks[hook_id]["config"]["url"] == LOBE_HOOK_URL
    assert logto.state.hooks[hook_id]["enabled"] is True
    same_secret(result.outs["signing_key"], outs["signing_key"], "signing_key after update")


def test_removed_marker_header_shows_as_drift(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    logto.state.hooks[hook_id]["config"]["headers"] = {"x-lobe-source": "logto"}
    read = provider.read(hook_id, outs)
    assert read.outs["stack"] == ""
    assert provider.diff(hook_id, read.outs, inputs(logto)).changes is True


def test_update_replaces_headers_and_events(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    news = inputs(logto, headers={}, events=["User.Data.Updated", "User.SuspensionStatus.Updated"])
    result = provider.update(hook_id, outs, news)
    live = logto.state.hooks[hook_id]
    assert set(live["config"]["headers"]) == {MARKER_HEADER}
    assert live["events"] == ["User.Data.Updated", "User.SuspensionStatus.Updated"]
    assert result.outs["headers"] == {}
    assert set(outs) <= set(result.outs)


def test_refresh_of_hook_deleted_in_console_reads_as_gone(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    del logto.state.hooks[hook_id]
    assert provider.read(hook_id, outs).id == ""


def test_delete_then_delete_again_is_fine(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    hook_id, outs = engine_create(provider, inputs(logto))
    provider.delete(hook_id, outs)
    assert hook_id not in logto.state.hooks
    provider.delete(hook_id, outs)


def test_adopt_id_takes_over_existing_hook(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    existing = logto.state.create_hook(
        {"name": "by hand", "events": ["User.Created"], "config": {"url": "http://127.0.0.1:9/x"}}
    )
    hook_id, outs = engine_create(provider, inputs(logto, adopt_id=existing["id"]))
    assert hook_id == existing["id"]
    assert list(logto.state.hooks) == [hook_id]
    assert logto.state.hooks[hook_id]["config"]["url"] == LOBE_HOOK_URL
    same_secret(outs["signing_key"], existing["signingKey"], "adopted signing_key")


def test_adopt_id_of_hook_owned_by_another_stack_is_refused(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    prod_id, _ = engine_create(provider, inputs(logto, stack="prod"))
    with pytest.raises(LogtoInputError) as info:
        provider.create(inputs(logto, adopt_id=prod_id))
    assert info.value.field == "adopt_id"
    assert logto.state.hooks[prod_id]["config"]["headers"][MARKER_HEADER].endswith("/prod/lobechat-user-sync")


def test_adopt_id_of_missing_hook_is_a_clear_error(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    with pytest.raises(LogtoInputError) as info:
        provider.create(inputs(logto, adopt_id="no-such-hook"))
    assert info.value.field == "adopt_id"


def test_lost_create_response_does_not_duplicate(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    logto.faults.add(method="POST", path_prefix="/api/hooks", kind="drop_after_commit", times=1)
    hook_id, outs = engine_create(provider, inputs(logto))
    assert list(logto.state.hooks) == [hook_id]
    same_secret(outs["signing_key"], logto.state.hooks[hook_id]["signingKey"], "signing_key")


def test_create_after_lost_state_reuses_marked_hook(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    first_id, _ = engine_create(provider, inputs(logto))
    second_id, _ = engine_create(provider, inputs(logto))
    assert first_id == second_id
    assert list(logto.state.hooks) == [first_id]


def test_hand_made_hook_with_same_name_and_url_is_not_taken_over(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    existing = logto.state.create_hook(
        {"name": "LobeChat user sync", "events": ["User.Data.Updated"], "config": {"url": LOBE_HOOK_URL}}
    )
    hook_id, _ = engine_create(provider, inputs(logto))
    assert hook_id != existing["id"]


def test_bad_input_is_rejected_before_any_request(logto: LogtoStandIn, provider: LogtoWebhookProvider) -> None:
    for bad in ({"events": []}, {"url": "not a url"}, {"logto_endpoint": "localhost:3001"}, {"events": ["User.Nope"]}):
        assert provider.check({}, inputs(logto, **bad)).failures
        with pytest.raises(LogtoInputError):
            provider.create(inputs(logto, **bad))
    assert logto.requests_log == []
