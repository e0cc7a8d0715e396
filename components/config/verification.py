"""The ``verification`` section: the checks run at the end of ``pulumi up``.

```yaml
lobechat-logto:verification:
  enabled: true              # default; false skips the checks on this stage
  onFailure: fail            # fail (default: `pulumi up` fails with the list) | warn (warnings only)
  inNetworkProbe: true       # a one-shot container fetches the discovery URL inside the stage network
  secretExpiryWarningDays: 14
  lobechatCheckUrl: http://127.0.0.1:3210   # where this machine reaches LobeChat (default below)
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # stage.py imports this module: no runtime import of errors/sources (they import stage)
    from components.config.errors import Problems
    from components.config.sources import ConfigSource

KEYS = frozenset({"verification"})
_FIELDS = {"enabled", "onFailure", "inNetworkProbe", "secretExpiryWarningDays", "lobechatCheckUrl"}
ON_FAILURE = ("fail", "warn")


@dataclass(frozen=True)
class VerificationConfig:
    """Post-deploy verification of one stage.

    Attributes:
        enabled: run the checks at the end of ``pulumi up``.
        on_failure: ``fail`` (a failed check fails ``pulumi up`` with the list) or ``warn``.
        in_network_probe: fetch the discovery URL from a one-shot container on the stage network.
        secret_expiry_warning_days: a client secret expiring sooner than this fails the check.
        lobechat_check_url: where this machine reaches LobeChat; None: the published port on 127.0.0.1
            for a ``*.localhost`` URL, else ``lobechatUrl`` itself.
    """

    enabled: bool = True
    on_failure: str = "fail"
    in_network_probe: bool = True
    secret_expiry_warning_days: int = 14
    lobechat_check_url: str | None = None


def _bool(obj: Mapping[str, Any], name: str, problems: Problems, default: bool) -> bool:
    value = obj.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    problems.add(f"verification.{name}", "must be true or false")
    return default


def read_verification(source: ConfigSource, problems: Problems) -> VerificationConfig:
    """Read and check the ``verification`` section (every field optional)."""
    try:
        obj = source.get_object("verification")
    except Exception:  # pulumi raises on malformed JSON; name the key, not the parser's text
        problems.add("verification", "is not valid structured config (YAML mapping expected)")
        return VerificationConfig()
    if obj is None:
        return VerificationConfig()
    if not isinstance(obj, dict):
        problems.add("verification", "must be a mapping (YAML object) of settings")
        return VerificationConfig()
    for name in obj:
        if name not in _FIELDS:
            problems.add(f"verification.{name}", f"unknown setting; the settings of verification are: {', '.join(sorted(_FIELDS))}")
    on_failure = str(obj.get("onFailure", "fail")).strip()
    if on_failure not in ON_FAILURE:
        problems.add("verification.onFailure", "must be 'fail' (a failed check fails `pulumi up`) or 'warn'")
        on_failure = "fail"
    days_raw = obj.get("secretExpiryWarningDays", 14)
    try:
        days = int(days_raw)
        if isinstance(days_raw, bool) or days < 0 or days > 3650:
            raise ValueError
    except (TypeError, ValueError):
        problems.add("verification.secretExpiryWarningDays", "must be a whole number of days between 0 and 3650")
        days = 14
    check_url = obj.get("lobechatCheckUrl")
    if check_url is not None:
        parts = urlsplit(str(check_url).strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
            problems.add("verification.lobechatCheckUrl", "must be an origin such as http://127.0.0.1:3210 (where this machine reaches LobeChat)")
            check_url = None
        else:
            check_url = str(check_url).strip().rstrip("/")
    return VerificationConfig(
        enabled=_bool(obj, "enabled", problems, True),
        on_failure=on_failure,
        in_network_probe=_bool(obj, "inNetworkProbe", problems, True),
        secret_expiry_warning_days=days,
        lobechat_check_url=check_url,
    )
