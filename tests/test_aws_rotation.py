"""The Secrets Manager rotation handler with moto-backed clients, against the Logto stand-in.

moto's Lambda cannot run code here (no Docker), so the test calls the handler the way Secrets
Manager's rotation does: the four steps in order with one ``ClientRequestToken``, and again after a
crash. Secret values are compared, never printed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from components.aws_rotation import STEPS, RotationStepError, Settings, handler
from tests.logto_standin import LogtoStandIn
from tests.test_program_against_standin import same_secret

REGION = "eu-central-1"
CLIENT = "lobechat/logto-client"
M2M = "lobechat/logto-m2m"


@pytest.fixture
def aws(logto: LogtoStandIn) -> Iterator[dict[str, Any]]:
    app = logto.state.create_application({"name": "LobeChat elsewhere", "type": "Traditional"})
    default = logto.state.secrets[app["id"]][0]["value"]
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        client.create_secret(Name=M2M, SecretString=json.dumps(
            {"clientId": logto.m2m_client_id, "clientSecret": logto.m2m_client_secret}))
        client.create_secret(Name=CLIENT, SecretString=json.dumps(
            {"clientId": app["id"], "clientSecret": default, "secretName": "Default secret", "issuer": logto.issuer}))
        yield {"client": client, "app_id": app["id"], "settings": Settings(logto.endpoint, M2M), "logto": logto}


def step(aws: dict[str, Any], name: str, token: str) -> None:
    handler({"SecretId": CLIENT, "ClientRequestToken": token, "Step": name}, None,
            client=aws["client"], settings=aws["settings"])


def rotate(aws: dict[str, Any], token: str | None = None) -> str:
    token = token or str(uuid.uuid4())
    for name in STEPS:
        step(aws, name, token)
    return token


def value(aws: dict[str, Any], **version: str) -> dict[str, Any]:
    # Always name the stage: moto 5.2.1's GetSecretValue without one does not follow a moved AWSCURRENT.
    version = version or {"VersionStage": "AWSCURRENT"}
    return json.loads(aws["client"].get_secret_value(SecretId=CLIENT, **version)["SecretString"])


def current_version(aws: dict[str, Any]) -> str:
    stages = aws["client"].describe_secret(SecretId=CLIENT)["VersionIdsToStages"]
    return next(v for v, labels in stages.items() if "AWSCURRENT" in labels)


def authenticates(aws: dict[str, Any], secret_value: dict[str, Any]) -> bool:
    answer = requests.post(f"{aws['logto'].endpoint}/oidc/token", timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": "x",
        "client_id": secret_value["clientId"], "client_secret": secret_value["clientSecret"]})
    return answer.status_code == 400 and answer.json().get("error") == "invalid_grant"


def logto_names(aws: dict[str, Any]) -> list[str]:
    return sorted(s["name"] for s in aws["logto"].state.secrets[aws["app_id"]])


def test_a_full_rotation_promotes_a_tested_new_secret(aws):
    before = value(aws)
    token = rotate(aws)
    after = value(aws)
    assert current_version(aws) == token and after["secretName"] == f"aws-{token}"
    assert not same_secret(after["clientSecret"], before["clientSecret"])
    assert authenticates(aws, after) and authenticates(aws, value(aws, VersionStage="AWSPREVIOUS"))
    assert logto_names(aws) == ["Default secret", f"aws-{token}"]


def test_two_rotations_in_a_row_leave_exactly_two_valid_secrets(aws):
    first = rotate(aws)
    second = rotate(aws)
    assert logto_names(aws) == sorted([f"aws-{first}", f"aws-{second}"])
    assert authenticates(aws, value(aws)) and authenticates(aws, value(aws, VersionStage="AWSPREVIOUS"))
    third = rotate(aws)
    assert logto_names(aws) == sorted([f"aws-{second}", f"aws-{third}"])


def test_a_failing_test_step_leaves_awscurrent_and_the_old_secret_valid(aws):
    before_version, before = current_version(aws), value(aws)
    token = str(uuid.uuid4())
    step(aws, "createSecret", token)
    step(aws, "setSecret", token)
    aws["logto"].faults.add(method="POST", path_prefix="/oidc/token", status=503, times=1)
    with pytest.raises(RotationStepError) as failure:
        step(aws, "testSecret", token)
    message = str(failure.value)
    assert failure.value.step == "testSecret" and message.startswith(f"testSecret of {CLIENT}:")
    assert "HTTP 503" in message and "AWSCURRENT is unchanged" in message
    assert before["clientSecret"] not in message and value(aws, VersionId=token)["clientSecret"] not in message
    assert current_version(aws) == before_version and authenticates(aws, value(aws))
    # Secrets Manager retries with the same token: it converges.
    rotate(aws, token)
    assert current_version(aws) == token and authenticates(aws, value(aws))


@pytest.mark.parametrize("crash_after", range(len(STEPS)), ids=[f"crash-after-{s}" for s in STEPS])
def test_a_rerun_after_a_crash_between_any_two_steps_converges(aws, crash_after):
    token = str(uuid.uuid4())
    for name in STEPS[: crash_after + 1]:
        step(aws, name, token)
    rotate(aws, token)  # the retry runs every step again with the same token
    assert current_version(aws) == token
    names = logto_names(aws)
    assert names == ["Default secret", f"aws-{token}"]  # one Logto secret per token, never two
    assert authenticates(aws, value(aws))


def test_create_is_idempotent_on_the_token(aws):
    token = str(uuid.uuid4())
    step(aws, "createSecret", token)
    first = value(aws, VersionId=token)
    step(aws, "createSecret", token)
    again = value(aws, VersionId=token)
    assert same_secret(again["clientSecret"], first["clientSecret"])
    assert logto_names(aws) == ["Default secret", f"aws-{token}"]


def test_set_secret_names_a_vanished_logto_secret(aws):
    token = str(uuid.uuid4())
    step(aws, "createSecret", token)
    aws["logto"].state.delete_secret(aws["app_id"], f"aws-{token}")
    with pytest.raises(RotationStepError, match="setSecret of lobechat/logto-client: the Logto secret"):
        step(aws, "setSecret", token)
    assert authenticates(aws, value(aws))


def test_an_event_that_is_no_rotation_step_is_refused(aws):
    with pytest.raises(ValueError, match="not a Secrets Manager rotation event"):
        handler({"SecretId": CLIENT, "ClientRequestToken": "t", "Step": "deleteSecret"}, None,
                client=aws["client"], settings=aws["settings"])


def test_settings_come_from_the_lambda_environment(monkeypatch):
    monkeypatch.delenv("LOGTO_ENDPOINT", raising=False)
    monkeypatch.setenv("LOGTO_M2M_SECRET_ID", M2M)
    with pytest.raises(ValueError, match="LOGTO_ENDPOINT"):
        Settings.from_environment()
    monkeypatch.setenv("LOGTO_ENDPOINT", "https://auth.example.com/")
    assert Settings.from_environment() == Settings("https://auth.example.com", M2M)
