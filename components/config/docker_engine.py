"""Config of what the stage's Docker engine supports: ``dockerHealthStartInterval``.

``dockerHealthStartInterval`` (bool, default false): the Docker engine is 25 or newer (API 1.44), so
the containers' health checks also get a 1 s ``start_interval`` while starting. Off by default
because the provider's Docker client refuses to create a container with a start interval on an
older engine (Debian 12's ``docker.io`` 20.10 is API 1.41): ``pulumi up`` would fail there.
``pulumi up``'s own readiness waits do not depend on it (``components/readiness.py``).
"""

from __future__ import annotations

from components.config.errors import Problems
from components.config.sources import ConfigSource

KEY = "dockerHealthStartInterval"
KEYS = frozenset({KEY})


def read_health_start_interval(source: ConfigSource, problems: Problems) -> bool:
    """The ``dockerHealthStartInterval`` value (false when unset); a non-boolean is a problem."""
    value = source.get(KEY)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    problems.add(
        KEY,
        "must be true or false (true only when the Docker engine is 25 or newer: older engines, such as "
        "Debian 12's docker.io 20.10, refuse containers with a health-check start interval)",
    )
    return False
