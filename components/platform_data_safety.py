"""How the platform wires the data safety steps around its Postgres (kept out of platform.py).

- ``KEY_VAULTS_SECRET``: generated once and protected, or the previous stage's (``rebuildKeyVaultsSecret``);
- the record, snapshot and volume check before Postgres; the restore (``dataSafety.restoreFrom``)
  and the scheduled backups after it;
- the outputs an operator needs to restore, rebuild and tear down.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.config import MappingConfigSource, StageConfig
from components.config.data_safety import DataSafetyConfig, load_data_safety
from components.config.errors import Problems
from components.data_safety import DataSafety, operator_commands
from components.generated_secrets import ALPHANUMERIC, RandomSecret
from components.postgres import PostgresDataSafety, PostgresServer, default_data_volume
from components.stage_record import StageRecord

KEY_VAULTS_SECRET_LENGTH = 43
"""LobeChat base64-decodes KEY_VAULTS_SECRET into an AES-256 key: 43 base64 characters are 32 bytes."""


def load_default_data_safety(stack: str) -> DataSafetyConfig:
    """The defaults, for a StageConfig built without the data safety section (tests, older callers)."""
    return load_data_safety(MappingConfigSource({}), Problems(), stack)


def key_vaults_secret_input(parent: pulumi.Resource, config: DataSafetyConfig) -> pulumi.Output[str]:
    """The stage's KEY_VAULTS_SECRET: the previous stage's on a rebuild, else generated once (protected)."""
    if config.rebuild_key_vaults_secret is not None:
        return pulumi.Output.secret(config.rebuild_key_vaults_secret)
    return RandomSecret(
        "lobechat-key-vaults-secret",
        length=KEY_VAULTS_SECRET_LENGTH,
        alphabet=ALPHANUMERIC,
        # Replacing it makes every API key users stored unreadable.
        opts=pulumi.ResourceOptions(parent=parent, protect=True),
    ).value


def build_data_safety(
    config: StageConfig,
    safety: DataSafetyConfig,
    network_name: pulumi.Input[str],
    postgres: PostgresServer,
    key_vaults_secret: pulumi.Input[str],
    child: pulumi.ResourceOptions,
) -> DataSafety:
    """Declare the steps around ``postgres`` and start its container after them."""
    volume = safety.data_volume or default_data_volume(config.resource_prefix)
    steps = DataSafety(
        "data-safety",
        stack=config.stack,
        name_prefix=config.resource_prefix,
        config=safety,
        postgres_image=config.postgres.image,
        postgres_command=config.postgres.command,
        postgres_major=config.postgres.major,
        data_volume=volume,
        logto_image=config.logto.image if config.logto.mode == "container" else None,
        lobechat_image=config.lobechat_image,
        network_name=network_name,
        password=postgres.password,
        key_vaults_secret=key_vaults_secret,
        one_shot_memory_mb=config.memory_limits.one_shot,
        opts=child,
    )
    container = postgres.start(
        PostgresDataSafety(
            claim=steps.claim,
            legacy_claim=steps.fingerprint,
            had_previous=steps.had_previous,
            adopt_volume=safety.adopt_volume,
            before_start=[steps.before_postgres],
        )
    )
    steps.before_apps.insert(0, postgres.ready)
    steps.add_restore(postgres.ready, postgres.image_id)
    steps.add_schedule(postgres.ready, postgres.image_id)
    del container
    return steps


def data_safety_exports(
    config: StageConfig, steps: DataSafety, postgres: PostgresServer, key_vaults_secret: pulumi.Input[str]
) -> dict[str, Any]:
    """Stack outputs: the snapshot taken by this run, where backups go, and what a rebuild needs."""
    volume = config.data_safety.data_volume if config.data_safety else None
    exports: dict[str, Any] = {
        "preChangeSnapshot": steps.snapshot_name,
        "backupVolume": f"{config.resource_prefix}-backups",
        "dataVolume": volume or default_data_volume(config.resource_prefix),
        "postgresMajor": config.postgres.major,
        "postgresPassword": pulumi.Output.secret(postgres.password),
        "rebuildFingerprint": steps.fingerprint,
        "rebuildSecrets": pulumi.Output.secret(
            pulumi.Output.all(postgres.password, key_vaults_secret).apply(
                lambda v: {
                    "rebuildPostgresPassword": v[0],
                    "rebuildKeyVaultsSecret": v[1],
                    "resourcePrefix": config.resource_prefix,
                    "dataVolume": volume or default_data_volume(config.resource_prefix),
                    "postgresMajor": config.postgres.major,
                }
            )
        ),
    }
    exports.update(
        operator_commands(
            name_prefix=config.resource_prefix, image=config.postgres.image, docker_host=config.docker_host, stack=config.stack
        )
    )
    return exports


def external_database_record(config: StageConfig, safety: DataSafetyConfig, child: pulumi.ResourceOptions) -> StageRecord:
    """With an external Postgres: only the downgrade guard (Logto and LobeChat still migrate that database).

    Its backups, major version and volume are the database provider's business, so there is no
    snapshot step, volume or teardown guard here.
    """
    return StageRecord(
        "data-safety-record",
        stack=config.stack,
        postgres_major=None,
        postgres_image=None,
        data_volume=None,
        logto_image=config.logto.image if config.logto.mode == "container" else None,
        lobechat_image=config.lobechat_image,
        restore_from=None,
        allow_downgrade=safety.allow_downgrade,
        rebuild_fingerprint=None,
        teardown_exported=None,
        opts=child,
    )
