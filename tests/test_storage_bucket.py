"""``S3BucketProvider`` called the way the engine calls it, against moto's S3 server on 127.0.0.1.

Lifecycle (create, read, drift, update of CORS and policy, delete, adopt), bad input (one clear error
before any request), and faults through a fault-injecting proxy (5xx, lost answers: retried or one
clear error, never a second bucket, never a credential in a message).
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from components.storage_resources import S3BucketProvider, StorageError, StorageInputError
from components.storage_resources.bucket import CORS_RULE_ID, POLICY_SID, TAG_MANAGED_BY, TAG_OWNER
from tests.s3_server import FaultProxy, MotoS3

ACCESS_KEY = "AKIATESTKEY000000001"
SECRET_KEY = "test-secret-key-that-must-never-show-0123"
LOBE = "http://lobe.localhost:3210"


def props(endpoint: str, **changes: Any) -> dict[str, Any]:
    base = {
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": "storage-bucket",
        "bucket": "lobechat",
        "region": "us-east-1",
        "s3_endpoint": endpoint,
        "path_style": True,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "cors_origins": [LOBE],
        "public_read": False,
        "public_prefix": "files",
        "adopt_existing": False,
    }
    return {**base, **changes}


def raw(endpoint: str) -> Any:
    """A plain client, as an operator (or the console) would change the bucket behind the stack."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )


def buckets(endpoint: str) -> list[str]:
    return [b["Name"] for b in raw(endpoint).list_buckets()["Buckets"]]


def create(p: dict[str, Any]) -> Any:
    provider = S3BucketProvider()
    checked = provider.check({}, p)
    assert checked.failures == []
    return provider.create(checked.inputs)


# --- lifecycle ------------------------------------------------------------------------------------


def test_create_makes_a_private_bucket_with_the_lobechat_cors_rule_and_marker(s3: MotoS3) -> None:
    result = create(props(s3.endpoint))
    assert result.id == "lobechat" and buckets(s3.endpoint) == ["lobechat"]
    client = raw(s3.endpoint)
    rule = client.get_bucket_cors(Bucket="lobechat")["CORSRules"][0]
    assert rule["ID"] == CORS_RULE_ID and rule["AllowedOrigins"] == [LOBE]
    assert set(rule["AllowedMethods"]) == {"GET", "PUT", "HEAD"} and rule["ExposeHeaders"] == ["ETag"]
    with pytest.raises(client.exceptions.ClientError) as info:
        client.get_bucket_policy(Bucket="lobechat")
    assert info.value.response["Error"]["Code"] == "NoSuchBucketPolicy"  # private: presigned URLs only
    tags = {t["Key"]: t["Value"] for t in client.get_bucket_tagging(Bucket="lobechat")["TagSet"]}
    assert tags[TAG_MANAGED_BY] == "lobechat-logto" and tags[TAG_OWNER] == "lobechat-logto/dev"
    assert result.outs["cors_origins"] == [LOBE] and result.outs["public_read"] is False


def test_read_returns_the_live_state_unchanged_after_create(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    read = S3BucketProvider().read(created.id, created.outs)
    assert read.id == "lobechat" and read.outs == created.outs
    assert read.inputs["cors_origins"] == [LOBE] and read.inputs["public_read"] is False


def test_refresh_shows_cors_and_policy_changed_outside_the_stack(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    client = raw(s3.endpoint)
    client.put_bucket_cors(Bucket="lobechat", CORSConfiguration={"CORSRules": [
        {"ID": CORS_RULE_ID, "AllowedOrigins": ["https://evil.example.com"], "AllowedMethods": ["GET"]},
    ]})
    client.put_bucket_policy(Bucket="lobechat", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": POLICY_SID, "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::lobechat/files/*"},
    ]}))
    read = S3BucketProvider().read(created.id, created.outs)
    assert read.inputs["cors_origins"] == ["https://evil.example.com"] and read.inputs["public_read"] is True
    diff = S3BucketProvider().diff(created.id, read.outs, props(s3.endpoint))
    assert diff.changes and not diff.replaces


def test_bucket_deleted_outside_the_stack_reads_as_gone(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    raw(s3.endpoint).delete_bucket(Bucket="lobechat")
    assert S3BucketProvider().read(created.id, created.outs).id == ""


def test_update_repairs_cors_and_switches_public_read_on_and_off(s3: MotoS3) -> None:
    provider = S3BucketProvider()
    created = create(props(s3.endpoint))
    wanted = props(s3.endpoint, cors_origins=["https://chat.example.com"], public_read=True)
    assert provider.diff(created.id, created.outs, wanted).changes
    updated = provider.update(created.id, created.outs, wanted)
    client = raw(s3.endpoint)
    assert client.get_bucket_cors(Bucket="lobechat")["CORSRules"][0]["AllowedOrigins"] == ["https://chat.example.com"]
    statement = json.loads(client.get_bucket_policy(Bucket="lobechat")["Policy"])["Statement"][0]
    assert statement["Sid"] == POLICY_SID and statement["Principal"] == "*"
    assert statement["Action"] == ["s3:GetObject"] and statement["Resource"] == ["arn:aws:s3:::lobechat/files/*"]
    assert updated.outs["public_read"] is True and updated.outs["access_key_id"] == ACCESS_KEY

    private = provider.update(created.id, updated.outs, props(s3.endpoint))
    with pytest.raises(client.exceptions.ClientError):
        client.get_bucket_policy(Bucket="lobechat")
    assert private.outs["public_read"] is False and private.outs["cors_origins"] == [LOBE]


def test_update_keeps_cors_rules_and_policy_statements_of_others(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    client = raw(s3.endpoint)
    other_rule = {"ID": "cdn", "AllowedOrigins": ["https://cdn.example.com"], "AllowedMethods": ["GET"]}
    client.put_bucket_cors(Bucket="lobechat", CORSConfiguration={"CORSRules": [other_rule]})
    other_statement = {"Sid": "Backups", "Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
                       "Resource": "arn:aws:s3:::lobechat/backups/*"}
    client.put_bucket_policy(Bucket="lobechat", Policy=json.dumps({"Version": "2012-10-17", "Statement": [other_statement]}))
    S3BucketProvider().update(created.id, created.outs, props(s3.endpoint, public_read=True))
    rules = {r["ID"]: r for r in client.get_bucket_cors(Bucket="lobechat")["CORSRules"]}
    assert set(rules) == {"cdn", CORS_RULE_ID}
    sids = [s["Sid"] for s in json.loads(client.get_bucket_policy(Bucket="lobechat")["Policy"])["Statement"]]
    assert sids == ["Backups", POLICY_SID]


def test_a_new_bucket_name_replaces_and_an_endpoint_change_does_not(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    provider = S3BucketProvider()
    assert provider.diff(created.id, created.outs, props(s3.endpoint, bucket="lobechat-2")).replaces == ["bucket"]
    moved = provider.diff(created.id, created.outs, props("http://127.0.0.1:1"))
    assert moved.changes and moved.replaces == []
    assert not provider.diff(created.id, created.outs, props(s3.endpoint)).changes


def test_delete_removes_an_empty_bucket_and_a_second_delete_is_done(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    provider = S3BucketProvider()
    provider.delete(created.id, created.outs)
    assert buckets(s3.endpoint) == []
    provider.delete(created.id, created.outs)  # 404: already gone counts as done


def test_delete_never_empties_a_bucket_with_files(s3: MotoS3) -> None:
    created = create(props(s3.endpoint))
    raw(s3.endpoint).put_object(Bucket="lobechat", Key="files/u1/photo.png", Body=b"user data")
    with pytest.raises(StorageError) as info:
        S3BucketProvider().delete(created.id, created.outs)
    assert "BucketNotEmpty" in str(info.value) and "pulumi state delete" in str(info.value)
    assert raw(s3.endpoint).get_object(Bucket="lobechat", Key="files/u1/photo.png")["Body"].read() == b"user data"


def test_rerun_after_lost_state_takes_over_its_own_bucket(s3: MotoS3) -> None:
    create(props(s3.endpoint))
    raw(s3.endpoint).put_object(Bucket="lobechat", Key="files/a.txt", Body=b"x")
    again = create(props(s3.endpoint))
    assert again.id == "lobechat" and buckets(s3.endpoint) == ["lobechat"]
    assert raw(s3.endpoint).get_object(Bucket="lobechat", Key="files/a.txt")["Body"].read() == b"x"


def test_existing_bucket_with_files_and_no_marker_is_refused_with_the_key_to_set(s3: MotoS3) -> None:
    client = raw(s3.endpoint)
    client.create_bucket(Bucket="lobechat")
    client.put_object(Bucket="lobechat", Key="files/old.png", Body=b"old")
    with pytest.raises(StorageError) as info:
        create(props(s3.endpoint))
    assert "storage.adoptExisting" in str(info.value)
    with pytest.raises(client.exceptions.ClientError):
        client.get_bucket_cors(Bucket="lobechat")  # nothing was changed


def test_adopt_takes_over_an_existing_bucket_and_keeps_its_files_and_tags(s3: MotoS3) -> None:
    client = raw(s3.endpoint)
    client.create_bucket(Bucket="lobechat")
    client.put_object(Bucket="lobechat", Key="files/old.png", Body=b"old")
    client.put_bucket_tagging(Bucket="lobechat", Tagging={"TagSet": [{"Key": "team", "Value": "chat"}]})
    adopted = create(props(s3.endpoint, adopt_existing=True))
    tags = {t["Key"]: t["Value"] for t in client.get_bucket_tagging(Bucket="lobechat")["TagSet"]}
    assert tags["team"] == "chat" and tags[TAG_MANAGED_BY] == "lobechat-logto"
    assert client.get_object(Bucket="lobechat", Key="files/old.png")["Body"].read() == b"old"
    assert adopted.outs["cors_origins"] == [LOBE]


def test_empty_unmarked_bucket_is_taken_over_as_an_interrupted_create_leaves_it(s3: MotoS3) -> None:
    raw(s3.endpoint).create_bucket(Bucket="lobechat")
    assert create(props(s3.endpoint)).outs["stack"] == "dev"


def test_bucket_of_another_stack_is_refused(s3: MotoS3) -> None:
    create(props(s3.endpoint, stack="prod"))
    with pytest.raises(StorageError) as info:
        create(props(s3.endpoint, stack="dev", adopt_existing=True))
    assert "lobechat-logto/prod" in str(info.value)


def test_region_other_than_us_east_1_sends_its_location_constraint(s3: MotoS3) -> None:
    created = create(props(s3.endpoint, region="eu-central-1", bucket="lobechat-eu"))
    location = raw(s3.endpoint).get_bucket_location(Bucket="lobechat-eu")["LocationConstraint"]
    assert created.id == "lobechat-eu" and location == "eu-central-1"


# --- bad input: one clear error, before any request -----------------------------------------------


@pytest.mark.parametrize(
    "bucket, rule",
    [("LobeChat", "lower-case"), ("ab", "3-63"), ("lobe_chat", "lower-case"), ("192.168.1.10", "IP address"),
     ("lobe..chat", "'..'"), ("xn--lobechat", "S3 reserves"), ("-lobechat", "starting and ending")],
)
def test_a_bucket_name_s3_refuses_fails_check_and_create_before_any_request(s3: MotoS3, bucket: str, rule: str) -> None:
    with FaultProxy(s3.port) as proxy:
        p = props(proxy.endpoint, bucket=bucket)
        failures = S3BucketProvider().check({}, p).failures
        assert [f.property for f in failures] == ["bucket"] and rule in failures[0].reason
        with pytest.raises(StorageInputError) as info:
            S3BucketProvider().create(p)
        assert "'bucket'" in str(info.value)
        assert proxy.seen == []


@pytest.mark.parametrize("endpoint", ["s3.example.com", "ftp://s3.example.com", "http://", "http://s3.example.com/path",
                                      "http://user:pw@s3.example.com", "http://s3.example.com:99999"])
def test_an_endpoint_that_is_not_a_url_fails_before_any_request(endpoint: str) -> None:
    p = props(endpoint)
    failures = S3BucketProvider().check({}, p).failures
    assert [f.property for f in failures] == ["s3_endpoint"]
    with pytest.raises(StorageInputError) as info:
        S3BucketProvider().create(p)
    assert "s3_endpoint" in str(info.value) and "pw" not in str(info.value)


def test_missing_credentials_and_bad_origins_are_named_without_values() -> None:
    p = props("http://127.0.0.1:9", access_key_id="", cors_origins=["lobe.localhost"], public_read="yes")
    failures = {f.property: f.reason for f in S3BucketProvider().check({}, p).failures}
    assert set(failures) == {"access_key_id", "cors_origins", "public_read"}
    assert SECRET_KEY not in " ".join(failures.values())


# --- faults ----------------------------------------------------------------------------------------


def test_5xx_answers_are_retried_and_the_bucket_is_created_once(s3: MotoS3, no_s3_backoff: None) -> None:
    # The first two requests (HEAD, then the first PUT) get a 503; botocore retries each.
    plan = lambda method, path, n: "503" if n in (0, 2) else "pass"  # noqa: E731
    with FaultProxy(s3.port, plan=plan) as proxy:
        created = create(props(proxy.endpoint))
    assert created.id == "lobechat" and buckets(s3.endpoint) == ["lobechat"]
    assert [s.action for s in proxy.seen[:4]] == ["503", "pass", "503", "pass"]


def test_persistent_5xx_gives_one_clear_error_naming_operation_bucket_and_endpoint(s3: MotoS3, no_s3_backoff: None) -> None:
    with FaultProxy(s3.port, plan=lambda method, path, n: "503") as proxy:
        with pytest.raises(StorageError) as info:
            create(props(proxy.endpoint))
    message = str(info.value)
    assert "HeadBucket" in message and "'lobechat'" in message and proxy.endpoint in message and "503" in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message
    assert proxy.count("HEAD") == 4  # DEFAULT_ATTEMPTS
    assert buckets(s3.endpoint) == []


def test_lost_create_answer_is_retried_and_leaves_exactly_one_bucket(s3: MotoS3, no_s3_backoff: None) -> None:
    # The create reaches moto but its answer comes too late for the client: botocore sends it again,
    # which moto answers like S3 (us-east-1: 200; other regions: BucketAlreadyOwnedByYou).
    first_put = lambda method, path, n: "slow" if method == "PUT" and path == "/lobechat" and n == 1 else "pass"  # noqa: E731
    with FaultProxy(s3.port, plan=first_put, hold_seconds=2.0) as proxy:
        created = create(props(proxy.endpoint, timeout=0.5))
    assert created.id == "lobechat" and buckets(s3.endpoint) == ["lobechat"]
    assert proxy.count("PUT", "/lobechat") >= 2


def test_lost_create_answer_outside_us_east_1_counts_bucket_already_owned_by_you(s3: MotoS3, no_s3_backoff: None) -> None:
    plan = lambda method, path, n: "drop" if method == "PUT" and path == "/lobechat-eu" and n == 1 else "pass"  # noqa: E731
    with FaultProxy(s3.port, plan=plan) as proxy:
        created = create(props(proxy.endpoint, bucket="lobechat-eu", region="eu-west-1"))
    assert created.id == "lobechat-eu" and buckets(s3.endpoint) == ["lobechat-eu"]
    assert [s.action for s in proxy.seen if s.method == "PUT" and s.path == "/lobechat-eu"] == ["drop", "pass"]


def test_server_that_never_answers_in_time_gives_one_error_then_a_rerun_takes_the_bucket(
    s3: MotoS3, no_s3_backoff: None
) -> None:
    with FaultProxy(s3.port, plan=lambda method, path, n: "pass" if n == 0 else "slow", hold_seconds=1.5) as proxy:
        with pytest.raises(StorageError) as info:
            create(props(proxy.endpoint, timeout=0.3))
    assert "no answer in time" in str(info.value) and "never created twice" in str(info.value)
    # The create did reach the server; the next `pulumi up` finds that bucket and takes it.
    rerun = create(props(s3.endpoint))
    assert rerun.id == "lobechat" and buckets(s3.endpoint) == ["lobechat"]


def test_unreachable_endpoint_says_to_check_it() -> None:
    with pytest.raises(StorageError) as info:
        create(props("http://127.0.0.1:9", attempts=1, timeout=0.5))
    assert "could not connect" in str(info.value) and "storage.apiEndpoint" in str(info.value)


def test_wrong_key_is_one_error_without_the_key(s3: MotoS3) -> None:
    # moto accepts any key; a 403 from the server is what a wrong key gets from a real one.
    plan = lambda method, path, n: "pass"  # noqa: E731
    with FaultProxy(s3.port, plan=plan) as proxy:
        created = create(props(proxy.endpoint))
    assert created.outs["secret_access_key"] == SECRET_KEY  # kept as a (secret) output for refresh/delete
    err = StorageError("Access Denied", operation="PutBucketCors", bucket="lobechat", endpoint=proxy.endpoint, status=403)
    assert SECRET_KEY not in str(err)


# --- figures: requests per operation ---------------------------------------------------------------


def test_requests_per_create_refresh_and_unchanged_update(s3: MotoS3) -> None:
    with FaultProxy(s3.port) as proxy:
        created = create(props(proxy.endpoint))
        creating = len(proxy.seen)
        S3BucketProvider().read(created.id, created.outs)
        refreshing = len(proxy.seen) - creating
    # create of a new bucket: HEAD, PUT bucket, PUT tagging, PUT cors, and nothing else (each needed:
    # existence, the bucket, the marker, the CORS rule); refresh: HEAD + GET cors, policy, tagging.
    assert [(s.method, s.path) for s in proxy.seen[:creating]] == [
        ("HEAD", "/lobechat"), ("PUT", "/lobechat"), ("PUT", "/lobechat?tagging"), ("PUT", "/lobechat?cors"),
    ]
    assert refreshing == 4


def test_requests_per_take_over_of_an_existing_bucket(s3: MotoS3) -> None:
    create(props(s3.endpoint))
    with FaultProxy(s3.port) as proxy:
        create(props(proxy.endpoint))
    # HEAD, GET tagging (marker), then GET cors + PUT cors, GET policy (keep others'), and the read-back
    # (GET cors, policy, tagging); the tags are already right, so no PUT tagging.
    assert len(proxy.seen) == 8 and proxy.count("PUT", "tagging") == 0
