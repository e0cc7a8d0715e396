"""``dockerHost``: the Docker daemon the stage deploys to."""

from __future__ import annotations

import re

from components.config.errors import Problems
from components.config.sources import ConfigSource

KEYS = frozenset({"dockerHost"})


def read_docker_host(source: ConfigSource, problems: Problems) -> str | None:
    raw = source.get("dockerHost")
    if raw is None or not raw.strip():
        return None
    host = raw.strip()
    if not re.match(r"^(ssh|tcp|unix|npipe)://\S+$", host):
        problems.add("dockerHost", "must be a Docker host URL such as ssh://deploy@docker.example.com or unix:///var/run/docker.sock")
        return None
    return host


