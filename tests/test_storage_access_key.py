"""``S3AccessKeyProvider`` (an IAM user and key limited to LobeChat's bucket) against moto's IAM in
server mode on 127.0.0.1, called the way the engine calls it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from components.storage_resources.access_key import IAM_PATH, POLICY_NAME, S3AccessKeyProvider
from components.storage_resources.client import StorageError, StorageInputError
from tests.s3_server import FaultProxy, MotoS3

ADMIN_SECRET = "admin-secret-that-must-never-show-0123"


def props(endpoint: str, **changes: Any) -> dict[str, Any]:
    base = {
        "project": "lobechat-logto", "stack": "prod", "resource_name": "storage-lobechat-key",
        "bucket": "acme-lobechat", "user_name": "lobechat-logto-prod-acme-lobechat", "region": "eu-west-1",
        "public_read": False, "iam_endpoint": endpoint,
        "admin_access_key_id": "AKIAADMIN00000000001", "admin_secret_access_key": ADMIN_SECRET,
    }
    return {**base, **changes}


def iam(endpoint: str) -> Any:
    return boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="a", aws_secret_access_key="b")


def create(p: dict[str, Any]) -> Any:
    provider = S3AccessKeyProvider()
    assert provider.check({}, p).failures == []
    return provider.create(p)


def test_create_makes_a_user_with_a_bucket_scoped_policy_and_one_key(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    client = iam(s3.endpoint)
    user = client.get_user(UserName=created.id)["User"]
    assert user["Path"] == IAM_PATH
    tags = {t["Key"]: t["Value"] for t in user["Tags"]}
    assert tags["lobechat-logto:owner"] == "lobechat-logto/prod"
    document = client.get_user_policy(UserName=created.id, PolicyName=POLICY_NAME)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    resources = sorted(r for s in document["Statement"] for r in s["Resource"])
    assert resources == ["arn:aws:s3:::acme-lobechat", "arn:aws:s3:::acme-lobechat/*"]
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert "s3:PutObjectAcl" not in actions and {"s3:GetObject", "s3:PutObject"} <= actions
    keys = client.list_access_keys(UserName=created.id)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [created.outs["key_id"]] and created.outs["key_secret"]


def test_rerun_after_lost_state_takes_the_user_over_and_keeps_at_most_two_keys(s3: MotoS3) -> None:
    first = create(props(s3.endpoint))
    second = create(props(s3.endpoint))
    third = create(props(s3.endpoint))
    keys = {k["AccessKeyId"] for k in iam(s3.endpoint).list_access_keys(UserName=first.id)["AccessKeyMetadata"]}
    assert third.outs["key_id"] in keys and len(keys) <= 2 and first.outs["key_id"] not in keys
    assert second.id == third.id == first.id


def test_read_sees_a_key_deleted_outside_as_gone_and_a_policy_for_another_bucket_as_drift(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    provider = S3AccessKeyProvider()
    assert provider.read(created.id, created.outs).inputs["bucket"] == "acme-lobechat"
    iam(s3.endpoint).put_user_policy(UserName=created.id, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Sid": "LobeChatBucket", "Effect": "Allow", "Action": ["s3:ListBucket"],
                                                  "Resource": ["arn:aws:s3:::other"]}]}))
    drifted = provider.read(created.id, created.outs)
    assert drifted.inputs["bucket"] == "other" and provider.diff(created.id, drifted.outs, props(s3.endpoint)).changes
    iam(s3.endpoint).delete_access_key(UserName=created.id, AccessKeyId=created.outs["key_id"])
    assert provider.read(created.id, created.outs).id == ""


def test_update_rewrites_the_policy_and_keeps_the_key(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    updated = S3AccessKeyProvider().update(created.id, created.outs, props(s3.endpoint, bucket="acme-files", public_read=True))
    assert updated.outs["key_id"] == created.outs["key_id"] and updated.outs["key_secret"] == created.outs["key_secret"]
    document = iam(s3.endpoint).get_user_policy(UserName=created.id, PolicyName=POLICY_NAME)["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert "arn:aws:s3:::acme-files/*" in json.dumps(document) and "s3:PutObjectAcl" in json.dumps(document)


def test_delete_removes_key_policy_and_user_and_a_second_delete_is_done(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    provider = S3AccessKeyProvider()
    provider.delete(created.id, created.outs)
    assert iam(s3.endpoint).list_users()["Users"] == []
    provider.delete(created.id, created.outs)


def test_a_user_of_that_name_without_the_marker_is_refused(s3: MotoS3) -> None:
    iam(s3.endpoint).create_user(UserName="lobechat-logto-prod-acme-lobechat")
    with pytest.raises(StorageError) as info:
        create(props(s3.endpoint))
    assert "no marker" in str(info.value) and ADMIN_SECRET not in str(info.value)
    assert iam(s3.endpoint).list_access_keys(UserName="lobechat-logto-prod-acme-lobechat")["AccessKeyMetadata"] == []


def test_a_user_of_another_stack_is_refused(s3: MotoS3) -> None:
    create(props(s3.endpoint, stack="staging"))
    with pytest.raises(StorageError) as info:
        create(props(s3.endpoint))
    assert "lobechat-logto/staging" in str(info.value)


@pytest.mark.parametrize("change, field", [({"user_name": "has space"}, "user_name"), ({"bucket": "Bad_Bucket"}, "bucket"),
                                           ({"iam_endpoint": "iam.example.com"}, "iam_endpoint"),
                                           ({"admin_secret_access_key": ""}, "admin_secret_access_key")])
def test_bad_input_fails_before_any_request(s3: MotoS3, change: dict, field: str) -> None:
    with FaultProxy(s3.port) as proxy:
        p = props(proxy.endpoint, **change)
        assert [f.property for f in S3AccessKeyProvider().check({}, p).failures] == [field]
        with pytest.raises(StorageInputError):
            S3AccessKeyProvider().create(p)
        assert proxy.seen == []


def test_5xx_from_iam_is_retried_and_leaves_one_user_with_one_key(s3: MotoS3, no_s3_backoff: None) -> None:
    with FaultProxy(s3.port, plan=lambda method, path, n: "503" if n in (0, 3) else "pass") as proxy:
        created = create(props(proxy.endpoint))
    client = iam(s3.endpoint)
    assert [u["UserName"] for u in client.list_users()["Users"]] == [created.id]
    assert len(client.list_access_keys(UserName=created.id)["AccessKeyMetadata"]) == 1
