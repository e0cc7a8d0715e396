"""One Postgres container shared by Logto and LobeChat, each with its own database.

The image follows LobeChat's generation (pgvector for 1.x; ParadeDB, which bundles pgvector and
``pg_search``, for 2.x, started with ``pg_search`` preloaded). The data volume is protected and kept
on delete: losing it loses every user, chat and Logto account.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import readiness
from components.backup_script import CLAIM_INIT_SCRIPT, SCRIPT_PATH_IN_CONTAINER, backup_script, backup_script_sha256
from components.config import PostgresConfig
from components.data_safety import STOP_GRACE_SECONDS, SCRIPT_HASH_LABEL, check_step_exit, connection_env, pgpass_upload
from components.generated_secrets import ALPHANUMERIC, RandomSecret
from components.hardening import SECURITY_OPTS
from components.one_shot import ROLE_LABEL, one_shot_container
from components.postgres_logins import PostgresLoginRetirement
from components.postgres_roles import LOBECHAT_ROLE, LOGTO_ROLE, PostgresRoles, login_role, role_database_url

SUPERUSER = "postgres"
LOBECHAT_DATABASE = "lobechat"
LOGTO_DATABASE = "logto"
NETWORK_ALIAS = "postgres"
DATA_PATH = "/var/lib/postgresql/data"
INIT_SCRIPT_PATH = "/docker-entrypoint-initdb.d/10-create-logto-database.sql"
# Runs once, on an empty data directory; POSTGRES_DB creates the other database.
INIT_SCRIPT = f"CREATE DATABASE {LOGTO_DATABASE};\n"
CLAIM_INIT_SCRIPT_PATH = "/docker-entrypoint-initdb.d/20-lobechat-logto-claim.sh"
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


def generated_password(resource_name: str, opts: pulumi.ResourceOptions | None = None) -> RandomSecret:
    """The stage's Postgres superuser password, generated once.

    Postgres takes the password only when it initialises an empty volume: a new value would lock Logto
    and LobeChat out of the existing data, so it is protected like the volume.
    """
    return RandomSecret(
        f"{resource_name}-password",
        length=32,
        alphabet=ALPHANUMERIC,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True)),
    )


def password_keepers(generation: object) -> dict[str, str]:
    """Keepers of the application passwords: none at generation 0 (the values generated before rotation)."""
    number = int(generation or 0)  # type: ignore[call-overload]
    return {} if number == 0 else {"rotation": str(number)}


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
    resolves once Postgres accepts connections, see ``components/readiness.py``). The container is
    declared by :meth:`start`, after the data safety steps.
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
        password: pulumi.Input[str] | None = None,
        data_volume_name: str | None = None,
        memory_mb: int = 1024,
        one_shot_memory_mb: int = 256,
        password_generation: pulumi.Input[int] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:postgres:PostgresServer", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._resource_name, self._config, self._network_name, self._name_prefix = resource_name, config, network_name, name_prefix
        self._health_start_interval = health_start_interval
        self._one_shot_memory_mb = one_shot_memory_mb
        self._memory_mb = memory_mb
        # The previous stage's password on a rebuild (rebuildPostgresPassword), else generated once.
        self.password = (
            pulumi.Output.secret(password) if password is not None else generated_password(resource_name, child).value
        )
        # Each application's own role and password (separate secrets), set on every volume by the roles
        # step, as the superuser. A password generation N >= 1 (rotation.*.postgresPassword) is a new
        # value for new login roles lobechat_gN / logto_gN (components/postgres_logins.py); generation 0
        # is the owner roles with the values generated before rotation existed (no keepers: no change).
        self.password_generation: pulumi.Output[int] = pulumi.Output.from_input(
            password_generation if password_generation is not None else 0
        ).apply(lambda g: int(g or 0))
        keepers = self.password_generation.apply(password_keepers)
        self.lobechat_password = RandomSecret(
            f"{resource_name}-lobechat-password", length=32, alphabet=ALPHANUMERIC, keepers=keepers, opts=child
        )
        self.logto_password = RandomSecret(
            f"{resource_name}-logto-password", length=32, alphabet=ALPHANUMERIC, keepers=keepers, opts=child
        )
        self.lobechat_login = self.password_generation.apply(lambda g: login_role(LOBECHAT_ROLE, g))
        self.logto_login = self.password_generation.apply(lambda g: login_role(LOGTO_ROLE, g))
        self.logto_database_url = role_database_url(self.logto_login, self.logto_password.value, LOGTO_DATABASE, NETWORK_ALIAS)
        self.lobechat_database_url = role_database_url(
            self.lobechat_login, self.lobechat_password.value, LOBECHAT_DATABASE, NETWORK_ALIAS
        )
        self.image = docker.RemoteImage(f"{resource_name}-image", name=config.image, keep_locally=True, opts=child)
        volume_name = data_volume_name or default_data_volume(name_prefix)
        self.volume = docker.Volume(
            # Another volume (a major upgrade) is another resource: the protected old one is never replaced.
            f"{resource_name}-data" if volume_name == default_data_volume(name_prefix) else f"{resource_name}-data-{volume_name}",
            name=volume_name,
            labels=[docker.VolumeLabelArgs(label="lobechat-logto.volume", value="postgres-data")],
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        self.image_id = self.image.image_id

    def start(self, data_safety: PostgresDataSafety | None = None) -> docker.Container:
        """Declare the container (after the data safety steps, when given); return it."""
        resource_name, config, network_name, name_prefix = self._resource_name, self._config, self._network_name, self._name_prefix
        password = self.password
        before_start: list[pulumi.Input[pulumi.Resource]] = []
        claim: pulumi.Input[str] = ""
        if data_safety is not None:
            claim = data_safety.claim
            before_start = [*data_safety.before_start, self._volume_check(resource_name, data_safety, network_name)]
        envs = pulumi.Output.secret(
            pulumi.Output.all(password, claim).apply(
                lambda values: [
                    f"POSTGRES_USER={SUPERUSER}",
                    f"POSTGRES_PASSWORD={values[0]}",
                    f"POSTGRES_DB={LOBECHAT_DATABASE}",
                    *([f"EXPECTED_CLAIM={values[1]}"] if values[1] else []),
                ]
            )
        )
        uploads = [docker.ContainerUploadArgs(file=INIT_SCRIPT_PATH, content=INIT_SCRIPT)]
        if data_safety is not None:
            # The claim: written once, by the entrypoint, into a volume it has just initialised.
            uploads += [
                docker.ContainerUploadArgs(file=SCRIPT_PATH_IN_CONTAINER, content=backup_script()),
                docker.ContainerUploadArgs(file=CLAIM_INIT_SCRIPT_PATH, content=CLAIM_INIT_SCRIPT),
            ]
        self.container = docker.Container(
            resource_name,
            name=f"{name_prefix}-postgres",
            image=self.image.image_id,
            command=list(config.command) or None,
            envs=envs,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_PATH)],
            uploads=uploads,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=[NETWORK_ALIAS])],
            healthcheck=postgres_healthcheck(start_interval=self._health_start_interval),
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            memory=self._memory_mb,
            # Not the provider's wait (it sees "healthy" up to an interval late): our readiness wait,
            # which also fails with the tail of the server's log when it does not come up.
            wait=False,
            # A clean shutdown (SIGINT: fast shutdown, a checkpoint) on every replacement and destroy;
            # a kill means crash recovery at the next start.
            stop_signal="SIGINT",
            stop_timeout=STOP_GRACE_SECONDS,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            # Fixed container name: the old one must go before the new one can take its name; and
            # never two servers on one volume.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=before_start),
        )
        self.readiness = readiness.ReadinessWait(
            f"{resource_name}-ready",
            target=self.container,
            probe=postgres_readiness_probe(self.image.image_id),
            network_name=network_name,
            secrets=[self.password],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.roles = PostgresRoles(
            f"{resource_name}-roles",
            image=self.image.image_id,
            network_name=network_name,
            host=NETWORK_ALIAS,
            superuser=SUPERUSER,
            superuser_password=self.password,
            lobechat_password=self.lobechat_password.value,
            logto_password=self.logto_password.value,
            generation=self.password_generation,
            memory_mb=self._one_shot_memory_mb,
            depends_on=[self.readiness.ready],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # "Ready" means the roles exist: nobody connects before its role and database are in place.
        self.ready = self.roles.ready
        self.register_outputs(
            {
                "logto_database_url": self.logto_database_url,
                "lobechat_database_url": self.lobechat_database_url,
                "image_id": self.image_id,
            }
        )
        return self.container

    def retire_logins(
        self, *, lobechat_keep: pulumi.Input[int], depends_on: Sequence[pulumi.Input[pulumi.Resource]]
    ) -> PostgresLoginRetirement:
        """Declare the retirement of earlier generations' logins (after ``depends_on``: the new LobeChat
        and Logto ready); Logto's previous login goes now, LobeChat's when ``lobechat_keep`` says so."""
        self.login_retirement = PostgresLoginRetirement(
            f"{self._resource_name}-logins",
            image=self.image.image_id,
            network_name=self._network_name,
            host=NETWORK_ALIAS,
            superuser=SUPERUSER,
            superuser_password=self.password,
            generation=self.password_generation,
            lobechat_keep=pulumi.Output.all(lobechat_keep, self.password_generation).apply(lambda v: min(int(v[0] or 0), v[1])),
            logto_keep=self.password_generation,
            memory_mb=self._one_shot_memory_mb,
            depends_on=depends_on,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return self.login_retirement

    def _volume_check(self, resource_name: str, data_safety: PostgresDataSafety, network_name: pulumi.Input[str]) -> pulumi.Output[pulumi.Resource]:
        """A one-shot check with the new image, before the new container starts: refuses data of another
        major, data created with other secrets, unclaimed data, and a volume another server runs on."""
        envs = pulumi.Output.secret(
            pulumi.Output.all(data_safety.claim, data_safety.legacy_claim, data_safety.had_previous).apply(
                lambda v: [
                    *connection_env(),
                    "DATA_DIR=/data",
                    f"EXPECTED_CLAIM={v[0]}",
                    *([f"LEGACY_CLAIM={v[1]}"] if v[1] else []),
                    f"HAD_PREVIOUS={'1' if v[2] else '0'}",
                    f"ALLOW_UNCLAIMED={'1' if (v[2] or data_safety.adopt_volume) else '0'}",
                ]
            )
        )
        self.volume_check = one_shot_container(
            f"{resource_name}-volume-check",
            image=self.image.image_id,
            entrypoints=["sh", SCRIPT_PATH_IN_CONTAINER, "check-volume"],
            envs=envs,
            uploads=[docker.ContainerUploadArgs(file=SCRIPT_PATH_IN_CONTAINER, content=backup_script()), pgpass_upload(self.password)],
            labels={SCRIPT_HASH_LABEL: backup_script_sha256(), ROLE_LABEL: "volume-check"},
            network_name=network_name,
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path="/data")],
            memory_mb=self._one_shot_memory_mb,
            # Side by side with the snapshot (it only reads the volume); both come before the container.
            opts=pulumi.ResourceOptions(parent=self),
        )
        outcome = pulumi.Output.all(
            self.volume_check.exit_code, self.volume_check.container_logs, self.volume_check.urn
        ).apply(lambda v: check_step_exit("data volume check", v[0], v[1], v[2] or ""))
        return outcome.apply(lambda _: self.volume_check)


def default_data_volume(name_prefix: str) -> str:
    """The data volume's name unless ``dataSafety.dataVolume`` says otherwise."""
    return f"{name_prefix}-postgres-data"


@dataclass(frozen=True)
class PostgresDataSafety:
    """What the Postgres component needs from the data safety steps (components/data_safety.py)."""

    claim: pulumi.Input[str]
    had_previous: pulumi.Input[bool]
    adopt_volume: bool
    legacy_claim: pulumi.Input[str] = ""
    """The one-digest claim volumes were claimed with before two-part claims (accepted and rewritten)."""
    before_start: Sequence[pulumi.Input[pulumi.Resource]] = ()
