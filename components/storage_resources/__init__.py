"""Pulumi dynamic resources for S3-compatible storage: LobeChat's bucket (``storage:Bucket``) and, on AWS,
LobeChat's own key limited to it (``storage:AccessKey``).

The provider class lives in this importable package and keeps no state, so the engine pickles it by
reference and every method builds its own boto3 client from the resource's (secret) properties.
"""

from __future__ import annotations

from .access_key import S3AccessKey, S3AccessKeyProvider
from .bucket import MANAGED_BY, S3Bucket, S3BucketProvider
from .client import StorageError, StorageInputError

__all__ = [
    "MANAGED_BY", "S3AccessKey", "S3AccessKeyProvider", "S3Bucket", "S3BucketProvider", "StorageError", "StorageInputError",
]
