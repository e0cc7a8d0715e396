"""Client for Logto's Management API on ``requests`` (token cache, retries, one error type per failure).

Usage::

    api = ManagementApi(LogtoConnection("https://auth.example.com", client_id, client_secret))
    app = api.applications.create(name="LobeChat", redirect_uris=[...], post_sign_out_redirect_uris=[...])
"""

from __future__ import annotations

from .applications import (
    APPLICATION_TYPES,
    DEFAULT_SECRET_NAME,
    Applications,
    validate_app_type,
    validate_expires_at,
    validate_name,
    validate_uri,
    validate_uri_list,
)
from .errors import (
    LogtoAuthenticationError,
    LogtoConnectionError,
    LogtoError,
    LogtoInputError,
    LogtoNotFoundError,
    LogtoPermissionError,
    LogtoRateLimitedError,
    LogtoServerError,
    LogtoTimeoutError,
    LogtoUnexpectedResponseError,
    LogtoValidationError,
)
from .hooks import HOOK_EVENTS, Hooks, validate_events, validate_headers
from .transport import (
    MANAGEMENT_ROLE_NAME,
    SELF_HOSTED_RESOURCE,
    LogtoConnection,
    LogtoTransport,
    clear_token_cache,
    management_resource,
)


class ManagementApi:
    """Entry point: ``api.applications`` and ``api.hooks`` over one connection.

    Holds no token and no session itself (both live in process-wide caches of ``transport``), so it
    is cheap to build one per call.
    """

    def __init__(self, connection: LogtoConnection) -> None:
        self.connection = connection
        self.transport = LogtoTransport(connection)
        self.applications = Applications(self.transport)
        self.hooks = Hooks(self.transport)

    def __repr__(self) -> str:
        return f"ManagementApi({self.connection!r})"


__all__ = [
    "APPLICATION_TYPES",
    "DEFAULT_SECRET_NAME",
    "HOOK_EVENTS",
    "MANAGEMENT_ROLE_NAME",
    "SELF_HOSTED_RESOURCE",
    "Applications",
    "Hooks",
    "LogtoAuthenticationError",
    "LogtoConnection",
    "LogtoConnectionError",
    "LogtoError",
    "LogtoInputError",
    "LogtoNotFoundError",
    "LogtoPermissionError",
    "LogtoRateLimitedError",
    "LogtoServerError",
    "LogtoTimeoutError",
    "LogtoTransport",
    "LogtoUnexpectedResponseError",
    "LogtoValidationError",
    "ManagementApi",
    "clear_token_cache",
    "management_resource",
    "validate_app_type",
    "validate_events",
    "validate_expires_at",
    "validate_headers",
    "validate_name",
    "validate_uri",
    "validate_uri_list",
]
