"""The LobeChat (database edition) container.

Its environment comes whole from ``lobechat_env`` as one secret Output. For a ``*.localhost`` LobeChat
URL (the dev stage) the container gets that host name as a network alias, so Logto delivers webhooks
to the same URL the browser uses; the issuer's host name resolves through the Logto container's
aliases on the same network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pulumi
import pulumi_docker as docker

from components import readiness
from components.config import LOBECHAT_CONTAINER_PORT, Origin, PublishConfig
from components.hardening import SECURITY_OPTS
from components.container_labels import stage_role_labels
from components.network import host_gateway_entries

NETWORK_ALIAS = "lobechat"
READY_TIMEOUT_SECONDS = 300
"""How long ``pulumi up`` waits for a new LobeChat container (its database migrations run at start)."""


def healthcheck_test(generation: int) -> list[str]:
    """1.x has no health route: any answer below 500 from ``GET /``; 2.x: ``GET /api/version`` is 200.

    The image is ``FROM scratch`` with ``/bin/node`` (no curl), so the probe is node's fetch, to
    127.0.0.1 because the server listens on 0.0.0.0 (IPv4) and ``localhost`` may resolve to ``::1``.
    """
    if generation == 2:
        check = f"fetch('http://127.0.0.1:{LOBECHAT_CONTAINER_PORT}/api/version').then(r=>process.exit(r.ok?0:1))"
    else:
        check = (
            f"fetch('http://127.0.0.1:{LOBECHAT_CONTAINER_PORT}/',{{redirect:'manual'}})"
            ".then(r=>process.exit(r.status<500?0:1))"
        )
    return ["CMD", "/bin/node", "-e", check + ".catch(()=>process.exit(1))"]


def ready_path_and_condition(generation: int) -> tuple[str, str]:
    """What "ready" means, as in ``healthcheck_test``: 2.x ``/api/version`` 2xx, 1.x ``/`` below 500."""
    if generation == 2:
        return "/api/version", "s>=200&&s<300"
    return "/", "s<500"


def lobechat_healthcheck(generation: int, *, start_interval: bool) -> docker.ContainerHealthcheckArgs:
    """Docker's check: every 30 s (each check starts a ``node``), 1 s while starting on Engine 25+."""
    return readiness.healthcheck(healthcheck_test(generation), interval="30s", start_period="300s", start_interval=start_interval)


def lobechat_readiness_probe(image: pulumi.Input[str], generation: int) -> Callable[[str], readiness.ReadinessProbe]:
    """The readiness wait: one ``/bin/node`` from the LobeChat image polling it by container name."""
    path, condition = ready_path_and_condition(generation)

    def probe(host: str) -> readiness.ReadinessProbe:
        return readiness.ReadinessProbe(
            image=image,
            entrypoint=readiness.http_probe(
                "/bin/node", f"http://{host}:{LOBECHAT_CONTAINER_PORT}{path}", ok=condition,
                timeout_seconds=READY_TIMEOUT_SECONDS,
            ),
            timeout_seconds=READY_TIMEOUT_SECONDS,
        )

    return probe


def network_aliases(url: Origin) -> list[str]:
    """``lobechat`` plus the LobeChat host name when it is a ``*.localhost`` name."""
    return [NETWORK_ALIAS] + ([url.host] if url.is_localhost else [])


class LobeChatServer(pulumi.ComponentResource):
    """LobeChat in a container, started after the Logto resources it is wired to, waited on until ready.

    Output ``ready``: resolves (to the container name) once LobeChat answers; a container that never
    does fails ``pulumi up`` with its log's tail (``components/readiness.py``).
    """

    def __init__(
        self,
        resource_name: str,
        *,
        image: str,
        generation: int,
        url: Origin,
        envs: pulumi.Input[Sequence[str]],
        network_name: pulumi.Input[str],
        publish: PublishConfig,
        name_prefix: str,
        depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
        proxied_host_names: Sequence[str] = (),
        health_start_interval: bool = False,
        secrets: Sequence[pulumi.Input[str]] = (),
        rolling: bool = False,
        grace_seconds: int = 30,
        memory_mb: int = 2048,
        extra_aliases: Sequence[pulumi.Input[str]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:lobechat:LobeChatServer", resource_name, None, opts)
        self.image = docker.RemoteImage(
            f"{resource_name}-image", name=image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        ports = None
        if publish.enabled and not rolling:
            ports = [
                docker.ContainerPortArgs(
                    internal=LOBECHAT_CONTAINER_PORT, external=publish.lobechat_port, ip=publish.bind_address
                )
            ]
        # Behind the stack's front (``rolling``) the container has no fixed name (Pulumi names it
        # ``lobechat-<random>``, a new name at each replacement) and no host port, so a change of its
        # image or environment starts the new container first; the front moves traffic once it is
        # ready and Pulumi deletes the old one last. The Docker provider asks for delete-first on
        # every container replacement, so create-first must be requested explicitly.
        rollout = pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), delete_before_replace=not rolling)
        self.container = docker.Container(
            resource_name,
            name=None if rolling else f"{name_prefix}-lobechat",
            image=self.image.image_id,
            envs=pulumi.Output.secret(envs),
            ports=ports,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(
                    name=network_name,
                    aliases=[*([NETWORK_ALIAS] if rolling else network_aliases(url)), *extra_aliases],
                )
            ],
            hosts=None if rolling else host_gateway_entries(proxied_host_names),
            healthcheck=lobechat_healthcheck(generation, start_interval=health_start_interval),
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            memory=memory_mb,
            # Not the provider's wait (it sees "healthy" up to an interval late): our readiness wait.
            wait=False,
            # Stopping (also when Pulumi deletes a replaced container): SIGTERM, then SIGKILL after this.
            stop_timeout=grace_seconds,
            destroy_grace_seconds=grace_seconds,
            labels=stage_role_labels(name_prefix, "lobechat"),
            opts=rollout,
        )
        self.readiness = readiness.ReadinessWait(
            f"{resource_name}-ready",
            target=self.container,
            probe=lobechat_readiness_probe(self.image.image_id, generation),
            network_name=network_name,
            secrets=list(secrets),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.ready = self.readiness.ready
        self.register_outputs({"container_name": self.container.name, "ready": self.ready.apply(lambda _: True)})
