"""The stand-in checks every request it receives against the recorded Logto OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.logto_standin import LogtoStandIn
from tests.logto_standin.client import StandInClient
from tests.logto_standin.contract_files import openapi_spec_path
from tests.prereqs import require_or_skip


@pytest.fixture
def logto() -> Iterator[LogtoStandIn]:
    require_or_skip(openapi_spec_path().is_file(), f"recorded OpenAPI document missing: {openapi_spec_path()}")
    with LogtoStandIn() as standin:
        yield standin


def test_conforming_requests_record_no_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    app = standin_client.post("/api/applications", json={
        "name": "LobeChat", "type": "Traditional", "customData": {"managedBy": "pulumi"},
        "oidcClientMetadata": {"redirectUris": ["http://lobe.localhost:3210/cb"], "postLogoutRedirectUris": []},
    }).json()
    standin_client.patch(f"/api/applications/{app['id']}", json={"name": "renamed"})
    standin_client.get("/api/applications", params={"search": "%Lobe%", "page": 1, "page_size": 20})
    standin_client.post(f"/api/applications/{app['id']}/secrets", json={"name": "rotation", "expiresAt": None})
    standin_client.delete(f"/api/applications/{app['id']}/secrets/Default%20secret")
    assert logto.openapi_violations == []


def test_wrongly_typed_body_field_is_a_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.post("/api/hooks", json={"name": "x", "events": "User.Data.Updated", "config": {"url": "http://a.example"}})
    assert logto.openapi_violations == ["POST /api/hooks: request body at events fails 'type' (array)"]


def test_missing_required_field_is_a_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.post("/api/applications", json={"name": "x"})
    assert logto.openapi_violations == [
        "POST /api/applications: request body at (root) fails 'required': 'type' is a required property"]


def test_unknown_path_is_a_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.get("/api/applicationz")
    assert logto.openapi_violations == ["GET /api/applicationz: no such path in the Logto OpenAPI document"]


def test_method_outside_the_document_is_a_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.request("PUT", "/api/hooks", json={})
    assert logto.openapi_violations == ["PUT /api/hooks: method not in the Logto OpenAPI document"]


def test_bad_query_parameter_is_a_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.get("/api/hooks", params={"page": 0})
    assert logto.openapi_violations == ["GET /api/hooks: query parameter 'page' fails 'minimum'"]


def test_unknown_query_parameter_is_a_violation(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.get("/api/hooks", params={"includeStats": "true"})
    assert logto.openapi_violations == ["GET /api/hooks: unknown query parameter 'includeStats'"]


def test_token_request_with_json_body_is_a_violation(logto: LogtoStandIn) -> None:
    requests.post(f"{logto.endpoint}/oidc/token", json={"grant_type": "client_credentials"}, timeout=10)
    assert logto.openapi_violations == ["POST /oidc/token: body must be application/x-www-form-urlencoded"]


def test_violations_never_quote_request_values(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    secret_like = "s3cr3t-value-that-must-not-leak"
    standin_client.post("/api/hooks", json={"name": 5, "events": [secret_like],
                                    "config": {"url": "http://a.example", "headers": {"authorization": 7}}})
    assert logto.openapi_violations and not any(secret_like in line for line in logto.openapi_violations)


def test_validation_can_be_switched_off() -> None:
    with LogtoStandIn(check_openapi=False) as logto:
        requests.get(f"{logto.endpoint}/api/applicationz", timeout=10)
        assert logto.openapi_violations == []
