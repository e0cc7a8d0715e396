"""The ``logtoDatabase`` section: how the stack prepares Logto's database.

```yaml
lobechat-logto:logtoDatabase:
  skipSeed: false   # true: never seed (the database was seeded once by a privileged user); only alterations
```
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # stage.py imports this module: no runtime import of errors/sources (they import stage)
    from components.config.errors import Problems
    from components.config.sources import ConfigSource

KEYS = frozenset({"logtoDatabase"})


@dataclass(frozen=True)
class LogtoDatabaseConfig:
    """Attributes:
    skip_seed: never run ``logto db seed`` (Logto's ``--skip-seed``); the preflight then requires a
        seeded database. For a database user that must not create roles.
    """

    skip_seed: bool = False


def read_logto_database(source: ConfigSource, problems: Problems) -> LogtoDatabaseConfig:
    try:
        obj = source.get_object("logtoDatabase")
    except Exception:  # pulumi raises on malformed JSON; name the key, not the parser's text
        problems.add("logtoDatabase", "is not valid structured config (YAML mapping expected)")
        return LogtoDatabaseConfig()
    if obj is None:
        return LogtoDatabaseConfig()
    if not isinstance(obj, dict):
        problems.add("logtoDatabase", "must be a mapping (YAML object) of settings")
        return LogtoDatabaseConfig()
    for name in obj:
        if name != "skipSeed":
            problems.add(f"logtoDatabase.{name}", "unknown setting; the settings of logtoDatabase are: skipSeed")
    value = obj.get("skipSeed", False)
    if not isinstance(value, bool) and str(value).strip().lower() not in ("true", "false"):
        problems.add("logtoDatabase.skipSeed", "must be true or false")
        return LogtoDatabaseConfig()
    return LogtoDatabaseConfig(skip_seed=value if isinstance(value, bool) else str(value).strip().lower() == "true")
