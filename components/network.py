"""The stage's one user-defined bridge network (containers find each other by name and alias on it),
and the ``/etc/hosts`` entries for public names served by a proxy on the Docker host."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_docker as docker


def host_gateway_entries(names: Sequence[str]) -> list[docker.ContainerHostArgs] | None:
    """``/etc/hosts`` entries sending public names to the Docker host, where the operator's proxy listens.

    For a proxy on the Docker host without hairpin NAT: Logto reaches its own ADMIN_ENDPOINT and
    LobeChat's webhook URL, and LobeChat reaches the issuer, through that proxy.
    """
    return [docker.ContainerHostArgs(host=name, ip="host-gateway") for name in names] or None


class StageNetwork(pulumi.ComponentResource):
    """One Docker bridge network per stage (``<resourcePrefix>-net``).

    Output ``name``: the network's name, for ``networks_advanced`` of every container.
    """

    name: pulumi.Output[str]

    def __init__(self, resource_name: str, *, network_name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lobechat-logto:network:StageNetwork", resource_name, None, opts)
        self.network = docker.Network(
            f"{resource_name}-bridge",
            name=network_name,
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label="lobechat-logto.network", value=network_name)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = self.network.name
        self.register_outputs({"name": self.name})
