"""One Postgres container shared by Logto and LobeChat, each with its own database.

The image follows LobeChat's generation (pgvector for 1.x; ParadeDB, which bundles pgvector and
``pg_search``, for 2.x, started with ``pg_search`` preloaded). The data volume is protected and kept
on delete: losing it loses every user, chat and Logto account.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_docker as docker

from components import readiness
from components.config import PostgresConfig
from components.generated_secrets import ALPHANUMERIC, RandomSecret
from components.hardening import SECURITY_OPTS
from components.postgres_roles import LOBECHAT_ROLE, LOGTO_ROLE, PostgresRoles, role_database_url

SUPERUSER = "postgres"
LOBECHAT_DATABASE = "lobechat"
LOGTO_DATABASE = "logto"
NETWORK_ALIAS = "postgres"
DATA_PATH = "/var/lib/postgresql/data"
INIT_SCRIPT_PATH = "/docker-entrypoint-initdb.d/10-create-logto-database.sql"
# Runs once, on an empty data directory; POSTGRES_DB creates the other database.
INIT_SCRIPT = f"CREATE DATABASE {LOGTO_DATABASE};\n"
# TCP on 127.0.0.1: the entrypoint's temporary init server listens on the socket only, so this stays
# unhealthy until the real server is up with both databases.
HEALTHCHECK_TEST = ["CMD-SHELL", f"pg_isready -h 127.0.0.1 -p 5432 -U {SUPERUSER} -d {LOBECHAT_DATABASE}"]
READY_TIMEOUT_SECONDS = 180
"""How long ``pulumi up`` waits for a new Postgres container (initdb of an empty volume included)."""


def postgres_healthcheck(*, start_interval: bool) -> docker.ContainerHealthcheckArgs:
    """Docker's check: every 10 s (``pg_isready`` is cheap), 1 s while starting on Engine 25+."""
    return readiness.healthcheck(HEALTHCHECK_TEST, interval="10s", start_period="60s", start_interval=start_interval)


def postgres_readiness_probe(image: pulumi.Input[str]) -> Callable[[str], readiness.ReadinessProbe]:
    """The readiness wait: the same ``pg_isready`` from the Postgres image, polling the container by name."""

    def probe(host: str) -> readiness.ReadinessProbe:
        return readiness.ReadinessProbe(
            image=image,
            entrypoint=readiness.postgres_probe(
                host, user=SUPERUSER, database=LOBECHAT_DATABASE, timeout_seconds=READY_TIMEOUT_SECONDS
            ),
            timeout_seconds=READY_TIMEOUT_SECONDS,
        )

    return probe


def database_url(password: pulumi.Input[str], database: str) -> pulumi.Output[str]:
    """The superuser's connection string on the stage network (alphanumeric password: no escaping).

    Only the roles step uses the superuser; Logto and LobeChat get `role_database_url` URLs."""
    return pulumi.Output.secret(
        pulumi.Output.concat("postgresql://", SUPERUSER, ":", password, f"@{NETWORK_ALIAS}:5432/{database}")
    )


class PostgresServer(pulumi.ComponentResource):
    """The Postgres container, its image, its protected data volume and its generated password.

    Outputs: ``logto_database_url`` and ``lobechat_database_url`` (secret), ``image_id`` (the image,
    whose ``psql`` the Logto bootstrap uses), ``container``, ``ready`` (put it in ``depends_on``:
    resolves once Postgres accepts connections, see ``components/readiness.py``).
    """

    logto_database_url: pulumi.Output[str]
    lobechat_database_url: pulumi.Output[str]
    image_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        config: PostgresConfig,
        network_name: pulumi.Input[str],
        name_prefix: str,
        health_start_interval: bool = False,
        memory_mb: int = 1024,
        one_shot_memory_mb: int = 256,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:postgres:PostgresServer", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Postgres takes the password only when it initialises an empty volume: a new value would lock
        # Logto and LobeChat out of the existing data, so it is protected like the volume.
        self.password = RandomSecret(
            f"{resource_name}-password",
            length=32,
            alphabet=ALPHANUMERIC,
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.image = docker.RemoteImage(f"{resource_name}-image", name=config.image, keep_locally=True, opts=child)
        self.volume = docker.Volume(
            f"{resource_name}-data",
            name=f"{name_prefix}-postgres-data",
            labels=[docker.VolumeLabelArgs(label="lobechat-logto.volume", value="postgres-data")],
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        envs = pulumi.Output.secret(
            self.password.value.apply(
                lambda password: [
                    f"POSTGRES_USER={SUPERUSER}",
                    f"POSTGRES_PASSWORD={password}",
                    f"POSTGRES_DB={LOBECHAT_DATABASE}",
                ]
            )
        )
        self.container = docker.Container(
            resource_name,
            name=f"{name_prefix}-postgres",
            image=self.image.image_id,
            command=list(config.command) or None,
            envs=envs,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_PATH)],
            uploads=[docker.ContainerUploadArgs(file=INIT_SCRIPT_PATH, content=INIT_SCRIPT)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[NETWORK_ALIAS])],
            healthcheck=postgres_healthcheck(start_interval=health_start_interval),
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            memory=memory_mb,
            # Not the provider's wait (it sees "healthy" up to an interval late): our readiness wait.
            wait=False,
            # Fixed container name: the old one must go before the new one can take its name.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.readiness = readiness.ReadinessWait(
            f"{resource_name}-ready",
            target=self.container,
            probe=postgres_readiness_probe(self.image.image_id),
            network_name=network_name,
            secrets=[self.password.value],
            opts=child,
        )
        # Each application's own role and password (separate secrets: rotated one at a time, see
        # components/postgres_roles.py); set on every volume by the roles step, as the superuser.
        self.lobechat_password = RandomSecret(f"{resource_name}-lobechat-password", length=32, alphabet=ALPHANUMERIC, opts=child)
        self.logto_password = RandomSecret(f"{resource_name}-logto-password", length=32, alphabet=ALPHANUMERIC, opts=child)
        self.roles = PostgresRoles(
            f"{resource_name}-roles",
            image=self.image.image_id,
            network_name=network_name,
            host=NETWORK_ALIAS,
            superuser=SUPERUSER,
            superuser_password=self.password.value,
            lobechat_password=self.lobechat_password.value,
            logto_password=self.logto_password.value,
            memory_mb=one_shot_memory_mb,
            depends_on=[self.readiness.ready],
            opts=child,
        )
        # "Ready" means the roles exist: nobody connects before its role and database are in place.
        self.ready = self.roles.ready
        self.image_id = self.image.image_id
        self.logto_database_url = role_database_url(LOGTO_ROLE, self.logto_password.value, LOGTO_DATABASE, NETWORK_ALIAS)
        self.lobechat_database_url = role_database_url(
            LOBECHAT_ROLE, self.lobechat_password.value, LOBECHAT_DATABASE, NETWORK_ALIAS
        )
        self.register_outputs(
            {
                "logto_database_url": self.logto_database_url,
                "lobechat_database_url": self.lobechat_database_url,
                "image_id": self.image_id,
            }
        )
