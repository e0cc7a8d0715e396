"""The whole stage: network, Postgres, Logto, the first Management API credential, the Logto
application and webhook, and LobeChat wired to them.

Order: each step waits only for what it needs (through outputs and ``depends_on``); everything
else starts at once (the images are pulled, the network, volume and secrets created in parallel):

1. the stage network;
2. Postgres (unless ``postgres.mode`` is external), ready (accepts connections);
3. the Logto container (unless ``logto.mode`` is external), ready (``/api/status`` 204): its start
   command seeds the database, so it needs a ready Postgres;
4. ``ManagementCredentialBootstrap``: an M2M application with the stack's generated secret and the
   role "Logto Management API access", inserted once Logto has seeded its database;
5. the Logto application (redirect, sign-out and CORS URIs from ``lobechatUrl``) and the webhook,
   side by side, both needing the credential;
6. the LobeChat container, created as soon as its environment is known (the application's client
   secret and the webhook's signing key) and its database is ready (migrations run at start). It
   needs nothing else from Logto at start: it fetches the issuer's discovery when someone signs in.

"Ready" is a readiness wait of our own that notices within 0.25 s (``components/readiness.py``);
the stack output ``lobechatUrl`` resolves once LobeChat answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pulumi
import pulumi_docker as docker

from components.config import POSTGRES_IMAGES, StageConfig
from components.front.caddy import CaddyFront
from components.file_storage import FileStorage, StorageOutputs
from components.config.rotation import CLIENT_SECRET, M2M_SECRET, POSTGRES_PASSWORD, SESSION_SECRET, WEBHOOK_SIGNING_KEY
from components.aws_publication import AwsSecretPublication, client_secret_document
from components.clock import iso
from components.generated_secrets import ALPHANUMERIC, RandomSecret, RsaJwks
from components.lobechat import LobeChatServer
from components.lobechat_env import LobeChatEnvInputs, build_lobechat_env, container_envs, env_output
from components.logto_api.transport import management_resource
from components.logto_bootstrap import ManagementCredentialBootstrap
from components.logto_resources import (
    LobeChatSecretLease,
    LogtoApplication,
    LogtoApplicationSecret,
    LogtoConnectionArgs,
    LogtoWebhook,
)
from components.logto_resources.management_credential import LogtoManagementCredential, m2m_secret_name
from components.logto_resources.webhook import marker_header_value
from components.logto_server import LogtoServer, admin_tunnel_command
from components.network import StageNetwork
from components.platform_data_safety import (
    build_data_safety,
    data_safety_exports,
    external_database_record,
    key_vaults_secret_input,
    load_default_data_safety,
)
from components.data_safety import DataSafety
from components.platform_data_safety import KEY_VAULTS_SECRET_LENGTH  # noqa: F401 - re-exported
from components.postgres import PostgresServer
from components.postgres_logins import PostgresLoginLease
from components.verification.during_up import stage_verification, target_output
from components.rotation_state import SecretRotation
from components.secret_rotation import client_secret_name, hook_alias, hook_url, session_keepers

M2M_APP_ID = "lobechat-logto-m2m"
"""Fixed id of the bootstrap M2M application (a Logto id: at most 21 characters)."""

SESSION_SECRET_LENGTH = 44
M2M_SECRET_LENGTH = 32


@dataclass(frozen=True)
class PlatformOutputs:
    """What a stage exports (``pulumi stack output``); secret ones are secret Outputs."""

    lobechat_url: pulumi.Input[str]
    logto_endpoint: pulumi.Input[str]
    logto_admin_url: pulumi.Input[str] | None
    issuer: pulumi.Input[str]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]
    webhook_signing_key: pulumi.Output[str] | None
    lobechat_environment: pulumi.Output[dict[str, str]]
    logto_admin_tunnel: str | None = None
    verification_target: pulumi.Output[dict[str, Any]] | None = None
    verification: pulumi.Output[str] | None = None
    storage: StorageOutputs | None = None
    rotation: pulumi.Output[dict[str, Any]] | None = None
    data_safety: Mapping[str, Any] = field(default_factory=dict)

    def as_exports(self) -> dict[str, Any]:
        """Stack output name -> value (optional outputs left out when absent)."""
        exports: dict[str, Any] = {
            "lobechatUrl": self.lobechat_url,
            "logtoEndpoint": self.logto_endpoint,
            "issuer": self.issuer,
            "clientId": self.client_id,
            "clientSecret": pulumi.Output.secret(self.client_secret),
            "lobechatEnvironment": pulumi.Output.secret(self.lobechat_environment),
        }
        if self.logto_admin_url is not None:
            exports["logtoAdminUrl"] = self.logto_admin_url
        if self.logto_admin_tunnel is not None:
            exports["logtoAdminTunnel"] = self.logto_admin_tunnel
        if self.webhook_signing_key is not None:
            exports["webhookSigningKey"] = pulumi.Output.secret(self.webhook_signing_key)
        if self.verification_target is not None:
            exports["verificationTarget"] = pulumi.Output.secret(self.verification_target)
        if self.verification is not None:
            exports["verification"] = self.verification
        if self.storage is not None:
            exports["storageBucket"] = self.storage.bucket
            exports["storageEndpoint"] = self.storage.endpoint
            exports["storageRegion"] = self.storage.region
            exports["storageAccessKeyId"] = pulumi.Output.secret(self.storage.admin_access_key_id)
            exports["storageSecretAccessKey"] = pulumi.Output.secret(self.storage.admin_secret_access_key)
            if self.storage.internal_endpoint is not None:
                exports["storageInternalEndpoint"] = self.storage.internal_endpoint
        if self.rotation is not None:
            exports["rotation"] = self.rotation
        exports.update(self.data_safety)
        return exports

    def export(self) -> None:
        """``pulumi.export`` every output."""
        for name, value in self.as_exports().items():
            pulumi.export(name, value)


class Platform(pulumi.ComponentResource):
    """Every resource of one stage, as children of one component (``lobechat-logto:platform:Platform``)."""

    outputs: PlatformOutputs

    def __init__(self, resource_name: str, config: StageConfig, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lobechat-logto:platform:Platform", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = config.resource_prefix
        behind_front = config.front is not None and config.front.is_caddy

        network = StageNetwork("network", network_name=f"{prefix}-net", opts=child)

        # The stored API keys are encrypted with it: replacing it makes them unreadable. A rebuild on an
        # existing volume supplies the previous one (rebuildKeyVaultsSecret).
        safety_config = config.data_safety or load_default_data_safety(config.stack)
        key_vaults_secret_value = key_vaults_secret_input(self, safety_config)

        # --- database -------------------------------------------------------------------------
        postgres: PostgresServer | None = None
        self.data_safety: DataSafety | None = None
        before_apps: list[pulumi.Input[pulumi.Resource]] = []
        postgres_rotation: SecretRotation | None = None
        if config.postgres.mode == "container":
            # LobeChat's and Logto's logins: generation N logs in as lobechat_gN / logto_gN (components/postgres_logins.py).
            postgres_rotation = SecretRotation(
                "rotation-postgres-password", secret=POSTGRES_PASSWORD,
                max_age_seconds=config.rotation.postgres_password.max_age_seconds,
                request=config.rotation.postgres_password.request, opts=child,
            )
            postgres = PostgresServer(
                "postgres",
                config=config.postgres,
                network_name=network.name,
                name_prefix=prefix,
                health_start_interval=config.health_start_interval,
                memory_mb=config.memory_limits.postgres,
                one_shot_memory_mb=config.memory_limits.one_shot,
                password=safety_config.rebuild_postgres_password,
                data_volume_name=safety_config.data_volume,
                password_generation=postgres_rotation.generation,
                opts=child,
            )
            self.data_safety = build_data_safety(config, safety_config, network.name, postgres, key_vaults_secret_value, child)
            before_apps = self.data_safety.before_apps
            logto_db_url: pulumi.Input[str] | None = postgres.logto_database_url
            lobechat_db_url: pulumi.Input[str] = postgres.lobechat_database_url
        else:
            external_database_record(config, safety_config, child)
            logto_db_url = config.postgres.logto_database_url
            lobechat_db_url = pulumi.Output.secret(config.postgres.lobechat_database_url)
        database_ready: list[pulumi.Input[pulumi.Resource]] = [postgres.ready, *before_apps] if postgres is not None else []

        # --- Logto and the credential that manages it ------------------------------------------
        waits_for_logto: list[pulumi.Input[pulumi.Resource]] = []
        if config.logto.mode == "container":
            assert logto_db_url is not None
            if postgres is not None:
                psql_image: pulumi.Input[str] = postgres.image_id
            else:
                # External database: the preflight and the bootstrap still need a psql; take it from the generation's image.
                psql_image = docker.RemoteImage(
                    "psql-client-image", name=POSTGRES_IMAGES[config.generation], keep_locally=True, opts=child
                ).image_id
            logto = LogtoServer(
                "logto",
                config=config.logto,
                database_url=logto_db_url,
                external_database=config.postgres.mode == "external",
                network_name=network.name,
                publish=config.publish,
                name_prefix=prefix,
                proxied_host_names=config.proxied_host_names,
                depends_on=database_ready,
                health_start_interval=config.health_start_interval,
                memory_mb=config.memory_limits.logto,
                psql_image=psql_image,
                skip_seed=config.logto_database.skip_seed,
                behind_front=behind_front,
                opts=child,
            )
            # Generation 0: the legacy secret column, as before rotation existed; generation N: the
            # named secret m2m-N next to it, the previous one retired once nothing holds it.
            m2m_rotation = SecretRotation(
                "rotation-m2m-secret", secret=M2M_SECRET, max_age_seconds=config.rotation.m2m_secret.max_age_seconds,
                request=config.rotation.m2m_secret.request,
                lifetime_seconds=config.rotation.m2m_secret_lifetime_seconds(), opts=child,
            )
            m2m_secret_name_output = m2m_rotation.generation.apply(m2m_secret_name)
            m2m_secret = RandomSecret(
                "logto-m2m-secret", length=M2M_SECRET_LENGTH, alphabet=ALPHANUMERIC,
                keepers=m2m_rotation.generation.apply(session_keepers), opts=child,
            )
            bootstrap = ManagementCredentialBootstrap(
                "logto-bootstrap",
                image=psql_image,
                network_name=network.name,
                database_url=pulumi.Output.secret(logto_db_url),
                app_id=M2M_APP_ID,
                app_secret=m2m_secret.value,
                secret_name=m2m_secret_name_output,
                expires_at=m2m_rotation.expires_at,
                memory_mb=config.memory_limits.one_shot,
                # Ready means seeded and altered: the SQL needs Logto's tables and role.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[logto.ready]),
            )
            # Every Logto resource connects with this generation's credential, so the engine deletes
            # the replaced ones (holding the previous credential) before the previous credential.
            credential = LogtoManagementCredential(
                "logto-management-credential",
                connection=LogtoConnectionArgs(
                    endpoint=config.logto.api_endpoint,
                    client_id=bootstrap.app_id,
                    client_secret=bootstrap.app_secret,
                    resource=management_resource(None),
                ),
                generation=m2m_rotation.generation,
                secret_name=m2m_secret_name_output,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[logto.ready, bootstrap]),
            )
            connection = credential.connection(config.logto.api_endpoint, management_resource(None))
            waits_for_logto = [logto.ready, bootstrap]
        else:
            assert config.logto.m2m_client_id is not None and config.logto.m2m_client_secret is not None
            connection = LogtoConnectionArgs(
                endpoint=config.logto.api_endpoint,
                client_id=config.logto.m2m_client_id,
                client_secret=pulumi.Output.secret(config.logto.m2m_client_secret),
                resource=management_resource(config.logto.tenant_id),
            )

        # --- the front: Caddy routes Logto before anything calls its Management API ---------------
        self.front: CaddyFront | None = None
        if behind_front:
            self.front = CaddyFront(
                "front",
                config=config,
                network_name=network.name,
                logto_container=logto.container if config.logto.mode == "container" else None,
                storage_host=f"{prefix}-storage" if config.storage.mode == "container" else None,
                opts=child,
            )
            # `pulumi up` reaches the Management API through the front (public names, or 127.0.0.1
            # ports for *.localhost names): wait until it routes Logto.
            waits_for_logto = [*waits_for_logto, self.front.base_writer]

        # --- LobeChat's application and webhook in Logto ---------------------------------------
        logto_opts = pulumi.ResourceOptions(parent=self, depends_on=waits_for_logto)
        urls = config.urls
        policy = config.rotation
        rotations: dict[str, SecretRotation] = {
            CLIENT_SECRET: SecretRotation(
                "rotation-client-secret", secret=CLIENT_SECRET, max_age_seconds=policy.client_secret.max_age_seconds,
                request=policy.client_secret.request, lifetime_seconds=policy.client_secret_lifetime_seconds(),
                opts=child,
            ),
            SESSION_SECRET: SecretRotation(
                "rotation-session-secret", secret=SESSION_SECRET, request=policy.session_secret.request, opts=child
            ),
        }
        if config.logto.mode == "container":
            rotations[M2M_SECRET] = m2m_rotation
        application = LogtoApplication(
            "lobechat-application",
            connection=connection,
            name=f"LobeChat ({config.stack})",
            description=f"LobeChat at {urls.app_url}, managed by the Pulumi stack '{config.stack}'",
            redirect_uris=[urls.redirect_uri],
            post_sign_out_redirect_uris=[urls.post_sign_out_redirect_uri],
            cors_allowed_origins=[urls.cors_origin],
            app_type="Traditional",
            # The client secret LobeChat holds is the rotated one below; a deleted Default secret stays deleted.
            manage_default_secret=False,
            opts=logto_opts,
        )
        client_secret = LogtoApplicationSecret(
            "lobechat-client-secret",
            connection=connection,
            application_id=application.app_id,
            secret_name=rotations[CLIENT_SECRET].generation.apply(client_secret_name),
            expires_at=rotations[CLIENT_SECRET].expires_at,
            opts=logto_opts,
        )
        webhook: LogtoWebhook | None = None
        webhook_alias: pulumi.Output[str] | None = None
        webhook_delivery_url: pulumi.Input[str] | None = None
        if config.webhook_enabled:
            rotations[WEBHOOK_SIGNING_KEY] = key_rotation = SecretRotation(
                "rotation-webhook-signing-key", secret=WEBHOOK_SIGNING_KEY,
                max_age_seconds=policy.webhook_signing_key.max_age_seconds,
                request=policy.webhook_signing_key.request, opts=child,
            )
            webhook_alias = key_rotation.generation.apply(hook_alias)
            # With key rotation each key generation's hook reaches only the containers holding that key.
            webhook_delivery_url = (
                webhook_alias.apply(hook_url) if policy.webhook_signing_key.enabled else urls.webhook_url
            )
            webhook = LogtoWebhook(
                "lobechat-webhook",
                connection=connection,
                name=f"LobeChat ({config.stack}) user sync",
                url=webhook_delivery_url,
                events=list(config.webhook_events),
                key_generation=key_rotation.generation,
                lease_application="lobechat-application",
                opts=logto_opts,
            )

        # --- file storage (S3) --------------------------------------------------------------------
        self.storage: FileStorage | None = None
        if config.storage.enabled:
            self.storage = FileStorage(
                "file-storage",
                # Behind the front, Caddy publishes the S3 endpoint and carries its public name.
                storage=replace(config.storage, public_host_is_localhost=False) if behind_front else config.storage,
                cors_origins=[urls.cors_origin],
                network_name=network.name,
                publish=replace(config.publish, enabled=False) if behind_front else config.publish,
                # The bucket is created through the public endpoint: through the front, once it routes it.
                wait_for=[self.front.base_writer] if self.front is not None else [],
                name_prefix=prefix,
                health_start_interval=config.health_start_interval,
                opts=child,
            )
        storage_outputs = self.storage.outputs if self.storage is not None else None
        if policy.aws is not None:
            # LobeChat deployed elsewhere reads the current values from AWS Secrets Manager.
            publish_opts = pulumi.ResourceOptions(parent=self)
            if policy.aws.client_secret_name:
                AwsSecretPublication(
                    "aws-client-secret", secret_name=policy.aws.client_secret_name, region=policy.aws.region,
                    endpoint_url=policy.aws.endpoint_url, opts=publish_opts,
                    value=pulumi.Output.all(application.client_id, client_secret.value, client_secret.secret_name).apply(
                        lambda v: client_secret_document(v[0], v[1], v[2], config.logto.issuer)),
                )
            if policy.aws.webhook_signing_key_name and webhook is not None:
                AwsSecretPublication(
                    "aws-webhook-signing-key", secret_name=policy.aws.webhook_signing_key_name,
                    region=policy.aws.region, endpoint_url=policy.aws.endpoint_url, opts=publish_opts,
                    value=webhook.signing_key.apply(lambda key: json.dumps({"signingKey": key})),
                )

        # --- LobeChat ---------------------------------------------------------------------------
        session_secret = RandomSecret(
            "lobechat-session-secret", length=SESSION_SECRET_LENGTH,
            keepers=rotations[SESSION_SECRET].generation.apply(session_keepers), opts=child,
        )
        jwks = RsaJwks("lobechat-jwks", opts=child) if config.generation == 2 else None
        env = build_lobechat_env(
            config,
            LobeChatEnvInputs(
                client_id=application.client_id,
                client_secret=client_secret.value,
                webhook_signing_key=webhook.signing_key if webhook is not None else None,
                session_secret=session_secret.value,
                key_vaults_secret=key_vaults_secret_value,
                database_url=lobechat_db_url,
                jwks_key=jwks.jwks if jwks is not None else None,
                storage=storage_outputs,
            ),
        )
        self.lobechat = LobeChatServer(
            "lobechat",
            image=config.lobechat_image,
            generation=config.generation,
            url=config.lobechat_url,
            envs=container_envs(env),
            network_name=network.name,
            publish=config.publish,
            name_prefix=prefix,
            # The environment already waits for the application, the webhook and the bucket (their outputs).
            # The environment already waits for the application, the secret and the webhook (their outputs).
            depends_on=database_ready,
            proxied_host_names=config.lobechat_proxied_host_names,
            memory_mb=config.memory_limits.lobechat,
            health_start_interval=config.health_start_interval,
            secrets=[
                client_secret.value,
                session_secret.value,
                key_vaults_secret_value,
                lobechat_db_url,
                *([webhook.signing_key] if webhook is not None else []),
                *([storage_outputs.secret_access_key] if storage_outputs is not None else []),
            ],
            extra_aliases=[webhook_alias] if webhook_alias is not None else [],
            rolling=behind_front,
            opts=child,
        )
        if self.front is not None:
            # Traffic moves to the new LobeChat once it is ready; the old one drains, then goes.
            self.front.route_lobechat(self.lobechat.container, self.lobechat.ready)
        if postgres is not None and postgres_rotation is not None:
            rotations[POSTGRES_PASSWORD] = postgres_rotation
            # Earlier generations' logins are retired once nothing that may still run holds them.
            login_lease = PostgresLoginLease(
                "postgres-login-lease", generation=postgres_rotation.generation,
                container_id=pulumi.Output.all(self.lobechat.container.id, self.lobechat.ready).apply(lambda v: v[0]),
                opts=child,
            )
            postgres.retire_logins(
                lobechat_keep=login_lease.lobechat_keep,
                depends_on=[self.lobechat.ready, login_lease, *waits_for_logto],
            )
        # Once that LobeChat is healthy: what it holds, and the sweep of what nothing holds any more.
        LobeChatSecretLease(
            "lobechat-secret-lease",
            connection=connection,
            application_id=application.app_id,
            client_secret_name=client_secret.secret_name,
            # Known only once the new LobeChat passed its readiness wait.
            container_id=pulumi.Output.all(self.lobechat.container.id, self.lobechat.ready).apply(lambda v: v[0]),
            key_generation=rotations[WEBHOOK_SIGNING_KEY].generation if webhook is not None else None,
            hook_marker=marker_header_value(
                {"project": pulumi.get_project(), "stack": config.stack, "resource_name": "lobechat-webhook"}
            ) if webhook is not None else None,
            # Which M2M generation the stage's resources hold (none recorded at generation 0).
            **({"m2m_application_id": m2m_rotation.generation.apply(lambda g: M2M_APP_ID if g else None),
                "m2m_generation": m2m_rotation.generation.apply(lambda g: int(g) if g else None)}
               if config.logto.mode == "container" else {}),
            opts=logto_opts,
        )

        verification_target = target_output(
            config,
            management_endpoint=config.logto.api_endpoint,
            management_client_id=connection.client_id,
            management_client_secret=connection.client_secret,
            management_resource=str(connection.resource),
            application_id=application.app_id,
            webhook_id=webhook.hook_id if webhook is not None else None,
            webhook_url=webhook_delivery_url,
            network_name=network.name,
        )
        environment = env_output(env)
        verification = stage_verification(
            config, parent=self, target=verification_target, environment=environment,
            lobechat_container=self.lobechat.container, lobechat_ready=self.lobechat.ready.apply(lambda _: "ready"),
            lobechat_image_id=self.lobechat.image.image_id,
            network_name=network.name,
        )

        self.outputs = PlatformOutputs(
            lobechat_url=self.lobechat.ready.apply(lambda _: urls.app_url),
            logto_endpoint=config.logto.endpoint.url,
            logto_admin_url=config.logto.admin_console_url,
            issuer=config.logto.issuer,
            client_id=application.client_id,
            client_secret=pulumi.Output.secret(client_secret.value),
            webhook_signing_key=pulumi.Output.secret(webhook.signing_key) if webhook is not None else None,
            lobechat_environment=environment,
            verification_target=verification_target,
            verification=verification,
            storage=storage_outputs,
            logto_admin_tunnel=admin_tunnel_command(config.logto, config.publish, config.docker_host),
            rotation=rotation_status(rotations),
        )
        if self.data_safety is not None and postgres is not None:
            self.outputs = replace(self.outputs, data_safety=data_safety_exports(config, self.data_safety, postgres, key_vaults_secret_value))
        self.register_outputs(self.outputs.as_exports())


def rotation_status(rotations: dict[str, SecretRotation]) -> pulumi.Output[dict[str, Any]]:
    """Stack output ``rotation``: per secret its generation, when it rotated, when it is due and why (no secret)."""
    return pulumi.Output.all(
        **{
            name: pulumi.Output.all(r.generation, r.rotated_at, r.next_due_at, r.reason)
            for name, r in rotations.items()
        }
    ).apply(
        lambda values: {
            name: {"generation": g, "rotatedAt": iso(at) if at is not None else None, "nextDueAt": due, "reason": why}
            for name, (g, at, due, why) in values.items()
        }
    )


def build_platform(config: StageConfig) -> PlatformOutputs:
    """Declare every resource of the stage described by ``config``; return what the stack exports."""
    opts = None
    if config.docker_host:
        # Every container, image, network and volume of the stage goes to that Docker host.
        provider = docker.Provider("docker-host", host=config.docker_host)
        opts = pulumi.ResourceOptions(providers=[provider])
    return Platform("platform", config, opts=opts).outputs
