"""``memoryLimits``: the memory limit of each container, in MiB (``docker run --memory``).

Defaults are generous for one stage (a runaway container is stopped before it takes the host down):
Postgres 1024, Logto 1024 (Node plus seeding), LobeChat 2048 (Next.js server), one-shot psql steps 256.
"""

from __future__ import annotations

from components.config.errors import Problems
from components.config.fields import read_object, unknown_fields
from components.config.sources import ConfigSource
from components.config.stage import MemoryLimits

KEYS = frozenset({"memoryLimits"})

MIN_MB = 64
MAX_MB = 1024 * 1024


_FIELDS = {"postgres": "postgres", "logto": "logto", "lobechat": "lobechat", "oneShot": "one_shot"}


def read_memory_limits(source: ConfigSource, problems: Problems) -> MemoryLimits:
    obj = read_object(source, problems, "memoryLimits")
    unknown_fields(problems, "memoryLimits", obj, set(_FIELDS))
    values: dict[str, int] = {}
    for name, attribute in _FIELDS.items():
        raw = obj.get(name)
        if raw is None:
            continue
        if isinstance(raw, bool) or not isinstance(raw, int) or not MIN_MB <= raw <= MAX_MB:
            problems.add(
                f"memoryLimits.{name}",
                f"must be a whole number of MiB from {MIN_MB} to {MAX_MB} (e.g. 1024); there is no unlimited setting",
            )
            continue
        values[attribute] = raw
    return MemoryLimits(**values)
