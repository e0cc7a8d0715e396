"""LobeChat's file storage: the S3 server (container mode) and the bucket, with what others need of them.

``FileStorage`` is built only when ``storage.mode`` is not ``none``. Its outputs feed LobeChat's
``S3_*`` environment (:mod:`components.lobechat_env`) and are what a backup job (issue 9, Postgres
dumps) needs to write to the same bucket: :attr:`FileStorage.outputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.config import PublishConfig, StorageConfig
from components.config.storage import DEFAULT_FILE_PATH
from components.storage_resources import S3AccessKey, S3Bucket
from components.storage_server import StorageServer, internal_endpoint


@dataclass(frozen=True)
class StorageOutputs:
    """The bucket and how to reach it (secret ones are secret Outputs).

    Attributes:
        bucket: the bucket's name (``S3_BUCKET``).
        endpoint: the public S3 endpoint (``S3_ENDPOINT``: LobeChat's server and the browser).
        internal_endpoint: the S3 API on the stage network (container mode; None otherwise): what a
            container of the stack (a backup job) or the front door's route uses.
        region / path_style / public_domain / set_acl: the rest of LobeChat's ``S3_*`` values.
        access_key_id / secret_access_key: LobeChat's credentials.
        admin_access_key_id / admin_secret_access_key: the credentials the stack manages the bucket
            with (the container server's root, or ``storageAccessKeyId``): for a backup job that
            writes under its own prefix (e.g. ``backups/``) in the same bucket.
    """

    bucket: pulumi.Output[str]
    endpoint: str
    internal_endpoint: str | None
    region: str
    path_style: bool
    public_domain: str
    public_read: bool
    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]
    admin_access_key_id: pulumi.Output[str]
    admin_secret_access_key: pulumi.Output[str]


class FileStorage(pulumi.ComponentResource):
    """The storage of one stage: ``StorageServer`` (container mode) and the ``S3Bucket``."""

    outputs: StorageOutputs

    def __init__(
        self,
        resource_name: str,
        *,
        storage: StorageConfig,
        cors_origins: Sequence[str],
        network_name: pulumi.Input[str],
        publish: PublishConfig,
        name_prefix: str,
        health_start_interval: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:storage:FileStorage", resource_name, None, opts)
        assert storage.enabled and storage.endpoint is not None and storage.public_domain is not None
        self.server: StorageServer | None = None
        depends: list[pulumi.Input[pulumi.Resource]] = []
        if storage.mode == "container":
            self.server = StorageServer(
                "storage", storage=storage, network_name=network_name, publish=publish, name_prefix=name_prefix,
                health_start_interval=health_start_interval, opts=pulumi.ResourceOptions(parent=self),
            )
            admin_id: pulumi.Input[str] = self.server.access_key_id
            admin_secret: pulumi.Input[str] = self.server.secret_access_key
            # The bucket can only be created once the server answers.
            depends = [self.server.ready]
        else:
            assert storage.access_key_id is not None and storage.secret_access_key is not None
            admin_id, admin_secret = storage.access_key_id, storage.secret_access_key

        self.bucket = S3Bucket(
            "storage-bucket",
            bucket=storage.bucket,
            endpoint=storage.api_endpoint,
            region=storage.region,
            path_style=storage.path_style,
            access_key_id=admin_id,
            secret_access_key=admin_secret,
            cors_origins=list(cors_origins),
            public_read=storage.public_read,
            public_prefix=DEFAULT_FILE_PATH,
            adopt_existing=storage.adopt_existing,
            # Users' files: never deleted by a destroy or a replacement.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends, protect=True, retain_on_delete=True),
        )
        lobechat_id = storage.lobechat_access_key_id if storage.lobechat_access_key_id is not None else admin_id
        lobechat_secret = (
            storage.lobechat_secret_access_key if storage.lobechat_secret_access_key is not None else admin_secret
        )
        self.lobechat_key: S3AccessKey | None = None
        if storage.lobechat_key == "iam":
            # AWS S3: LobeChat's own IAM user, allowed only on this bucket.
            self.lobechat_key = S3AccessKey(
                "storage-lobechat-key",
                bucket=self.bucket.bucket,
                user_name=f"{name_prefix}-{storage.bucket}"[:64],
                admin_access_key_id=admin_id,
                admin_secret_access_key=admin_secret,
                region=storage.region,
                public_read=storage.public_read,
                opts=pulumi.ResourceOptions(parent=self),
            )
            lobechat_id, lobechat_secret = self.lobechat_key.key_id, self.lobechat_key.key_secret
        self.outputs = StorageOutputs(
            bucket=self.bucket.bucket,
            endpoint=storage.endpoint,
            internal_endpoint=internal_endpoint(storage) if storage.mode == "container" else None,
            region=storage.region,
            path_style=storage.path_style,
            public_domain=storage.public_domain,
            public_read=storage.public_read,
            access_key_id=pulumi.Output.secret(lobechat_id),
            secret_access_key=pulumi.Output.secret(lobechat_secret),
            admin_access_key_id=pulumi.Output.secret(admin_id),
            admin_secret_access_key=pulumi.Output.secret(admin_secret),
        )
        self.register_outputs({"bucket": self.outputs.bucket, "endpoint": self.outputs.endpoint})
