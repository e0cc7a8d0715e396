"""``S3AccessKey``: an AWS IAM user with an access key limited to LobeChat's bucket (``storage:AccessKey``).

Only AWS S3 has this API (IAM); Cloudflare R2 scopes keys through Cloudflare's own API, and RustFS
through its admin API, so there the operator gives a scoped key (``storageLobechat*``) instead.

The user lives under the IAM path ``/lobechat-logto/`` and carries the tags ``lobechat-logto:managed-by``
and ``lobechat-logto:owner`` (``<project>/<stack>``); a user of that name without them, or of another
stack, is refused. Its one inline policy (``lobechat-bucket``) allows the object calls LobeChat makes
on ``<bucket>/*`` and listing the bucket, nothing else. The secret of an access key is returned only
when it is created, so a re-run after a lost state creates a new key (deleting the oldest when the
user already has the two IAM allows); the old one stops working once LobeChat has the new one.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.storage_resources.bucket import MANAGED_BY, TAG_MANAGED_BY, TAG_OWNER
from components.storage_resources.client import (
    StorageError,
    StorageInputError,
    aws_client,
    error_code,
    validate_bucket,
    validate_endpoint,
)

log = logging.getLogger(__name__)

IAM_PATH = "/lobechat-logto/"
POLICY_NAME = "lobechat-bucket"
SECRET_OUTPUTS = ("key_id", "key_secret", "admin_access_key_id", "admin_secret_access_key")
_USER_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_NOT_FOUND = ("NoSuchEntity",)


def bucket_policy(bucket: str, public_read: bool = False) -> dict[str, Any]:
    """What LobeChat does with its bucket: objects under it (presigned GET/PUT are signed with this
    key, so they carry its rights), multipart uploads, and listing/locating the bucket."""
    object_actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                      "s3:ListMultipartUploadParts"]
    if public_read:
        object_actions.append("s3:PutObjectAcl")  # S3_SET_ACL=1 uploads with ACL public-read
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "LobeChatObjects", "Effect": "Allow", "Action": object_actions, "Resource": [f"arn:aws:s3:::{bucket}/*"]},
            {"Sid": "LobeChatBucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": [f"arn:aws:s3:::{bucket}"]},
        ],
    }


def _problems(props: Mapping[str, Any]) -> list[StorageInputError]:
    found: list[StorageInputError] = []
    for key, check in (("bucket", validate_bucket), ("iam_endpoint", validate_endpoint)):
        try:
            check(props.get(key))
        except StorageInputError as exc:
            found.append(StorageInputError(key, str(exc).split(f"'{exc.field}' ", 1)[-1]))
    name = props.get("user_name")
    if not isinstance(name, str) or not _USER_NAME.match(name):
        found.append(StorageInputError("user_name", "must be 1-64 letters, digits or + = , . @ _ - (IAM user names)"))
    for key in ("admin_access_key_id", "admin_secret_access_key"):
        if not isinstance(props.get(key), str) or not props.get(key):
            found.append(StorageInputError(key, "is required (credentials allowed to manage IAM users)"))
    return found


class _Iam:
    def __init__(self, props: Mapping[str, Any]) -> None:
        self.props = props
        self.user = str(props["user_name"])
        self.client = aws_client("iam", props, endpoint_key="iam_endpoint",
                                 key_id_key="admin_access_key_id", secret_key="admin_secret_access_key")

    def call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            raise _IamFailed(exc, operation, code) from None


class _IamFailed(Exception):
    def __init__(self, exc: BaseException, operation: str, code: str | None) -> None:
        super().__init__(operation)
        self.exc, self.operation, self.code = exc, operation, code

    def error(self, iam: _Iam) -> StorageError:
        from components.storage_resources.client import as_storage_error

        err = as_storage_error(self.exc, "IAM " + "".join(p.capitalize() for p in self.operation.split("_")),
                               {"bucket": iam.props.get("bucket"), "s3_endpoint": iam.props.get("iam_endpoint")})
        return err


def _owner(props: Mapping[str, Any]) -> str:
    return f"{props.get('project') or ''}/{props.get('stack') or ''}"


def _ensure_user(iam: _Iam) -> None:
    tags = [{"Key": TAG_MANAGED_BY, "Value": MANAGED_BY}, {"Key": TAG_OWNER, "Value": _owner(iam.props)}]
    try:
        user = iam.call("get_user", UserName=iam.user)["User"]
    except _IamFailed as failed:
        if failed.code not in _NOT_FOUND:
            raise failed.error(iam) from None
        try:
            iam.call("create_user", UserName=iam.user, Path=IAM_PATH, Tags=tags)
            return
        except _IamFailed as again:
            if again.code != "EntityAlreadyExists":  # a lost answer, retried: it is there now
                raise again.error(iam) from None
            user = iam.call("get_user", UserName=iam.user)["User"]
    live = {t["Key"]: t["Value"] for t in user.get("Tags") or []}
    if live.get(TAG_MANAGED_BY) != MANAGED_BY or live.get(TAG_OWNER) != _owner(iam.props):
        owner = live.get(TAG_OWNER) if live.get(TAG_MANAGED_BY) == MANAGED_BY else "nobody (no marker of this project)"
        raise StorageError(
            f"the IAM user '{iam.user}' exists and is managed by {owner}",
            operation="IAM GetUser", bucket=str(iam.props.get("bucket")), endpoint=iam.props.get("iam_endpoint"),
            hint="Delete or rename that user, or set storageLobechatAccessKeyId/SecretAccessKey instead of storage.lobechatKey: iam",
        )


def _put_policy(iam: _Iam) -> None:
    policy = bucket_policy(str(iam.props["bucket"]), bool(iam.props.get("public_read")))
    try:
        iam.call("put_user_policy", UserName=iam.user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    except _IamFailed as failed:
        raise failed.error(iam) from None


def _new_key(iam: _Iam) -> dict[str, str]:
    try:
        keys = iam.call("list_access_keys", UserName=iam.user)["AccessKeyMetadata"]
        # IAM allows two keys per user; their secrets are unknown to this run, so the oldest goes.
        for old in sorted(keys, key=lambda k: k.get("CreateDate") or "")[: max(0, len(keys) - 1)]:
            iam.call("delete_access_key", UserName=iam.user, AccessKeyId=old["AccessKeyId"])
        key = iam.call("create_access_key", UserName=iam.user)["AccessKey"]
    except _IamFailed as failed:
        raise failed.error(iam) from None
    return {"key_id": key["AccessKeyId"], "key_secret": key["SecretAccessKey"]}


def _live_policy_bucket(iam: _Iam) -> str | None:
    try:
        document = iam.call("get_user_policy", UserName=iam.user, PolicyName=POLICY_NAME)["PolicyDocument"]
    except _IamFailed as failed:
        if failed.code in _NOT_FOUND:
            return None
        raise failed.error(iam) from None
    if isinstance(document, str):
        document = json.loads(document)
    for statement in document.get("Statement") or []:
        if statement.get("Sid") == "LobeChatBucket":
            resources = statement.get("Resource") or []
            resources = [resources] if isinstance(resources, str) else resources
            for resource in resources:
                return str(resource).removeprefix("arn:aws:s3:::")
    return None


class S3AccessKeyProvider(ResourceProvider):
    """Dynamic provider for ``S3AccessKey``. Stateless: every method builds its own IAM client."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Bad bucket, endpoint or user name: a failure before any request."""
        return CheckResult(news, [CheckFailure(p.field, str(p)) for p in _problems(news)])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new user name replaces; a new bucket or public_read rewrites the policy in place."""
        replaces = ["user_name"] if olds.get("user_name") != news.get("user_name") else []
        changed = [k for k in ("bucket", "public_read", "iam_endpoint", "admin_access_key_id", "admin_secret_access_key")
                   if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """The user (taken over when it is this stack's), its policy, a new access key."""
        problems = _problems(props)
        if problems:
            raise problems[0]
        iam = _Iam(props)
        _ensure_user(iam)
        _put_policy(iam)
        return CreateResult(iam.user, {**props, **_new_key(iam)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Gone when the user or this resource's key was deleted outside (the next up makes new ones)."""
        iam = _Iam({**props, "user_name": id_})
        try:
            keys = iam.call("list_access_keys", UserName=id_)["AccessKeyMetadata"]
        except _IamFailed as failed:
            if failed.code in _NOT_FOUND:
                return ReadResult("", {})
            raise failed.error(iam) from None
        if props.get("key_id") not in {k["AccessKeyId"] for k in keys}:
            return ReadResult("", {})
        outs = {**props, "bucket": _live_policy_bucket(iam) or ""}
        inputs = {k: outs.get(k) for k in ("bucket", "user_name", "public_read", "iam_endpoint", "region",
                                            "admin_access_key_id", "admin_secret_access_key", "project", "stack", "resource_name")}
        return ReadResult(id_, outs, inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Rewrite the policy; the key stays (its secret is only known from the create)."""
        problems = _problems(news)
        if problems:
            raise problems[0]
        _put_policy(_Iam({**news, "user_name": id_}))
        return UpdateResult({**olds, **news, "key_id": olds["key_id"], "key_secret": olds["key_secret"]})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Delete the key, the policy and the user; whatever is already gone counts as done."""
        iam = _Iam({**props, "user_name": id_})
        steps = (
            ("delete_access_key", {"UserName": id_, "AccessKeyId": props.get("key_id") or "none"}),
            ("delete_user_policy", {"UserName": id_, "PolicyName": POLICY_NAME}),
            ("delete_user", {"UserName": id_}),
        )
        for operation, kwargs in steps:
            try:
                iam.call(operation, **kwargs)
            except _IamFailed as failed:
                if failed.code in _NOT_FOUND:
                    continue
                if operation == "delete_user" and failed.code == "DeleteConflict":
                    log.warning("IAM user %s still has other keys or policies; left in place", id_)
                    return
                raise failed.error(iam) from None


class S3AccessKey(pulumi.dynamic.Resource, module="storage", name="AccessKey"):
    """An IAM user and access key that may only use ``bucket`` (AWS S3). Outputs ``key_id`` and
    ``key_secret`` are secret."""

    key_id: pulumi.Output[str]
    key_secret: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        bucket: pulumi.Input[str],
        user_name: str,
        admin_access_key_id: pulumi.Input[str],
        admin_secret_access_key: pulumi.Input[str],
        region: str = "us-east-1",
        public_read: bool = False,
        iam_endpoint: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "project": pulumi.get_project(),
            "stack": pulumi.get_stack(),
            "resource_name": resource_name,
            "bucket": bucket,
            "user_name": user_name,
            "region": region,
            "public_read": public_read,
            "iam_endpoint": iam_endpoint,
            "admin_access_key_id": pulumi.Output.secret(admin_access_key_id),
            "admin_secret_access_key": pulumi.Output.secret(admin_secret_access_key),
            "key_id": None,
            "key_secret": None,
        }
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(S3AccessKeyProvider(), resource_name, props, pulumi.ResourceOptions.merge(opts, secret_opts))
        self.key_id = pulumi.Output.secret(self.key_id)
        self.key_secret = pulumi.Output.secret(self.key_secret)
