"""Token endpoint and Management API authentication of the Logto stand-in (as recorded in 00, 05, 07)."""

from __future__ import annotations


import pytest
import requests

from tests.logto_standin import LogtoStandIn
from tests.logto_standin.client import StandInClient, fetch_token, tamper_signature
from tests.logto_standin.models import MANAGEMENT_API_RESOURCE


def _token_form(**extra: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "resource": MANAGEMENT_API_RESOURCE, "scope": "all", **extra}


def _api_status(logto: LogtoStandIn, token: str) -> requests.Response:
    return requests.get(f"{logto.endpoint}/api/applications", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_seeded_m2m_app_gets_a_token_with_scope_all(logto: LogtoStandIn) -> None:
    answer = fetch_token(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret)
    body = answer.json()
    assert (answer.status_code, body["token_type"], body["expires_in"], body["scope"]) == (200, "Bearer", 3600, "all")


def test_client_secret_post_authenticates_like_basic(logto: LogtoStandIn) -> None:
    form = _token_form(client_id=logto.m2m_client_id, client_secret=logto.m2m_client_secret)
    answer = requests.post(f"{logto.endpoint}/oidc/token", data=form, timeout=10)
    assert answer.status_code == 200 and _api_status(logto, answer.json()["access_token"]).status_code == 200


def test_wrong_secret_is_invalid_client_with_www_authenticate(logto: LogtoStandIn) -> None:
    answer = fetch_token(logto.endpoint, logto.m2m_client_id, "wrong-secret")
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
    assert answer.headers["WWW-Authenticate"].startswith(f'Basic realm="{logto.issuer}"')


def test_missing_resource_is_invalid_target(logto: LogtoStandIn) -> None:
    answer = requests.post(f"{logto.endpoint}/oidc/token", auth=(logto.m2m_client_id, logto.m2m_client_secret),
                           data={"grant_type": "client_credentials", "scope": "all"}, timeout=10)
    assert (answer.status_code, answer.json()["code"]) == (400, "oidc.invalid_target")


def test_unknown_resource_is_invalid_target(logto: LogtoStandIn) -> None:
    answer = fetch_token(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret,
                         resource="https://tenant.logto.app/api")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_target")


def test_cloud_resource_indicator_can_be_configured() -> None:
    with LogtoStandIn(management_resource="https://abc123.logto.app/api") as logto:
        answer = fetch_token(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret,
                             resource="https://abc123.logto.app/api")
        assert _api_status(logto, answer.json()["access_token"]).status_code == 200


@pytest.mark.sends_invalid_requests
def test_json_body_at_the_token_endpoint_is_invalid_request(logto: LogtoStandIn) -> None:
    answer = requests.post(f"{logto.endpoint}/oidc/token", json={"grant_type": "client_credentials"}, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_request")


def test_m2m_app_without_role_gets_a_token_the_api_forbids(logto: LogtoStandIn) -> None:
    client_id, secret = logto.add_m2m_app(with_role=False)
    answer = fetch_token(logto.endpoint, client_id, secret)
    assert answer.status_code == 200 and "scope" not in answer.json()
    forbidden = _api_status(logto, answer.json()["access_token"])
    assert (forbidden.status_code, forbidden.json()["code"]) == (403, "auth.forbidden")


def test_added_m2m_app_with_role_is_accepted(logto: LogtoStandIn) -> None:
    client_id, secret = logto.add_m2m_app(with_role=True)
    token = fetch_token(logto.endpoint, client_id, secret).json()["access_token"]
    assert _api_status(logto, token).status_code == 200


def test_expire_all_tokens_makes_issued_tokens_answer_401(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.expire_all_tokens()
    answer = standin_client.get("/api/applications")
    assert (answer.status_code, answer.json()["code"], answer.json()["data"]["code"]) == (
        401, "auth.unauthorized", "ERR_JWT_EXPIRED")


def test_tokens_issued_after_expire_all_tokens_work(logto: LogtoStandIn) -> None:
    logto.expire_all_tokens()
    fresh = StandInClient(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret)
    assert fresh.get("/api/applications").status_code == 200


def test_token_past_its_lifetime_answers_401() -> None:
    with LogtoStandIn(token_ttl=0) as logto:
        token = fetch_token(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret).json()["access_token"]
        answer = _api_status(logto, token)
        assert (answer.status_code, answer.json()["data"]["name"]) == (401, "JWTExpired")


def test_missing_authorization_header_is_401(logto: LogtoStandIn) -> None:
    answer = requests.get(f"{logto.endpoint}/api/applications", timeout=10)
    assert (answer.status_code, answer.json()["code"]) == (401, "auth.authorization_header_missing")


def test_basic_scheme_on_the_api_is_not_supported(logto: LogtoStandIn) -> None:
    answer = requests.get(f"{logto.endpoint}/api/applications", auth=(logto.m2m_client_id, "x"), timeout=10)
    assert (answer.status_code, answer.json()["code"]) == (401, "auth.authorization_token_type_not_supported")


def test_garbage_bearer_token_is_jws_invalid(logto: LogtoStandIn) -> None:
    answer = _api_status(logto, "not-a-jwt")
    assert (answer.status_code, answer.json()["data"]["code"]) == (401, "ERR_JWS_INVALID")


def test_tampered_token_fails_signature_verification(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    answer = _api_status(logto, tamper_signature(standin_client.token))
    assert (answer.status_code, answer.json()["data"]["code"]) == (401, "ERR_JWS_SIGNATURE_VERIFICATION_FAILED")


def test_status_and_swagger_need_no_token(logto: LogtoStandIn) -> None:
    assert requests.get(f"{logto.endpoint}/api/status", timeout=10).status_code == 204
    assert requests.get(f"{logto.endpoint}/api/swagger.json", timeout=10).json()["openapi"].startswith("3.")


def test_discovery_issuer_is_endpoint_plus_oidc(logto: LogtoStandIn) -> None:
    document = requests.get(f"{logto.endpoint}/oidc/.well-known/openid-configuration", timeout=10).json()
    assert (document["issuer"], document["token_endpoint"]) == (logto.issuer, f"{logto.issuer}/token")


def _traditional_app(standin_client: StandInClient) -> tuple[str, str]:
    app = standin_client.post("/api/applications", json={"name": "web", "type": "Traditional"}).json()
    default = standin_client.get(f"/api/applications/{app['id']}/secrets").json()[0]
    return app["id"], default["value"]


def test_traditional_app_may_not_use_client_credentials(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    app_id, secret = _traditional_app(standin_client)
    answer = fetch_token(logto.endpoint, app_id, secret)
    assert (answer.status_code, answer.json()["error_description"]) == (
        400, "requested grant type is not allowed for this client")


def _refresh_grant(logto: LogtoStandIn, app_id: str, secret: str) -> requests.Response:
    return requests.post(f"{logto.endpoint}/oidc/token", auth=(app_id, secret),
                         data={"grant_type": "refresh_token", "refresh_token": "bogus"}, timeout=10)


def test_every_unexpired_named_secret_authenticates(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    app_id, default = _traditional_app(standin_client)
    rotated = standin_client.post(f"/api/applications/{app_id}/secrets", json={"name": "rotation"}).json()["value"]
    # standin_client authentication passes for both (the bogus refresh token then fails as invalid_grant)
    assert [_refresh_grant(logto, app_id, value).json()["error"] for value in (default, rotated)] == [
        "invalid_grant", "invalid_grant"]


def test_deleted_secret_stops_authenticating(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    app_id, default = _traditional_app(standin_client)
    standin_client.post(f"/api/applications/{app_id}/secrets", json={"name": "rotation"})
    assert standin_client.delete(f"/api/applications/{app_id}/secrets/Default%20secret").status_code == 204
    assert _refresh_grant(logto, app_id, default).status_code == 401


def test_expired_secret_stops_authenticating(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    app_id, _ = _traditional_app(standin_client)
    expires_at = logto.state.clock_ms() + 60_000
    value = standin_client.post(f"/api/applications/{app_id}/secrets",
                        json={"name": "short", "expiresAt": expires_at}).json()["value"]
    logto.state.clock_ms = lambda: expires_at + 1
    assert _refresh_grant(logto, app_id, value).status_code == 401
