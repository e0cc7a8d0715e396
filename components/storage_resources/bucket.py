"""``S3Bucket``: LobeChat's bucket, with its CORS rule and access policy, through the S3 API.

Ownership marker: bucket tags ``lobechat-logto:managed-by`` / ``lobechat-logto:owner``
(``<project>/<stack>``) / ``lobechat-logto:resource``. ``create`` first asks whether the bucket exists:

- it does, with this stack's marker: taken over (a re-run after a lost state or a lost response);
- it does, with another stack's marker: refused;
- it does, without a marker: taken over when it is empty (what an interrupted create leaves) or when
  ``adopt_existing`` is set; otherwise refused, with the key to set;
- it does not: created. A create whose answer was lost is retried by botocore and then answers
  ``BucketAlreadyOwnedByYou``, which counts as created; ``BucketAlreadyExists`` (someone else's
  name) is an error. S3 bucket names are unique, so there is never a second bucket.

The access LobeChat needs: private by default (LobeChat hands out presigned URLs), one CORS rule
(id ``lobechat``) for the LobeChat origin (GET, PUT, HEAD: the browser uploads with presigned PUTs and
reads files back), and, only with ``public_read``, a bucket-policy statement (sid
``LobeChatPublicRead``) granting ``s3:GetObject`` on ``<file path>/*``. Rules and statements of others
are kept. ``delete`` never empties a bucket: users' files are not the stack's to throw away.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.storage_resources.client import (
    StorageError,
    StorageInputError,
    as_storage_error,
    error_code,
    s3_client,
    validate_bucket,
    validate_endpoint,
)

log = logging.getLogger(__name__)

MANAGED_BY = "lobechat-logto"
TAG_MANAGED_BY = "lobechat-logto:managed-by"
TAG_OWNER = "lobechat-logto:owner"
TAG_RESOURCE = "lobechat-logto:resource"
CORS_RULE_ID = "lobechat"
POLICY_SID = "LobeChatPublicRead"
CORS_METHODS = ("GET", "PUT", "HEAD")

SECRET_OUTPUTS = ("access_key_id", "secret_access_key")
CONNECTION_KEYS = ("s3_endpoint", "region", "path_style", "access_key_id", "secret_access_key")
DESIRED_KEYS = ("cors_origins", "public_read", "public_prefix")
MARKER_KEYS = ("project", "stack", "resource_name")
REPLACING_KEYS = ("bucket",)
CLIENT_KEYS = ("timeout", "attempts")
"""Client-side tuning: never part of a diff."""

_NOT_FOUND = {"404", "NoSuchBucket", "NotFound"}


def _is_unknown(value: Any) -> bool:
    from pulumi.runtime import rpc

    if value == rpc.UNKNOWN:
        return True
    if isinstance(value, (list, tuple)):
        return any(_is_unknown(v) for v in value)
    return False


def _problems(props: Mapping[str, Any]) -> list[StorageInputError]:
    """Every input S3 would refuse, before any request (unknown values are skipped)."""
    found: list[StorageInputError] = []

    def run(key: str, check: Any) -> None:
        if _is_unknown(props.get(key)):
            return
        try:
            check(props.get(key))
        except StorageInputError as exc:
            found.append(exc)

    run("bucket", validate_bucket)
    run("s3_endpoint", validate_endpoint)

    def origins(value: Any) -> None:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise StorageInputError("cors_origins", "must be a list of origins such as https://chat.example.com")
        for origin in value:
            try:
                validate_endpoint(origin)
            except StorageInputError:
                raise StorageInputError("cors_origins", f"holds '{origin}', which is not an origin such as https://chat.example.com") from None

    run("cors_origins", origins)

    def flag(key: str) -> Any:
        def check(value: Any) -> None:
            if value is not None and not isinstance(value, bool):
                raise StorageInputError(key, "must be true or false")
        return check

    run("public_read", flag("public_read"))
    run("adopt_existing", flag("adopt_existing"))
    run("path_style", flag("path_style"))

    def prefix(value: Any) -> None:
        if not isinstance(value, str) or not value or value.startswith("/") or "*" in value:
            raise StorageInputError("public_prefix", "must be a key prefix such as 'files' (no leading '/', no '*')")

    run("public_prefix", prefix)
    for key in ("access_key_id", "secret_access_key"):
        value = props.get(key)
        if not _is_unknown(value) and (not isinstance(value, str) or not value):
            # Never the value: only that it is missing.
            found.append(StorageInputError(key, "is required (the credentials the stack manages the bucket with)"))
    return found


def marker_tags(props: Mapping[str, Any]) -> dict[str, str]:
    """The ownership tags of this project, stack and resource."""
    return {
        TAG_MANAGED_BY: MANAGED_BY,
        TAG_OWNER: f"{props.get('project') or ''}/{props.get('stack') or ''}",
        TAG_RESOURCE: str(props.get("resource_name") or ""),
    }


def cors_rule(origins: Sequence[str]) -> dict[str, Any]:
    """The CORS rule LobeChat's browser side needs (presigned PUT uploads, GET/HEAD reads)."""
    return {
        "ID": CORS_RULE_ID,
        "AllowedOrigins": list(origins),
        "AllowedMethods": list(CORS_METHODS),
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3600,
    }


def public_read_statement(bucket: str, prefix: str) -> dict[str, Any]:
    """Anonymous ``s3:GetObject`` on LobeChat's file path, nothing else (no listing)."""
    return {
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": "*",
        "Action": ["s3:GetObject"],
        "Resource": [f"arn:aws:s3:::{bucket}/{prefix.rstrip('/')}/*"],
    }


class _Bucket:
    """The S3 calls of one provider method on one bucket (a fresh client each time)."""

    def __init__(self, props: Mapping[str, Any]) -> None:
        self.props = props
        self.name = str(props["bucket"])
        self.client = s3_client(props)

    def call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(Bucket=self.name, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise _Failed(exc, operation) from None

    def exists(self) -> bool:
        try:
            self.call("head_bucket")
            return True
        except _Failed as failed:
            if failed.code in _NOT_FOUND:
                return False
            if failed.code in ("403", "AccessDenied"):
                raise StorageError(
                    "the bucket exists but these credentials may not use it (another account's bucket, "
                    "or a key without rights on it)",
                    operation="HeadBucket", bucket=self.name, endpoint=self.props.get("s3_endpoint"), status=403,
                    hint="Choose another storage.bucket (names are global on AWS and R2) or use credentials of its owner",
                ) from None
            raise failed.error(self.props)

    def tags(self) -> dict[str, str]:
        try:
            answer = self.call("get_bucket_tagging")
        except _Failed as failed:
            if failed.code in ("NoSuchTagSet", "NoSuchTagSetError"):
                return {}
            raise failed.error(self.props)
        return {t["Key"]: t["Value"] for t in answer.get("TagSet") or []}

    def cors_rules(self) -> list[dict[str, Any]]:
        try:
            return list(self.call("get_bucket_cors").get("CORSRules") or [])
        except _Failed as failed:
            if failed.code == "NoSuchCORSConfiguration":
                return []
            raise failed.error(self.props)

    def policy(self) -> dict[str, Any] | None:
        try:
            text = self.call("get_bucket_policy").get("Policy")
        except _Failed as failed:
            if failed.code == "NoSuchBucketPolicy":
                return None
            raise failed.error(self.props)
        try:
            return json.loads(text) if text else None
        except ValueError:
            return None

    def is_empty(self) -> bool:
        try:
            return not self.call("list_objects_v2", MaxKeys=1).get("KeyCount")
        except _Failed as failed:
            raise failed.error(self.props)

    def create(self) -> None:
        region = str(self.props.get("region") or "us-east-1")
        kwargs: dict[str, Any] = {}
        if region not in ("us-east-1", "auto"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.call("create_bucket", **kwargs)
        except _Failed as failed:
            if failed.code == "BucketAlreadyOwnedByYou":
                # A retry after a lost answer (or a create racing ours from this account): it is ours.
                log.info("bucket %s already owned by these credentials; taking it", self.name)
                return
            if failed.code == "BucketAlreadyExists":
                raise StorageError(
                    "the name is taken by another account (bucket names are global)",
                    operation="CreateBucket", bucket=self.name, endpoint=self.props.get("s3_endpoint"),
                    status=409, code="BucketAlreadyExists", hint="Choose another storage.bucket",
                ) from None
            raise failed.error(self.props)


class _Failed(Exception):
    def __init__(self, exc: BaseException, operation: str) -> None:
        super().__init__(operation)
        self.exc = exc
        self.operation = operation
        self.code = error_code(exc)

    def error(self, props: Mapping[str, Any]) -> StorageError:
        return as_storage_error(self.exc, _operation_name(self.operation), props)


def _operation_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_")).replace("V2", "V2")


def _owner_of(tags: Mapping[str, str]) -> tuple[str, str] | None:
    if tags.get(TAG_MANAGED_BY) != MANAGED_BY:
        return None
    return tags.get(TAG_OWNER, ""), tags.get(TAG_RESOURCE, "")


def _take_over_check(bucket: _Bucket, props: Mapping[str, Any]) -> dict[str, str]:
    """Decide whether an existing bucket may become this resource's; return its live tags."""
    tags = bucket.tags()
    owner = _owner_of(tags)
    ours = marker_tags(props)[TAG_OWNER]
    if owner is not None:
        if owner[0] != ours:
            raise StorageError(
                f"the bucket is managed by the stack {owner[0]}",
                operation="CreateBucket", bucket=bucket.name, endpoint=props.get("s3_endpoint"),
                hint="Remove it from that stack first, or choose another storage.bucket",
            )
        return tags
    if props.get("adopt_existing"):
        log.info("adopting the existing bucket %s", bucket.name)
        return tags
    if bucket.is_empty():
        # What a create interrupted before its tags were written leaves behind: nothing to lose.
        log.info("taking over the existing empty bucket %s (no ownership marker)", bucket.name)
        return tags
    raise StorageError(
        "the bucket already exists, holds objects and carries no marker of this stack",
        operation="CreateBucket", bucket=bucket.name, endpoint=props.get("s3_endpoint"),
        hint="To let this stack manage it (its files are kept), set "
        "`pulumi config set --path 'lobechat-logto:storage.adoptExisting' true`; or choose another storage.bucket",
    )


def _apply(
    bucket: _Bucket, props: Mapping[str, Any], live_tags: Mapping[str, str] | None = None, *, fresh: bool = False
) -> None:
    """Bring tags, CORS and policy to the desired state, keeping what others set.

    ``fresh``: the bucket was just created, so it has no CORS rule or policy of anyone to keep (two
    GETs saved).
    """
    tags = dict(bucket.tags() if live_tags is None else live_tags)
    wanted_tags = {**tags, **marker_tags(props)}
    if wanted_tags != tags:
        _put(bucket, "put_bucket_tagging", Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in sorted(wanted_tags.items())]})

    rules = [] if fresh else [r for r in bucket.cors_rules() if r.get("ID") != CORS_RULE_ID]
    origins = list(props.get("cors_origins") or [])
    if origins:
        rules.append(cors_rule(origins))
    if rules:
        _put(bucket, "put_bucket_cors", CORSConfiguration={"CORSRules": rules})
    elif not fresh:
        _put(bucket, "delete_bucket_cors")

    live = None if fresh else bucket.policy()
    statements = [s for s in (live or {}).get("Statement") or [] if s.get("Sid") != POLICY_SID]
    if props.get("public_read"):
        if not props.get("s3_endpoint"):
            _allow_public_on_aws(bucket)
        statements.append(public_read_statement(bucket.name, str(props.get("public_prefix") or "files")))
    if statements:
        policy = {"Version": (live or {}).get("Version", "2012-10-17"), "Statement": statements}
        if policy != live:
            _put(bucket, "put_bucket_policy", Policy=json.dumps(policy))
    elif live is not None:
        _put(bucket, "delete_bucket_policy")


def _allow_public_on_aws(bucket: _Bucket) -> None:
    # AWS blocks public policies and object ACLs on new buckets; LobeChat with S3_SET_ACL=1 uploads with
    # ACL public-read, so both must be allowed (only when the stage asked for public read).
    _put(bucket, "put_public_access_block", PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False, "RestrictPublicBuckets": False,
    })
    _put(bucket, "put_bucket_ownership_controls", OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})


def _put(bucket: _Bucket, operation: str, **kwargs: Any) -> None:
    try:
        bucket.call(operation, **kwargs)
    except _Failed as failed:
        raise failed.error(bucket.props)


def _live_outputs(bucket: _Bucket, props: Mapping[str, Any]) -> dict[str, Any]:
    """What the bucket is now: our CORS origins, whether our public statement is there, the marker."""
    rule = next((r for r in bucket.cors_rules() if r.get("ID") == CORS_RULE_ID), None)
    policy = bucket.policy() or {}
    tags = bucket.tags()
    owner = _owner_of(tags)
    project, _, stack = (owner[0] if owner else "/").partition("/")
    return {
        **_carried(props),
        "bucket": bucket.name,
        "cors_origins": list((rule or {}).get("AllowedOrigins") or []),
        "public_read": any(s.get("Sid") == POLICY_SID for s in policy.get("Statement") or []),
        "public_prefix": props.get("public_prefix") or "files",
        "project": project if owner else "",
        "stack": stack if owner else "",
        "resource_name": owner[1] if owner else "",
    }


def _desired_outputs(bucket: _Bucket, props: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs of a bucket this call just created and configured (nothing else can have changed it)."""
    return {
        **_carried(props),
        "bucket": bucket.name,
        "cors_origins": list(props.get("cors_origins") or []),
        "public_read": bool(props.get("public_read")),
        "public_prefix": props.get("public_prefix") or "files",
        "project": str(props.get("project") or ""),
        "stack": str(props.get("stack") or ""),
        "resource_name": str(props.get("resource_name") or ""),
    }


def _carried(props: Mapping[str, Any]) -> dict[str, Any]:
    # Connection and options travel into the outputs: refresh and delete only get the outputs.
    keys = (*CONNECTION_KEYS, "adopt_existing", *CLIENT_KEYS)
    return {k: props.get(k) for k in keys if k in props}


def _differs(olds: Mapping[str, Any], news: Mapping[str, Any], key: str) -> bool:
    new = news.get(key)
    if _is_unknown(new):
        return True
    old = olds.get(key)
    norm = lambda v: (list(v) if isinstance(v, (list, tuple)) else (None if v == "" else v))  # noqa: E731
    return norm(old) != norm(new)


class S3BucketProvider(ResourceProvider):
    """Dynamic provider for ``S3Bucket``. Stateless: every method builds its own client."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate locally: a bad bucket name or endpoint fails the preview before any request."""
        return CheckResult(news, [CheckFailure(p.field, str(p)) for p in _problems(news)])

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new bucket name replaces; CORS, policy, marker and credentials update in place."""
        replaces = [k for k in REPLACING_KEYS if _differs(olds, news, k)]
        changed = [k for k in (*DESIRED_KEYS, *MARKER_KEYS, *CONNECTION_KEYS, "adopt_existing") if _differs(olds, news, k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Take over this stack's (or an adoptable) bucket, or create it; then apply CORS and policy."""
        problems = _problems(props)
        if problems:
            raise problems[0]
        bucket = _Bucket(props)
        if bucket.exists():
            _apply(bucket, props, _take_over_check(bucket, props))
            return CreateResult(bucket.name, _live_outputs(bucket, props))
        # New: HEAD, PUT bucket, PUT tagging, PUT cors (+ PUT policy with public_read) and no read-back.
        bucket.create()
        _apply(bucket, props, {}, fresh=True)
        return CreateResult(bucket.name, _desired_outputs(bucket, props))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Live state, so a refresh shows drift; a bucket deleted outside the stack reads as gone."""
        bucket = _Bucket({**props, "bucket": id_})
        if not bucket.exists():
            return ReadResult("", {})
        outs = _live_outputs(bucket, props)
        inputs = {k: outs.get(k) for k in ("bucket", *DESIRED_KEYS, *MARKER_KEYS, *CONNECTION_KEYS, "adopt_existing")}
        inputs.update({k: props[k] for k in CLIENT_KEYS if k in props})
        return ReadResult(id_, outs, inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Re-apply the desired CORS rule, policy statement and marker; return every output."""
        problems = _problems(news)
        if problems:
            raise problems[0]
        bucket = _Bucket({**news, "bucket": id_})
        _apply(bucket, news)
        return UpdateResult({**olds, **news, **_live_outputs(bucket, news)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Delete an empty bucket; already gone is done; a bucket with files is never emptied."""
        bucket = _Bucket({**props, "bucket": id_})
        try:
            bucket.call("delete_bucket")
        except _Failed as failed:
            if failed.code in _NOT_FOUND:
                return
            if failed.code == "BucketNotEmpty":
                raise StorageError(
                    "the bucket still holds files, which the stack never deletes",
                    operation="DeleteBucket", bucket=id_, endpoint=props.get("s3_endpoint"), status=409,
                    code="BucketNotEmpty",
                    hint="Empty it yourself if the files may go (e.g. `aws s3 rm --recursive s3://<bucket>`), "
                    "or keep it and drop it from the state with `pulumi state delete <urn>`",
                ) from None
            raise failed.error(props)


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


class S3Bucket(pulumi.dynamic.Resource, module="storage", name="Bucket"):
    """An S3 bucket for LobeChat's files, with its CORS rule and access policy.

    Args:
        bucket: the bucket's name (S3 naming rules; checked before any request).
        region: its region (``us-east-1`` by default; Cloudflare R2: ``auto``).
        endpoint: the S3 API this program calls (None: AWS S3).
        path_style: path-style addressing (MinIO/RustFS-style servers).
        access_key_id / secret_access_key: credentials allowed to create and configure it (secret).
        cors_origins: origins allowed to upload and read from the browser (LobeChat's URL).
        public_read: grant anonymous reads of ``<public_prefix>/*`` (off: presigned URLs only).
        public_prefix: LobeChat's file path (``NEXT_PUBLIC_S3_FILE_PATH``, ``files``).
        adopt_existing: take over an existing bucket without this stack's marker.

    Outputs: ``bucket``, ``cors_origins``, ``public_read`` and the credentials (secret).
    """

    bucket: pulumi.Output[str]
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        bucket: pulumi.Input[str],
        access_key_id: pulumi.Input[str],
        secret_access_key: pulumi.Input[str],
        cors_origins: pulumi.Input[Sequence[pulumi.Input[str]]],
        endpoint: pulumi.Input[str] | None = None,
        region: pulumi.Input[str] = "us-east-1",
        path_style: bool = True,
        public_read: bool = False,
        public_prefix: str = "files",
        adopt_existing: bool = False,
        timeout: float | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "project": pulumi.get_project(),
            "stack": pulumi.get_stack(),
            "resource_name": resource_name,
            "bucket": bucket,
            "region": region,
            "s3_endpoint": endpoint,
            "path_style": path_style,
            "access_key_id": pulumi.Output.secret(access_key_id),
            "secret_access_key": pulumi.Output.secret(secret_access_key),
            "cors_origins": _as_list(cors_origins),
            "public_read": public_read,
            "public_prefix": public_prefix,
            "adopt_existing": adopt_existing,
        }
        if timeout is not None:
            props["timeout"] = timeout
        secret_opts = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(S3BucketProvider(), resource_name, props, pulumi.ResourceOptions.merge(opts, secret_opts))
        # additional_secret_outputs is not applied under mocks; keep the secretness visible there too.
        self.access_key_id = pulumi.Output.secret(self.access_key_id)
        self.secret_access_key = pulumi.Output.secret(self.secret_access_key)
