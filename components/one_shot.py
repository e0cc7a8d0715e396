"""One-shot step containers: run once to completion, and the stack reads how they ended.

Every step the stack runs inside the stage (the Logto bootstrap, the Postgres roles and login retirement,
Logto's database preflight and setup, the volume check and snapshots, the readiness waits) is a container
that Docker starts once and never restarts; the provider waits for it to exit (``attach``), keeps its
output (``logs``) and reports its exit code instead of failing on a non-zero one (``must_run=False``), so
the step's own check can turn a failure into one clear error. Secrets reach such a step only as files
(mode 0600) the step deletes after reading, never in its environment (``docker inspect`` shows it).

- :func:`one_shot_container`: the container with those settings and the hardening of every container;
- :func:`secret_file_uploads`: files of secret content, one upload each, each a Pulumi secret;
- :func:`replace_target`: the ``pulumi up --replace`` target a failure message names (a failed step
  stays in the state with its exit code, so a plain ``pulumi up`` would not run it again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from components.container_labels import ROLE_LABEL
from components.hardening import SECURITY_OPTS

__all__ = ["ROLE_LABEL", "one_shot_container", "replace_target", "secret_file_uploads"]


def one_shot_container(
    resource_name: str,
    *,
    image: pulumi.Input[str],
    entrypoints: pulumi.Input[Sequence[pulumi.Input[str]]],
    network_name: pulumi.Input[str] | None,
    labels: Mapping[str, pulumi.Input[str]],
    command: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    envs: pulumi.Input[Sequence[pulumi.Input[str]]] | None = None,
    uploads: Sequence[docker.ContainerUploadArgs] | None = None,
    volumes: Sequence[docker.ContainerVolumeArgs] | None = None,
    memory_mb: int = 256,
    opts: pulumi.ResourceOptions | None = None,
    **container_args: Any,
) -> docker.Container:
    """A container that runs once, attached, its exit code and output read back (see the module doc).

    ``labels`` keep their order (``ROLE_LABEL`` among them); ``memory_mb`` is Docker's hard limit.
    ``network_name`` is the stage network it joins; ``None`` with ``network_mode`` among
    ``container_args`` (the other `docker.Container` arguments: ``hosts``, ``tmpfs``…) to share another's.
    """
    return docker.Container(
        resource_name,
        image=image,
        entrypoints=entrypoints,
        command=command,
        envs=envs,
        uploads=list(uploads) if uploads is not None else None,
        labels=[docker.ContainerLabelArgs(label=key, value=value) for key, value in labels.items()],
        networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network_name)] if network_name is not None else None,
        volumes=list(volumes) if volumes is not None else None,
        attach=True,
        logs=True,
        must_run=False,
        restart="no",
        security_opts=SECURITY_OPTS,
        memory=memory_mb,
        opts=opts,
        **container_args,
    )


def secret_file_uploads(files: pulumi.Output[Mapping[str, str]], paths: Sequence[str]) -> list[docker.ContainerUploadArgs]:
    """One 0600 upload per path in ``paths``, its content ``files[path]`` as a Pulumi secret."""
    def content(path: str) -> pulumi.Output[Any]:
        return pulumi.Output.secret(files.apply(lambda values: values[path]))

    return [docker.ContainerUploadArgs(file=path, content=content(path), permissions="0600") for path in paths]


def replace_target(urn: str, what: str) -> str:
    """``'<urn>'``, or, without one, a placeholder saying where to find the URN of ``what``."""
    return f"'{urn}'" if urn else f"<URN of {what} (pulumi stack --show-urns)>"
