"""Hooks and signed webhook deliveries of the Logto stand-in (as recorded in 04 and 06)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.logto_standin import SIGNATURE_HEADER, WebhookReceiver, sign
from tests.logto_standin.client import StandInClient


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def _hook(standin_client: StandInClient, url: str, **fields: Any) -> dict[str, Any]:
    body = {"name": "lobe user sync", "events": ["User.Data.Updated"], "config": {"url": url}, **fields}
    answer = standin_client.post("/api/hooks", json=body)
    assert answer.status_code == 201
    return answer.json()


def _rename_a_user(standin_client: StandInClient) -> str:
    user = standin_client.post("/api/users", json={"username": "lobe_user", "password": "pw"}).json()
    assert standin_client.patch(f"/api/users/{user['id']}", json={"name": "Renamed"}).status_code == 200
    return user["id"]


def _verifies(key: str, raw_body: bytes, signature: str | None) -> bool:
    return signature is not None and hmac.compare_digest(signature, sign(key, raw_body))


def test_user_patch_delivers_a_signed_user_data_updated(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    _rename_a_user(standin_client)
    [delivery] = receiver.deliveries
    assert _verifies(hook["signingKey"], delivery.raw_body, delivery.header(SIGNATURE_HEADER))


def test_delivery_body_names_event_hook_and_user(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    user_id = _rename_a_user(standin_client)
    body = json.loads(receiver.deliveries[0].raw_body)
    assert (body["event"], body["hookId"], body["data"]["id"], body["data"]["name"]) == (
        "User.Data.Updated", hook["id"], user_id, "Renamed")


def test_signature_is_over_the_raw_body(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    _rename_a_user(standin_client)
    delivery = receiver.deliveries[0]
    assert not _verifies(hook["signingKey"], delivery.raw_body + b" ", delivery.header(SIGNATURE_HEADER))


def test_delivery_carries_the_configured_headers(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    _hook(standin_client, receiver.url(), config={"url": receiver.url(), "headers": {"x-lobe-test": "yes"}})
    _rename_a_user(standin_client)
    assert receiver.deliveries[0].header("x-lobe-test") == "yes"


def test_disabled_or_unsubscribed_hooks_get_nothing(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    _hook(standin_client, receiver.url("/disabled"), enabled=False)
    _hook(standin_client, receiver.url("/other-event"), events=["User.Created"])
    _rename_a_user(standin_client)
    assert receiver.deliveries == []


def test_rotated_signing_key_signs_and_the_old_one_no_longer_verifies(
        standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    rotated = standin_client.patch(f"/api/hooks/{hook['id']}/signing-key").json()
    _rename_a_user(standin_client)
    delivery = receiver.deliveries[0]
    signature = delivery.header(SIGNATURE_HEADER)
    assert rotated["signingKey"] != hook["signingKey"]
    assert _verifies(rotated["signingKey"], delivery.raw_body, signature)
    assert not _verifies(hook["signingKey"], delivery.raw_body, signature)


def test_hook_test_sends_a_signed_sample_and_answers_204(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    answer = standin_client.post(f"/api/hooks/{hook['id']}/test",
                         json={"events": ["User.Data.Updated"], "config": {"url": receiver.url("/test")}})
    [delivery] = receiver.deliveries
    assert answer.status_code == 204 and delivery.path == "/test"
    assert _verifies(hook["signingKey"], delivery.raw_body, delivery.header(SIGNATURE_HEADER))


def test_hook_test_to_an_unreachable_url_is_422(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    answer = standin_client.post(f"/api/hooks/{hook['id']}/test",
                         json={"events": ["User.Data.Updated"], "config": {"url": "http://127.0.0.1:9/closed"}})
    assert (answer.status_code, answer.json()["code"]) == (422, "hook.send_test_payload_failed")


def test_hook_test_to_a_failing_endpoint_is_422(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    receiver.status = 500
    answer = standin_client.post(f"/api/hooks/{hook['id']}/test",
                         json={"events": ["User.Data.Updated"], "config": {"url": receiver.url()}})
    assert answer.status_code == 422


def test_recent_logs_and_stats_count_real_deliveries_not_tests(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    standin_client.post(f"/api/hooks/{hook['id']}/test", json={"events": ["User.Data.Updated"], "config": {"url": receiver.url()}})
    _rename_a_user(standin_client)
    logs = standin_client.get(f"/api/hooks/{hook['id']}/recent-logs")
    stats = standin_client.get(f"/api/hooks/{hook['id']}?includeExecutionStats=true").json()["executionStats"]
    assert (len(logs.json()), logs.headers["Total-Number"]) == (1, "1")
    assert stats == {"successCount": 1, "requestCount": 1}


def test_failed_delivery_is_logged_as_error(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    receiver.status = 400
    _rename_a_user(standin_client)
    stats = standin_client.get(f"/api/hooks/{hook['id']}?includeExecutionStats=true").json()["executionStats"]
    assert stats == {"successCount": 0, "requestCount": 1}


def test_hook_patch_replaces_config_wholesale(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url(), config={"url": receiver.url(), "headers": {"x-a": "1"}})
    patched = standin_client.patch(f"/api/hooks/{hook['id']}", json={"config": {"url": receiver.url("/new")}}).json()
    assert patched["config"] == {"url": receiver.url("/new")}


def test_hook_without_events_is_refused(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    answer = standin_client.post("/api/hooks", json={"name": "x", "config": {"url": receiver.url()}})
    assert (answer.status_code, answer.json()["code"]) == (400, "hook.missing_events")


@pytest.mark.sends_invalid_requests
def test_hook_with_unknown_event_is_a_guard_error(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    answer = standin_client.post("/api/hooks", json={"name": "x", "events": ["User.Nope"], "config": {"url": receiver.url()}})
    issue = answer.json()["data"]["issues"][0]
    assert (answer.status_code, issue["code"], issue["path"]) == (400, "invalid_enum_value", ["events", 0])


def test_patch_with_empty_events_is_too_small(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    answer = standin_client.patch(f"/api/hooks/{hook['id']}", json={"events": []})
    assert (answer.status_code, answer.json()["data"]["issues"][0]["code"]) == (400, "too_small")


def test_deleted_hook_is_404_on_get_and_delete(standin_client: StandInClient, receiver: WebhookReceiver) -> None:
    hook = _hook(standin_client, receiver.url())
    assert standin_client.delete(f"/api/hooks/{hook['id']}").status_code == 204
    assert standin_client.get(f"/api/hooks/{hook['id']}").json()["code"] == "entity.not_exists_with_id"
    assert standin_client.delete(f"/api/hooks/{hook['id']}").json()["code"] == "entity.not_found"
