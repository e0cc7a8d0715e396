"""The LobeChat (database edition) container.

Its environment comes whole from ``lobechat_env`` as one secret Output. For a ``*.localhost`` LobeChat
URL (the dev stage) the container gets that host name as a network alias, so Logto delivers webhooks
to the same URL the browser uses; the issuer's host name resolves through the Logto container's
aliases on the same network.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from components.config import LOBECHAT_CONTAINER_PORT, Origin, PublishConfig
from components.hardening import SECURITY_OPTS
from components.network import host_gateway_entries

NETWORK_ALIAS = "lobechat"


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


def network_aliases(url: Origin) -> list[str]:
    """``lobechat`` plus the LobeChat host name when it is a ``*.localhost`` name."""
    return [NETWORK_ALIAS] + ([url.host] if url.is_localhost else [])


class LobeChatServer(pulumi.ComponentResource):
    """LobeChat in a container, started after the Logto resources it is wired to, waited on until healthy."""

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
        depends_on: Sequence[pulumi.Resource] = (),
        proxied_host_names: Sequence[str] = (),
        memory_mb: int = 2048,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:lobechat:LobeChatServer", resource_name, None, opts)
        self.image = docker.RemoteImage(
            f"{resource_name}-image", name=image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        ports = None
        if publish.enabled:
            ports = [
                docker.ContainerPortArgs(
                    internal=LOBECHAT_CONTAINER_PORT, external=publish.lobechat_port, ip=publish.bind_address
                )
            ]
        self.container = docker.Container(
            resource_name,
            name=f"{name_prefix}-lobechat",
            image=self.image.image_id,
            envs=pulumi.Output.secret(envs),
            ports=ports,
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=network_aliases(url))],
            hosts=host_gateway_entries(proxied_host_names),
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=healthcheck_test(generation),
                interval="10s",
                timeout="5s",
                retries=12,
                # Database migrations run at start.
                start_period="60s",
            ),
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            memory=memory_mb,
            wait=True,
            wait_timeout=300,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on), delete_before_replace=True),
        )
        self.register_outputs({"container_name": self.container.name})
