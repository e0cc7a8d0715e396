"""The marker lookups share one listing per provider process, and still never make a duplicate.

Providers are called as the engine calls them (check, then create) against the stand-in; a "new
provider process" is an empty token cache and an empty listing cache.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from components.logto_api import clear_token_cache
from components.logto_resources import LogtoApplicationProvider, LogtoWebhookProvider, clear_listing_cache
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props

pytestmark = pytest.mark.usefixtures("no_backoff_sleep")


def app_inputs(logto: LogtoStandIn, index: int, **overrides: Any) -> dict[str, Any]:
    base = f"http://lobe{index}.localhost:3210"
    return {
        **connection_props(logto),
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": f"app-{index}",
        "name": f"LobeChat {index}",
        "description": None,
        "app_type": "Traditional",
        "redirect_uris": [f"{base}/api/auth/callback/logto"],
        "post_sign_out_redirect_uris": [f"{base}/"],
        "cors_allowed_origins": [base],
        "adopt_id": None,
        **overrides,
    }


def hook_inputs(logto: LogtoStandIn, index: int, **overrides: Any) -> dict[str, Any]:
    return {
        **connection_props(logto),
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": f"hook-{index}",
        "name": f"LobeChat user sync {index}",
        "url": f"http://lobe{index}.localhost:3210/api/webhooks/logto",
        "events": ["User.Data.Updated"],
        "headers": {},
        "enabled": True,
        "adopt_id": None,
        **overrides,
    }


def create(provider: Any, props: dict[str, Any]) -> str:
    checked = provider.check({}, props)
    assert checked.failures == []
    return provider.create(checked.inputs).id


def new_provider_process() -> None:
    clear_token_cache()
    clear_listing_cache()


def calls(logto: LogtoStandIn, method: str, path: str, since: int = 0) -> int:
    return sum(1 for e in logto.requests_log[since:] if e[0] == method and e[1].split("?")[0] == path)


def owned_traditional_apps(logto: LogtoStandIn) -> list[str]:
    return sorted(a["name"] for a in logto.state.applications.values() if a["type"] == "Traditional")


def test_a_fresh_stage_lists_applications_and_hooks_once_for_all_creates(logto):
    apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
    for index in range(5):
        create(apps, app_inputs(logto, index))
        create(hooks, hook_inputs(logto, index))
    app_lists = calls(logto, "GET", "/api/applications")
    hook_lists = calls(logto, "GET", "/api/hooks")
    assert (app_lists, hook_lists) == (1, 1)
    assert len(owned_traditional_apps(logto)) == 5 and len(logto.state.hooks) == 5


def test_concurrent_creates_share_one_listing_and_make_no_duplicate(logto):
    apps = LogtoApplicationProvider()
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: create(apps, app_inputs(logto, i)), range(8)))
    app_lists = calls(logto, "GET", "/api/applications")
    assert app_lists == 1
    assert len(set(ids)) == 8 and len(owned_traditional_apps(logto)) == 8


def test_the_same_resource_created_twice_in_one_process_takes_over_its_own_object(logto):
    apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
    first_app, first_hook = create(apps, app_inputs(logto, 1)), create(hooks, hook_inputs(logto, 1))
    second_app, second_hook = create(apps, app_inputs(logto, 1)), create(hooks, hook_inputs(logto, 1))
    assert (second_app, second_hook) == (first_app, first_hook)
    assert len(owned_traditional_apps(logto)) == 1 and len(logto.state.hooks) == 1


@pytest.mark.parametrize("path", ["/api/applications", "/api/hooks"])
def test_a_lost_create_response_is_resolved_against_a_fresh_listing(logto, path):
    # The listing is cached by the first create; the lost one must not be resolved from that copy
    # (it would not be there, and a dropped connection is retried: a second object).
    apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
    create(apps, app_inputs(logto, 0))
    create(hooks, hook_inputs(logto, 0))
    logto.faults.add(method="POST", path_prefix=path, kind="drop_after_commit", times=1)
    mark = len(logto.requests_log)
    create(apps, app_inputs(logto, 1))
    create(hooks, hook_inputs(logto, 1))
    relisted = calls(logto, "GET", path, since=mark)
    assert relisted == 1
    assert len(owned_traditional_apps(logto)) == 2 and len(logto.state.hooks) == 2


def test_a_rerun_after_a_lost_state_takes_everything_over_without_writing(logto):
    apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
    first = [create(apps, app_inputs(logto, i)) for i in range(3)] + [create(hooks, hook_inputs(logto, i)) for i in range(3)]
    new_provider_process()
    mark = len(logto.requests_log)
    second = [create(apps, app_inputs(logto, i)) for i in range(3)] + [create(hooks, hook_inputs(logto, i)) for i in range(3)]
    rerun = [(e[0], e[1].split("?")[0]) for e in logto.requests_log[mark:]]
    assert second == first
    assert sorted(set(rerun)) == sorted(
        {("POST", "/oidc/token"), ("GET", "/api/applications"), ("GET", "/api/hooks")}
        | {("GET", f"/api/applications/{app_id}/secrets") for app_id in first[:3]}
    )
    assert len(rerun) == 1 + 1 + 1 + 3


def test_taking_over_an_object_that_drifted_sends_one_patch_and_no_get(logto):
    apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
    app_id, hook_id = create(apps, app_inputs(logto, 0)), create(hooks, hook_inputs(logto, 0))
    new_provider_process()
    mark = len(logto.requests_log)
    moved = "http://moved.localhost:3210"
    create(apps, app_inputs(logto, 0, cors_allowed_origins=[moved]))
    create(hooks, hook_inputs(logto, 0, url=f"{moved}/api/webhooks/logto"))
    patches = calls(logto, "PATCH", f"/api/applications/{app_id}", mark) + calls(logto, "PATCH", f"/api/hooks/{hook_id}", mark)
    gets = calls(logto, "GET", f"/api/applications/{app_id}", mark) + calls(logto, "GET", f"/api/hooks/{hook_id}", mark)
    assert (patches, gets) == (2, 0)
    cors = logto.state.applications[app_id]["customClientMetadata"]["corsAllowedOrigins"]
    url = logto.state.hooks[hook_id]["config"]["url"]
    assert cors == [moved] and url == f"{moved}/api/webhooks/logto"


def test_an_object_deleted_after_the_listing_is_created_again(logto):
    apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
    app_id, hook_id = create(apps, app_inputs(logto, 0)), create(hooks, hook_inputs(logto, 0))
    # Deleted in the console while the process still holds the listing that has them.
    with logto.state.lock:
        del logto.state.applications[app_id]
        del logto.state.hooks[hook_id]
    new_app, new_hook = create(apps, app_inputs(logto, 0, name="LobeChat renamed")), create(
        hooks, hook_inputs(logto, 0, name="renamed hook")
    )
    assert new_app != app_id and new_hook != hook_id
    assert len(owned_traditional_apps(logto)) == 1 and len(logto.state.hooks) == 1


def test_a_delete_through_the_provider_drops_the_listing(logto):
    apps = LogtoApplicationProvider()
    app_id = create(apps, app_inputs(logto, 0))
    apps.delete(app_id, app_inputs(logto, 0))
    again = create(apps, app_inputs(logto, 0))
    assert again != app_id
    assert len(owned_traditional_apps(logto)) == 1


def test_listings_are_per_credential(logto):
    # A second M2M application of the same Logto: its own listing (the key holds the secret digest).
    other_id, other_secret = logto.state.insert_legacy_app(name="Other M2M", with_role=True)
    apps = LogtoApplicationProvider()
    create(apps, app_inputs(logto, 0))
    create(apps, app_inputs(logto, 1, logto_client_id=other_id, logto_client_secret=other_secret))
    app_lists = calls(logto, "GET", "/api/applications")
    assert app_lists == 2
