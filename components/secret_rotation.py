"""How a rotation generation becomes LobeChat's secrets: names, hook aliases, keepers.

- **Client secret**: generation 0 is the application's ``Default secret`` (taken over as it is);
  generation N is the named secret ``lobechat-N`` with an expiry (maxAge + expiryGrace). A new
  generation replaces the ``LogtoApplicationSecret`` create-before-delete: the new secret exists,
  LobeChat's new container (new ``AUTH_LOGTO_SECRET``) is healthy, the old container goes, and only
  then is the old secret deleted (Pulumi deletes replaced resources last, dependents first).
- **Webhook signing key**: generation N is a hook of its own that delivers to
  ``http://lobechat-hook-N:3210/api/webhooks/logto``, a network alias that only the LobeChat
  containers holding key N carry. During the overlap two hooks deliver every event, each to the
  container that can verify it; the old hook is deleted last.
- **Session secret**: a ``RandomSecret`` whose keeper is the generation (0: no keeper, so turning
  rotation on changes nothing).
"""

from __future__ import annotations

from typing import Any

from components.config.stage import LOBECHAT_CONTAINER_PORT
from components.logto_api import DEFAULT_SECRET_NAME

CLIENT_SECRET_PREFIX = "lobechat-"
HOOK_ALIAS_PREFIX = "lobechat-hook-"


def client_secret_name(generation: Any) -> str:
    """``Default secret`` for generation 0, ``lobechat-<N>`` after."""
    number = int(generation or 0)
    return DEFAULT_SECRET_NAME if number == 0 else f"{CLIENT_SECRET_PREFIX}{number}"


def hook_alias(generation: Any) -> str:
    """The network alias of the LobeChat containers that hold key generation ``generation``."""
    return f"{HOOK_ALIAS_PREFIX}{int(generation or 0)}"


def hook_url(alias: str) -> str:
    """Where the hook of that key generation delivers (Logto -> LobeChat on the stage network)."""
    return f"http://{alias}:{LOBECHAT_CONTAINER_PORT}/api/webhooks/logto"


def session_keepers(generation: Any) -> dict[str, str]:
    """Keepers of the session secret: none at generation 0 (the value generated before rotation existed)."""
    number = int(generation or 0)
    return {} if number == 0 else {"rotation": str(number)}
