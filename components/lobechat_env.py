"""LobeChat's environment for one generation, built from the stage config and the Logto outputs.

The build is a pure function: values may be plain strings (tests) or Pulumi Outputs (the program);
names are always plain, so the generation's rules are checked on names at build time, before any
container is declared. The two generations' variable sets are disjoint where LobeChat needs them to be:
a 2.x container exits at start on any 1.x name (see ``../shared/docs/lobechat.md``), so
:func:`assert_lobechat_env` runs on every environment this module builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

from components.config import StageConfig
from components.lobechat_env_names import (  # noqa: F401  (re-exported: public names of this module)
    BASE_ENV_NAMES,
    forbidden_2x_reason,
    managed_env_names,
)

if TYPE_CHECKING:
    from components.file_storage import StorageOutputs


class LobeChatEnvError(ValueError):
    """An environment that the LobeChat generation would refuse (names only in the message)."""


def assert_lobechat_env(env: Mapping[str, object], generation: int) -> None:
    """Raise :class:`LobeChatEnvError` unless ``env`` is one LobeChat ``generation`` accepts.

    Checks that the generation's required variables are there and, for 2.x, that none of the variables
    that make a 2.x container exit is present; 1.x must not carry the 2.x-only session variables either
    (one set per container, never both). Used at build time and by the tests.
    """
    if generation not in BASE_ENV_NAMES:
        raise LobeChatEnvError(f"unknown LobeChat generation {generation!r}")
    required = BASE_ENV_NAMES[generation] - {"LOGTO_WEBHOOK_SIGNING_KEY"}
    missing = sorted(required - set(env))
    if missing:
        raise LobeChatEnvError(f"LobeChat {generation}.x environment lacks {', '.join(missing)}")
    if generation == 2:
        bad = [reason for name, value in env.items() if (reason := forbidden_2x_reason(name, value))]
        if bad:
            raise LobeChatEnvError("LobeChat 2.x would exit at start: the environment has " + "; ".join(bad))
    else:
        other = sorted(set(env) & {"AUTH_SECRET", "AUTH_SSO_PROVIDERS", "JWKS_KEY"})
        if other:
            raise LobeChatEnvError(f"LobeChat 1.x environment carries 2.x variables: {', '.join(other)}")


@dataclass(frozen=True)
class LobeChatEnvInputs:
    """Values the environment needs from the stack's resources (plain strings or Outputs).

    Attributes:
        client_id / client_secret: the Logto application's credentials.
        webhook_signing_key: the Logto webhook's signing key; None when the webhook is disabled.
        session_secret: ``NEXT_AUTH_SECRET`` (1.x) / ``AUTH_SECRET`` (2.x).
        key_vaults_secret: ``KEY_VAULTS_SECRET``.
        database_url: LobeChat's database connection string.
        jwks_key: the RS256 JWKS (2.x only).
        storage: the bucket's outputs when ``storage.mode`` is not ``none`` (the ``S3_*`` variables).
    """

    client_id: pulumi.Input[str]
    client_secret: pulumi.Input[str]
    webhook_signing_key: pulumi.Input[str] | None
    session_secret: pulumi.Input[str]
    key_vaults_secret: pulumi.Input[str]
    database_url: pulumi.Input[str]
    jwks_key: pulumi.Input[str] | None = None
    storage: StorageOutputs | None = None


def s3_environment(generation: int, storage: StorageOutputs) -> dict[str, pulumi.Input[str]]:
    """LobeChat's ``S3_*`` variables from the bucket's outputs, the same names in both generations.

    ``S3_SET_ACL`` is always written out, because its default differs: 1.x sets a public-read ACL on
    every upload unless it is ``0``, 2.x only when it is ``1``. It is ``1`` only for a public-read
    bucket; otherwise ``0`` and LobeChat serves files through presigned URLs (1.x also decides by it
    whether a file URL is presigned or ``S3_PUBLIC_DOMAIN``-based).
    """
    if generation not in BASE_ENV_NAMES:
        raise LobeChatEnvError(f"unknown LobeChat generation {generation!r}")
    return {
        "S3_ENDPOINT": storage.endpoint,
        "S3_BUCKET": storage.bucket,
        "S3_REGION": storage.region,
        "S3_ACCESS_KEY_ID": storage.access_key_id,
        "S3_SECRET_ACCESS_KEY": storage.secret_access_key,
        "S3_PUBLIC_DOMAIN": storage.public_domain,
        "S3_ENABLE_PATH_STYLE": "1" if storage.path_style else "0",
        "S3_SET_ACL": "1" if storage.public_read else "0",
    }


def build_lobechat_env(config: StageConfig, values: LobeChatEnvInputs) -> dict[str, pulumi.Input[str]]:
    """LobeChat's environment for ``config.generation``, as a name -> value mapping (values may be Outputs)."""
    providers = ",".join(p.emitted_id for p in config.sso_providers)
    env: dict[str, pulumi.Input[str]] = {}
    if config.generation == 1:
        env["NEXT_AUTH_SECRET"] = values.session_secret
        env["NEXT_AUTH_SSO_PROVIDERS"] = providers
        env["NEXTAUTH_URL"] = config.urls.nextauth_url
    else:
        if values.jwks_key is None:
            raise LobeChatEnvError("LobeChat 2.x needs JWKS_KEY: pass the generated RS256 JWKS")
        env["AUTH_SECRET"] = values.session_secret
        env["AUTH_SSO_PROVIDERS"] = providers
        env["JWKS_KEY"] = values.jwks_key
    env["APP_URL"] = config.urls.app_url
    env["AUTH_LOGTO_ID"] = values.client_id
    env["AUTH_LOGTO_SECRET"] = values.client_secret
    env["AUTH_LOGTO_ISSUER"] = config.logto.issuer
    if values.webhook_signing_key is not None:
        env["LOGTO_WEBHOOK_SIGNING_KEY"] = values.webhook_signing_key
    env["DATABASE_URL"] = values.database_url
    env["KEY_VAULTS_SECRET"] = values.key_vaults_secret
    if values.storage is not None:
        env.update(s3_environment(config.generation, values.storage))
    for provider in config.sso_providers:
        env.update(provider.env)
    if config.access_code is not None:
        env["ACCESS_CODE"] = config.access_code
    env.update(config.extra_env)
    env.update(config.extra_secret_env)
    assert_lobechat_env(env, config.generation)
    return env


def env_output(env: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
    """The environment as one secret Output dict (the stack output ``lobechatEnvironment``)."""
    return pulumi.Output.secret(pulumi.Output.all(**dict(env)))


def container_envs(env: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[list[str]]:
    """The environment as docker ``envs`` (``NAME=value``, sorted), one secret Output."""
    return env_output(env).apply(lambda resolved: [f"{k}={resolved[k]}" for k in sorted(resolved)])
