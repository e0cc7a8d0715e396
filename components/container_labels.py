"""Labels naming the stage and role of each long-running container, and shell selections by them.

The LobeChat container has a generated name behind the front (``front.mode: caddy``: rolling,
create-before-delete), so commands for operators select containers by these labels, never by name.
"""
from __future__ import annotations

import pulumi_docker as docker

STAGE_LABEL = "lobechat-logto.stage"
ROLE_LABEL = "lobechat-logto.role"


def stage_role_labels(name_prefix: str, role: str) -> list[docker.ContainerLabelArgs]:
    """The stage and role labels of a long-running container."""
    return [
        docker.ContainerLabelArgs(label=STAGE_LABEL, value=name_prefix),
        docker.ContainerLabelArgs(label=ROLE_LABEL, value=role),
    ]


def select_ids(name_prefix: str, role: str, *, include_stopped: bool = False, env: str = "") -> str:
    """``$(docker ps -q ...)``: the ids of this stage's containers with this role (``-aq``: also stopped ones)."""
    flags = "-aq" if include_stopped else "-q"
    return f"$({env}docker ps {flags} --filter label={STAGE_LABEL}={name_prefix} --filter label={ROLE_LABEL}={role})"


def logs_hint(role: str) -> str:
    """A `docker logs` hint that works with generated container names (``<prefix>``: the stage's prefix)."""
    return f"docker logs $(docker ps -lq --filter label={STAGE_LABEL}=<prefix> --filter label={ROLE_LABEL}={role})"
