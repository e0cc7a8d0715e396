"""``LobeChatSecretLease`` and the key generation of ``LogtoWebhook``, called as the engine calls them."""

from __future__ import annotations

from components.logto_resources import LobeChatSecretLeaseProvider, LogtoApplicationSecretProvider, LogtoWebhookProvider
from components.logto_resources.secret_lease import HELD_KEY, hook_generation, is_managed_secret
from components.logto_resources.webhook import _marker_props, marker_header_value
from tests.provider_inputs import connection_props

MARKER = "lobechat-logto/proj/dev/lobechat-webhook"


def test_managed_secret_names():
    assert is_managed_secret("Default secret") and is_managed_secret("lobechat-12")
    assert not is_managed_secret("lobechat-x") and not is_managed_secret("ci-secret") and not is_managed_secret(None)


def test_hook_generation_reads_the_marker():
    assert hook_generation({"x-managed-by": MARKER}, MARKER) == 0
    assert hook_generation({"X-Managed-By": MARKER + "@k7"}, MARKER) == 7
    assert hook_generation({"x-managed-by": MARKER + "-other"}, MARKER) is None
    assert hook_generation({}, MARKER) is None


def test_the_marker_carries_the_key_generation_and_reads_back():
    props = {"project": "proj", "stack": "dev", "resource_name": "lobechat-webhook", "key_generation": 3}
    value = marker_header_value(props)
    assert value == MARKER + "@k3"
    assert _marker_props({"x-managed-by": value}) == {**props}
    assert marker_header_value({**props, "key_generation": 0}) == MARKER


def test_a_new_key_generation_replaces_the_hook_create_before_delete():
    olds = {"key_generation": 0, "name": "n", "url": "http://a", "events": ["User.Data.Updated"]}
    diff = LogtoWebhookProvider().diff("h", olds, {**olds, "key_generation": 1})
    assert diff.replaces == ["key_generation"] and not diff.delete_before_replace


def _app(logto):
    app = logto.state.create_application({"name": "LobeChat", "type": "Traditional"})
    return app["id"]


def lease_props(logto, app_id, name, container, generation=None, marker=None):
    return {**connection_props(logto), "application_id": app_id, "client_secret_name": name,
            "key_generation": generation, "hook_marker": marker, "container_id": container}


def test_the_lease_sweeps_only_unheld_managed_secrets(logto):
    app_id = _app(logto)
    for name in ("lobechat-1", "lobechat-2", "ci-secret"):
        logto.state.create_secret(app_id, {"name": name})
    provider = LobeChatSecretLeaseProvider()
    created = provider.create(lease_props(logto, app_id, "lobechat-2", "c1")).outs
    names = sorted(s["name"] for s in logto.state.secrets[app_id])
    assert names == ["ci-secret", "lobechat-2"]  # Default secret and lobechat-1 swept, the hand-made one kept
    assert logto.state.applications[app_id]["customData"][HELD_KEY] == {"clientSecret": "lobechat-2", "keyGeneration": None}
    assert created["kept_secrets"] == []


def test_a_replaced_container_keeps_the_previous_secret_until_the_next_run(logto):
    app_id = _app(logto)
    provider = LobeChatSecretLeaseProvider()
    first = provider.create(lease_props(logto, app_id, "Default secret", "c1")).outs
    logto.state.create_secret(app_id, {"name": "lobechat-1"})  # the rotation's new secret
    second_inputs = lease_props(logto, app_id, "lobechat-1", "c2")
    second = provider.update("l", first, second_inputs).outs
    assert sorted(s["name"] for s in logto.state.secrets[app_id]) == ["Default secret", "lobechat-1"]
    assert second["kept_secrets"] == ["Default secret"]
    assert provider.diff("l", second, second_inputs).changes  # a sweep is pending
    third = provider.update("l", second, second_inputs).outs
    assert [s["name"] for s in logto.state.secrets[app_id]] == ["lobechat-1"] and third["kept_secrets"] == []
    assert not provider.diff("l", third, second_inputs).changes


def test_a_held_secret_survives_its_delete_and_a_released_one_does_not(logto):
    app_id = _app(logto)
    provider = LobeChatSecretLeaseProvider()
    lease = provider.create(lease_props(logto, app_id, "Default secret", "c1")).outs
    secret_props = {**connection_props(logto), "application_id": app_id, "secret_name": "Default secret"}
    LogtoApplicationSecretProvider().delete(f"{app_id}/Default secret", secret_props)
    assert [s["name"] for s in logto.state.secrets[app_id]] == ["Default secret"]
    provider.delete("l", lease)
    assert HELD_KEY not in logto.state.applications[app_id]["customData"]
    LogtoApplicationSecretProvider().delete(f"{app_id}/Default secret", secret_props)
    assert logto.state.secrets[app_id] == []


def test_the_lease_sweeps_hooks_of_other_key_generations(logto):
    app_id = _app(logto)
    hooks = {}
    for generation, suffix in ((0, ""), (1, "@k1"), (2, "@k2")):
        hooks[generation] = logto.state.create_hook({
            "name": "h", "events": ["User.Data.Updated"],
            "config": {"url": "http://lobechat-hook:3210/api/webhooks/logto", "headers": {"x-managed-by": MARKER + suffix}},
        })["id"]
    foreign = logto.state.create_hook({"name": "other", "events": ["User.Data.Updated"],
                                       "config": {"url": "http://elsewhere:1/hook"}})["id"]
    provider = LobeChatSecretLeaseProvider()
    provider.create(lease_props(logto, app_id, "Default secret", "c1", generation=2, marker=MARKER))
    assert sorted(logto.state.hooks) == sorted([hooks[2], foreign])
