"""Applications and application secrets of the Logto stand-in (as recorded in 02, 03, 05, 08)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.logto_standin import LogtoStandIn
from tests.logto_standin.client import StandInClient

NEXTJS_APP = {
    "name": "LobeChat", "type": "Traditional",
    "oidcClientMetadata": {"redirectUris": ["http://lobe.localhost:3210/api/auth/callback/logto"],
                           "postLogoutRedirectUris": ["http://lobe.localhost:3210/"]},
    "customClientMetadata": {"corsAllowedOrigins": ["http://lobe.localhost:3210"]},
}


def _create(standin_client: StandInClient, **fields: Any) -> dict[str, Any]:
    answer = standin_client.post("/api/applications", json={**NEXTJS_APP, **fields})
    assert answer.status_code == 200
    return answer.json()


def test_create_answers_200_with_an_internal_secret_field(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    assert app["secret"].startswith("#internal:") and "isAdmin" not in app


def test_create_makes_a_default_secret(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    assert [entry["name"] for entry in standin_client.get(f"/api/applications/{app['id']}/secrets").json()] == [
        "Default secret"]


def test_public_clients_get_no_default_secret(standin_client: StandInClient) -> None:
    app = _create(standin_client, type="SPA")
    assert standin_client.get(f"/api/applications/{app['id']}/secrets").json() == []


def test_get_adds_is_admin(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    assert standin_client.get(f"/api/applications/{app['id']}").json()["isAdmin"] is False


def test_patch_replaces_oidc_metadata_wholesale(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    metadata = {"redirectUris": ["http://lobe.localhost:3211/cb"], "postLogoutRedirectUris": []}
    patched = standin_client.patch(f"/api/applications/{app['id']}", json={"oidcClientMetadata": metadata}).json()
    assert patched["oidcClientMetadata"] == metadata


@pytest.mark.sends_invalid_requests
def test_patch_with_partial_oidc_metadata_is_a_guard_error(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    answer = standin_client.patch(f"/api/applications/{app['id']}",
                          json={"oidcClientMetadata": {"redirectUris": ["http://a.example/cb"]}})
    issue = answer.json()["data"]["issues"][0]
    assert (answer.status_code, issue["path"]) == (400, ["oidcClientMetadata", "postLogoutRedirectUris"])


def test_patch_replaces_custom_client_metadata_wholesale(standin_client: StandInClient) -> None:
    app = _create(standin_client, customClientMetadata={"corsAllowedOrigins": ["http://a.example"], "idTokenTtl": 60})
    patched = standin_client.patch(f"/api/applications/{app['id']}",
                           json={"customClientMetadata": {"corsAllowedOrigins": []}}).json()
    assert patched["customClientMetadata"] == {"corsAllowedOrigins": []}


def test_patch_silently_keeps_type_and_third_party(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    answer = standin_client.patch(f"/api/applications/{app['id']}", json={"type": "SPA", "isThirdParty": True})
    assert answer.status_code == 200
    assert (answer.json()["type"], answer.json()["isThirdParty"]) == ("Traditional", False)


def test_invalid_redirect_uri_is_a_custom_issue(standin_client: StandInClient) -> None:
    answer = standin_client.post("/api/applications", json={
        **NEXTJS_APP, "oidcClientMetadata": {"redirectUris": ["not a url"], "postLogoutRedirectUris": []}})
    issue = answer.json()["data"]["issues"][0]
    assert (answer.status_code, issue["code"], issue["path"]) == (400, "custom", ["oidcClientMetadata", "redirectUris", 0])


@pytest.mark.sends_invalid_requests
def test_unknown_type_is_an_enum_issue(standin_client: StandInClient) -> None:
    answer = standin_client.post("/api/applications", json={"name": "x", "type": "NextJS"})
    assert (answer.status_code, answer.json()["data"]["issues"][0]["code"]) == (400, "invalid_enum_value")


@pytest.mark.sends_invalid_requests
def test_malformed_json_answers_only_a_message(standin_client: StandInClient) -> None:
    answer = standin_client.post("/api/applications", data=b'{"name": ', headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()) == (400, {"message": "Unexpected end of JSON input"})


def test_search_without_wildcards_matches_whole_names_only(standin_client: StandInClient) -> None:
    _create(standin_client, name="LobeChat (prod)")
    exact = standin_client.get("/api/applications", params={"search": "LobeChat"}).json()
    wildcard = standin_client.get("/api/applications", params={"search": "%lobechat%"}).json()
    assert (exact, [app["name"] for app in wildcard]) == ([], ["LobeChat (prod)"])


def test_list_filters_by_types_and_pages_with_total_number(standin_client: StandInClient) -> None:
    for index in range(3):
        _create(standin_client, name=f"web {index}")
    answer = standin_client.get("/api/applications", params={"types": "Traditional", "page": 1, "page_size": 2})
    assert (len(answer.json()), answer.headers["Total-Number"]) == (2, "3")


def test_list_without_paging_has_no_total_number(standin_client: StandInClient) -> None:
    assert "Total-Number" not in standin_client.get("/api/applications").headers


def test_list_is_newest_first(standin_client: StandInClient) -> None:
    first, second = _create(standin_client, name="first"), _create(standin_client, name="second")
    ids = [app["id"] for app in standin_client.get("/api/applications", params={"types": "Traditional"}).json()]
    assert ids == [second["id"], first["id"]]


def test_page_size_above_100_is_refused(standin_client: StandInClient) -> None:
    assert standin_client.get("/api/applications", params={"page_size": 101}).status_code == 400


def test_delete_then_get_and_delete_are_404(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    assert standin_client.delete(f"/api/applications/{app['id']}").status_code == 204
    assert standin_client.get(f"/api/applications/{app['id']}").json()["code"] == "entity.not_exists_with_id"
    assert standin_client.delete(f"/api/applications/{app['id']}").status_code == 404


def test_named_secret_create_is_201_and_duplicate_is_422(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    first = standin_client.post(f"/api/applications/{app['id']}/secrets", json={"name": "rotation"})
    again = standin_client.post(f"/api/applications/{app['id']}/secrets", json={"name": "rotation"})
    assert (first.status_code, again.status_code, again.json()["code"]) == (
        201, 422, "application.secret_name_exists")


def test_secret_expiring_in_the_past_is_refused(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    answer = standin_client.post(f"/api/applications/{app['id']}/secrets", json={"name": "old", "expiresAt": 1000})
    assert (answer.status_code, answer.json()["code"]) == (400, "request.invalid_input")


def test_secret_rename_keeps_the_value(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    created = standin_client.post(f"/api/applications/{app['id']}/secrets", json={"name": "a"}).json()
    renamed = standin_client.patch(f"/api/applications/{app['id']}/secrets/a", json={"name": "b"}).json()
    assert (renamed["name"], renamed["value"] == created["value"]) == ("b", True)


def test_deleting_a_missing_secret_is_404(standin_client: StandInClient) -> None:
    app = _create(standin_client)
    answer = standin_client.delete(f"/api/applications/{app['id']}/secrets/nope")
    assert (answer.status_code, answer.json()["code"]) == (404, "entity.not_found")


def test_secrets_of_a_missing_app_are_404(standin_client: StandInClient) -> None:
    assert standin_client.get("/api/applications/no-such-app/secrets").status_code == 404


def test_legacy_secret_delete_turns_the_column_internal(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    app_id, _ = logto.state.insert_legacy_app(name="legacy")
    first = standin_client.delete(f"/api/applications/{app_id}/legacy-secret")
    again = standin_client.delete(f"/api/applications/{app_id}/legacy-secret")
    assert first.status_code == 200 and first.json()["secret"].startswith("#internal:")
    assert again.json()["code"] == "application.no_legacy_secret_found"


def test_session_reuses_one_connection(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    before = logto.connections_accepted
    for _ in range(5):
        standin_client.get("/api/applications")
    assert logto.connections_accepted == before


def test_stopped_stand_in_refuses_connections() -> None:
    with LogtoStandIn() as logto:
        endpoint = logto.endpoint
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{endpoint}/api/status", timeout=2)


def test_stopping_cuts_keep_alive_connections() -> None:
    with LogtoStandIn() as logto:
        standin_client = StandInClient(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret)
        assert standin_client.get("/api/status").status_code == 204
    with pytest.raises(requests.ConnectionError):
        standin_client.get("/api/status", timeout=2)


def test_repr_shows_no_secret(logto: LogtoStandIn) -> None:
    assert logto.m2m_client_secret not in repr(logto)


def test_as_logto_1_43_the_internal_secret_is_left_out(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.answer_as("1.43.0")
    created = _create(standin_client)
    listed = standin_client.get("/api/applications").json()
    for app in [created, standin_client.get(f"/api/applications/{created['id']}").json(), *listed]:
        assert "secret" not in app or not str(app["secret"]).startswith("#internal:")
        assert app["appLevelAccessControlEnabled"] is False


def test_as_logto_1_43_a_secret_for_a_missing_app_is_not_exists_with_id(
    logto: LogtoStandIn, standin_client: StandInClient
) -> None:
    logto.answer_as("1.43.0")
    answer = standin_client.post("/api/applications/no-such-app/secrets", json={"name": "x"})
    assert (answer.status_code, answer.json()["code"]) == (404, "entity.not_exists_with_id")


def test_by_default_the_stand_in_answers_as_the_recorded_version(standin_client: StandInClient) -> None:
    created = _create(standin_client)
    assert created["secret"].startswith("#internal:") and "appLevelAccessControlEnabled" not in created
