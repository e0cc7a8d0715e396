"""Whether the stage routes the Logto admin console from the Internet.

The decision and its config key (``logto.exposeAdminConsole``, ``config.logto.expose_admin_console``)
belong to the security work; until that key exists this falls back to its documented default: false on
the stacks ``staging`` and ``prod``, true elsewhere (dev). One function, so adopting the key is one line.
"""

from __future__ import annotations

from components.config import StageConfig


def admin_console_exposed(config: StageConfig) -> bool:
    """True when the front routes the admin host (``logto.exposeAdminConsole``, issue 8's key)."""
    exposed = getattr(config.logto, "expose_admin_console", None)
    if exposed is not None:
        return bool(exposed)
    return config.stack not in ("staging", "prod")
