"""The S3 API as the storage resources use it: input checks, one boto3 client per call, clear errors.

Every provider method builds its client from the resource's own (secret) properties; nothing is kept
on a provider object. Retries are botocore's ``standard`` mode (connection errors, timeouts, 5xx and
throttling, with exponential backoff); what is left after them becomes one :class:`StorageError`
naming the S3 operation, the bucket and the endpoint, never a credential.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from components.config.storage import bucket_name_problem

DEFAULT_TIMEOUT = 10.0
DEFAULT_ATTEMPTS = 4
"""Total attempts per request (botocore ``total_max_attempts``): the first try and three retries."""

_SESSION_LOCK = threading.Lock()
_SESSION: Any = None
# One botocore session per provider process: loading its data files is the slow part of a client;
# it holds no credentials (they are passed per client).


class StorageError(RuntimeError):
    """An S3 call failed after retries, or its input is invalid; the message says what to do."""

    def __init__(
        self,
        message: str,
        *,
        operation: str | None = None,
        bucket: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.operation = operation
        self.bucket = bucket
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.hint = hint
        where = f"S3 {operation} on bucket '{bucket}' at {endpoint or 'AWS S3'}" if operation else "S3"
        detail = f" (HTTP {status}{', ' + code if code else ''})" if status or code else ""
        text = f"{where}: {message}{detail}"
        if hint:
            text += f". {hint}"
        super().__init__(text)


class StorageInputError(StorageError):
    """A resource input S3 would refuse (raised before any request)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        RuntimeError.__init__(self, f"storage bucket input '{field}' {reason}")
        self.operation = self.bucket = self.endpoint = self.code = self.hint = None
        self.status = None


def validate_endpoint(value: Any) -> str | None:
    """``None``/"" (AWS S3) or an ``http(s)://host[:port]`` origin; raises :class:`StorageInputError`."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise StorageInputError("s3_endpoint", "must be a URL string such as https://s3.example.com")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise StorageInputError("s3_endpoint", "is not a valid URL; expected e.g. https://s3.example.com") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or "://" not in value:
        raise StorageInputError("s3_endpoint", "must be an http:// or https:// URL with a host name, e.g. https://s3.example.com")
    if parts.username or parts.password:
        raise StorageInputError("s3_endpoint", "must not contain credentials (user:password@)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise StorageInputError("s3_endpoint", "must be an origin without a path, query or fragment")
    return f"{parts.scheme}://{parts.netloc}"


def validate_bucket(value: Any) -> str:
    """A bucket name S3 accepts; raises :class:`StorageInputError` naming the rule otherwise."""
    reason = bucket_name_problem(value)
    if reason:
        raise StorageInputError("bucket", reason)
    return value


def s3_client(props: Mapping[str, Any]) -> Any:
    """A boto3 S3 client for one provider call, from the resource's properties."""
    return aws_client("s3", props)


def aws_client(
    service: str,
    props: Mapping[str, Any],
    *,
    endpoint_key: str = "s3_endpoint",
    key_id_key: str = "access_key_id",
    secret_key: str = "secret_access_key",
) -> Any:
    """A botocore client of ``service`` (``s3``, ``iam``) for one provider call."""
    import botocore.session
    from botocore.config import Config

    global _SESSION
    endpoint = validate_endpoint(props.get(endpoint_key))
    timeout = float(props.get("timeout") or DEFAULT_TIMEOUT)
    config = Config(
        region_name=str(props.get("region") or "us-east-1") if props.get("region") != "auto" or service == "s3" else "us-east-1",
        signature_version="s3v4" if service == "s3" else None,
        s3={"addressing_style": "path" if props.get("path_style", True) else "virtual"},
        retries={"mode": "standard", "total_max_attempts": int(props.get("attempts") or DEFAULT_ATTEMPTS)},
        connect_timeout=timeout,
        read_timeout=timeout,
        # Send and check checksums only where S3 requires them: several S3-compatible servers refuse
        # the CRC headers newer botocore adds by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = botocore.session.get_session()
        return _SESSION.create_client(
            service,
            endpoint_url=endpoint,
            aws_access_key_id=str(props.get(key_id_key) or ""),
            aws_secret_access_key=str(props.get(secret_key) or ""),
            config=config,
        )


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ``ClientError`` (``NoSuchBucket``, ``404``, ...)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str((response.get("Error") or {}).get("Code") or "") or None
    return None


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of a botocore ``ClientError``."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return int(status) if status else None
    return None


_HINTS = {
    403: "Check the access key and secret (storageAccessKeyId / storageSecretAccessKey, or the generated "
    "root credentials of the container server) and that they may manage this bucket",
    "InvalidAccessKeyId": "The access key id is unknown to this S3 server; set the right one",
    "SignatureDoesNotMatch": "The secret access key does not match the access key id; set the right one",
}


def as_storage_error(exc: BaseException, operation: str, props: Mapping[str, Any]) -> StorageError:
    """Translate a boto3/botocore failure into a :class:`StorageError` (no credential in it)."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    bucket = str(props.get("bucket") or "")
    endpoint = props.get("s3_endpoint") or None
    if isinstance(exc, ClientError):
        status, code = error_status(exc), error_code(exc)
        hint = _HINTS.get(code or "") or _HINTS.get(status or 0)
        if status and status >= 500:
            hint = "The S3 server kept failing after retries; check its logs and run `pulumi up` again"
        message = str((exc.response.get("Error") or {}).get("Message") or "request refused")
        return StorageError(message, operation=operation, bucket=bucket, endpoint=endpoint, status=status, code=code, hint=hint)
    if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)):
        return StorageError(
            "no answer in time after retries", operation=operation, bucket=bucket, endpoint=endpoint,
            hint="Is the S3 server up and reachable from here? Run `pulumi up` again: an existing bucket "
            "is found and taken over, never created twice",
        )
    if isinstance(exc, EndpointConnectionError):
        return StorageError(
            "could not connect", operation=operation, bucket=bucket, endpoint=endpoint,
            hint="Is the S3 server running, and is storage.apiEndpoint / storage.endpoint right?",
        )
    return StorageError(f"failed ({type(exc).__name__})", operation=operation, bucket=bucket, endpoint=endpoint)
