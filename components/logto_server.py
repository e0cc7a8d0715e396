"""The Logto container: pinned image, a start command that seeds and upgrades its database, health.

At every start the container seeds a new database (``--swe``: skip when it is already seeded) and
deploys pending database alterations, then starts Logto; so changing the pinned image upgrades the
database (the docs' "one-click upgrade") instead of leaving Logto refusing to start.

Name resolution (``../shared/docs/logto.md``): Logto fetches keys from its own ``ADMIN_ENDPOINT`` and
LobeChat fetches ``<ENDPOINT>/oidc`` from its container. For ``*.localhost`` URLs (the dev stage) the
container gets both host names as network aliases and listens on the URLs' ports, so the same URL
answers in the browser (loopback, published port) and inside the network (alias). Public https names
are left to DNS and the operator's proxy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi
import pulumi_docker as docker

from components import readiness
from components.config import LogtoConfig, PublishConfig
from components.logto_database import LogtoDatabaseSetup, setup_command
from components.hardening import SECURITY_OPTS
from components.container_labels import stage_role_labels
from components.network import host_gateway_entries

NETWORK_ALIAS = "logto"
READY_TIMEOUT_SECONDS = 300
"""How long ``pulumi up`` waits for a new Logto container (seed plus alterations on a new database
take about 12 s, an upgrade's alterations longer)."""


def start_command(*, external_database: bool, skip_seed: bool = False) -> str:
    """The shell command the container runs: seed if new, deploy alterations, start.

    `LogtoDatabaseSetup` runs the same steps first and reports a failure with the log's tail; here
    they are a safety net and no-ops. ``--encrypt-base-role`` on external databases: hosted ones
    (Neon and the like) do not let the seed create roles with plain rights.
    """
    return f"{setup_command(external_database=external_database, skip_seed=skip_seed)} && npm start"


def healthcheck_test(port: int) -> list[str]:
    """``GET /api/status`` must answer 204; node's fetch, since the image has no curl.

    127.0.0.1 rather than ``localhost``: Node may resolve ``localhost`` to ``::1`` first, which fails
    where the container has no IPv6; Logto serves its default tenant on any non-admin host name.
    """
    script = (
        f"fetch('http://127.0.0.1:{port}/api/status')"
        ".then(r=>process.exit(r.status===204?0:1)).catch(()=>process.exit(1))"
    )
    return ["CMD", "node", "-e", script]


def logto_healthcheck(port: int, *, start_interval: bool) -> docker.ContainerHealthcheckArgs:
    """Docker's check: every 30 s (each check starts a ``node``), 1 s while starting on Engine 25+."""
    return readiness.healthcheck(healthcheck_test(port), interval="30s", start_period="300s", start_interval=start_interval)


def logto_readiness_probe(image: pulumi.Input[str], port: int) -> Callable[[str], readiness.ReadinessProbe]:
    """The readiness wait: one ``node`` from the Logto image polling ``/api/status`` (204) by container name."""

    def probe(host: str) -> readiness.ReadinessProbe:
        return readiness.ReadinessProbe(
            image=image,
            entrypoint=readiness.http_probe(
                "node", f"http://{host}:{port}/api/status", ok="s===204", timeout_seconds=READY_TIMEOUT_SECONDS
            ),
            timeout_seconds=READY_TIMEOUT_SECONDS,
        )

    return probe


def network_aliases(config: LogtoConfig, *, host_names: bool = True) -> list[str]:
    """``logto`` plus the host names of ENDPOINT and ADMIN_ENDPOINT when they are ``*.localhost``.

    ``host_names=False`` behind the stack's front: the host names are the front's aliases then.
    """
    aliases = [NETWORK_ALIAS]
    if not host_names:
        return aliases
    admin = config.admin_endpoint if config.expose_admin_console else None
    for origin in (config.endpoint, admin):
        if origin is not None and origin.is_localhost and origin.host not in aliases:
            aliases.append(origin.host)
    return aliases


def logto_environment(config: LogtoConfig, database_url: str) -> list[str]:
    """The container's environment (``NAME=value``); holds the database password: keep it secret."""
    admin_endpoint = config.admin_endpoint_url
    assert admin_endpoint is not None, "a Logto container needs logto.adminEndpoint"
    return [
        f"DB_URL={database_url}",
        f"ENDPOINT={config.endpoint.url}",
        # Closed console: a loopback URL, which Logto reaches inside its own container (its admin
        # port) and the operator through an SSH tunnel to the same port.
        f"ADMIN_ENDPOINT={admin_endpoint}",
        f"TRUST_PROXY_HEADER={'1' if config.trust_proxy_header else '0'}",
        f"PORT={config.container_port}",
        f"ADMIN_PORT={config.container_admin_port}",
        # The alteration step prompts for confirmation unless CI is set.
        "CI=true",
    ]


def admin_bind_address(config: LogtoConfig, publish: PublishConfig) -> str:
    """Where the admin console's port is published: ``publish.bindAddress`` only when the console is open.

    Closed (``logto.exposeAdminConsole: false``, the default off 'dev'): 127.0.0.1, reached from the
    operator's machine through an SSH tunnel.
    """
    return publish.bind_address if config.expose_admin_console else "127.0.0.1"


def admin_tunnel_command(config: LogtoConfig, publish: PublishConfig, docker_host: str | None) -> str | None:
    """The SSH command that opens the closed admin console on the operator's machine, or None."""
    if config.mode != "container" or config.expose_admin_console or not publish.enabled:
        return None
    local, remote = config.container_admin_port, publish.logto_admin_port
    target = "<user>@<docker host>"
    if docker_host and docker_host.startswith("ssh://"):
        rest = docker_host[len("ssh://"):]
        host_part, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "")
        target = f"{host_part} -p {port}" if port else rest
    return f"ssh -N -L {local}:127.0.0.1:{remote} {target}"


LOGTO_STOP_GRACE_SECONDS = 30


class LogtoServer(pulumi.ComponentResource):
    """Logto in a container on the stage network, waited on until ``/api/status`` answers 204.

    Outputs: ``endpoint``, ``admin_endpoint``, ``container``, ``ready`` (put it in ``depends_on`` to
    run after ``/api/status`` answers 204, see ``components/readiness.py``).
    """

    endpoint: pulumi.Output[str]
    admin_endpoint: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        config: LogtoConfig,
        database_url: pulumi.Input[str],
        external_database: bool,
        network_name: pulumi.Input[str],
        publish: PublishConfig,
        name_prefix: str,
        proxied_host_names: Sequence[str] = (),
        depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
        health_start_interval: bool = False,
        psql_image: pulumi.Input[str] | None = None,
        skip_seed: bool = False,
        behind_front: bool = False,
        memory_mb: int = 1024,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:logto:LogtoServer", resource_name, None, opts)
        self.image = docker.RemoteImage(
            f"{resource_name}-image", name=config.image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        ready: pulumi.Input[str] = ""
        self.database_setup: LogtoDatabaseSetup | None = None
        if psql_image is not None:
            self.database_setup = LogtoDatabaseSetup(
                f"{resource_name}-database",
                logto_image=self.image.image_id,
                psql_image=psql_image,
                network_name=network_name,
                database_url=database_url,
                external_database=external_database,
                skip_seed=skip_seed,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
            )
            ready = self.database_setup.ready
        # The environment waits on the database setup's outcome: no Logto container after a failure.
        envs = pulumi.Output.secret(
            pulumi.Output.all(database_url, ready).apply(lambda values: logto_environment(config, values[0]))
        )
        ports = None
        if publish.enabled and not behind_front:
            ports = [
                docker.ContainerPortArgs(internal=config.container_port, external=publish.logto_port, ip=publish.bind_address),
                docker.ContainerPortArgs(
                    internal=config.container_admin_port,
                    external=publish.logto_admin_port,
                    ip=admin_bind_address(config, publish),
                ),
            ]
        elif publish.enabled and not config.expose_admin_console:
            # Behind the front a closed admin console is still published on the Docker host's
            # loopback, for the operator's SSH tunnel (`logtoAdminTunnel`); nothing else is.
            ports = [
                docker.ContainerPortArgs(
                    internal=config.container_admin_port, external=publish.logto_admin_port, ip="127.0.0.1"
                )
            ]
        self.container = docker.Container(
            resource_name,
            name=f"{name_prefix}-logto",
            image=self.image.image_id,
            entrypoints=["sh", "-c", start_command(external_database=external_database, skip_seed=skip_seed)],
            envs=envs,
            ports=ports,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network_name, aliases=network_aliases(config, host_names=not behind_front)
                )
            ],
            hosts=None if behind_front else host_gateway_entries(proxied_host_names),
            healthcheck=logto_healthcheck(config.container_port, start_interval=health_start_interval),
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            memory=memory_mb,
            # Not the provider's wait (it sees "healthy" up to an interval late): our readiness wait.
            wait=False,
            # Requests in flight finish and connections close before a replacement or destroy.
            stop_timeout=LOGTO_STOP_GRACE_SECONDS,
            destroy_grace_seconds=LOGTO_STOP_GRACE_SECONDS,
            labels=stage_role_labels(name_prefix, "logto"),
            # A component's depends_on does not reach its children: the container itself must wait
            # for a ready Postgres, or the seed fails and Logto crash-loops until Postgres is up.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), delete_before_replace=True),
        )
        self.readiness = readiness.ReadinessWait(
            f"{resource_name}-ready",
            target=self.container,
            probe=logto_readiness_probe(self.image.image_id, config.container_port),
            network_name=network_name,
            secrets=[database_url],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ready = self.readiness.ready
        self.endpoint = pulumi.Output.from_input(config.endpoint.url)
        self.admin_endpoint = pulumi.Output.from_input(config.admin_endpoint_url or "")
        self.register_outputs({"endpoint": self.endpoint, "admin_endpoint": self.admin_endpoint})
