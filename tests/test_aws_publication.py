"""``AwsSecretPublication`` against moto's Secrets Manager, called the way the engine calls it."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from components.aws_publication import AwsSecretPublicationProvider, client_secret_document

REGION = "eu-central-1"
NAME = "lobechat/logto-client"


@pytest.fixture
def secretsmanager():
    with mock_aws():
        yield boto3.client("secretsmanager", region_name=REGION)


def props(value: str) -> dict:
    return {"secret_name": NAME, "region": REGION, "endpoint_url": None, "value": value}


def test_create_publishes_and_an_unchanged_value_changes_nothing(secretsmanager):
    provider = AwsSecretPublicationProvider()
    document = client_secret_document("app", "s3cr3t-one", "lobechat-1", "https://auth.example.com/oidc")
    created = provider.create(props(document))
    stored = json.loads(secretsmanager.get_secret_value(SecretId=NAME)["SecretString"])
    assert stored["clientId"] == "app" and stored["secretName"] == "lobechat-1" and stored["clientSecret"] == "s3cr3t-one"
    assert created.id.startswith("arn:aws:secretsmanager:")
    diff = provider.diff(created.id, created.outs, props(document))
    assert not diff.changes


def test_a_rotated_value_is_a_new_version(secretsmanager):
    provider = AwsSecretPublicationProvider()
    created = provider.create(props(client_secret_document("app", "one", "lobechat-1", "i")))
    new = props(client_secret_document("app", "two", "lobechat-2", "i"))
    assert provider.diff(created.id, created.outs, new).changes
    provider.update(created.id, created.outs, new)
    versions = secretsmanager.list_secret_version_ids(SecretId=NAME)["Versions"]
    assert len(versions) == 2
    assert json.loads(secretsmanager.get_secret_value(SecretId=NAME)["SecretString"])["secretName"] == "lobechat-2"


def test_an_existing_secret_gets_a_version_instead_of_an_error(secretsmanager):
    secretsmanager.create_secret(Name=NAME, SecretString="{}")
    AwsSecretPublicationProvider().create(props('{"signingKey": "k"}'))
    assert json.loads(secretsmanager.get_secret_value(SecretId=NAME)["SecretString"]) == {"signingKey": "k"}


def test_refresh_sees_a_deleted_secret_as_gone_and_delete_tolerates_it(secretsmanager):
    provider = AwsSecretPublicationProvider()
    created = provider.create(props("{}"))
    secretsmanager.delete_secret(SecretId=NAME, ForceDeleteWithoutRecovery=True)
    assert provider.read(created.id, created.outs).id == ""
    provider.delete(created.id, created.outs)


def test_a_new_name_replaces(secretsmanager):
    provider = AwsSecretPublicationProvider()
    created = provider.create(props("{}"))
    diff = provider.diff(created.id, created.outs, {**props("{}"), "secret_name": "other"})
    assert diff.replaces == ["secret_name"]
