"""Exceptions raised by the Logto Management API client: one type per failure class.

Every error carries what an operator needs to act on it (HTTP method, path, status, Logto's ``code``
and ``message``) plus one sentence saying what to check. None of them ever holds a secret: the
messages are built from the method, the URL, the status and Logto's error body only, never from
request headers or request bodies (which carry the client secret, the bearer token and sometimes
application secrets).
"""

from __future__ import annotations

from typing import Any


class LogtoError(Exception):
    """Base class of every error raised by ``components.logto_api``."""

    default_hint = "Check the Logto endpoint and the Management API credentials."
    may_have_reached_server: bool = False
    """True when Logto may have applied the request although the call failed (lost response)."""

    def __init__(
        self,
        summary: str,
        *,
        method: str | None = None,
        path: str | None = None,
        url: str | None = None,
        status: int | None = None,
        code: str | None = None,
        logto_message: str | None = None,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.summary = summary
        self.method = method
        self.path = path
        self.url = url
        self.status = status
        self.code = code
        self.logto_message = logto_message
        self.details = details
        self.hint = hint if hint is not None else self.default_hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        parts: list[str] = []
        if self.method and (self.url or self.path):
            parts.append(f"{self.method} {self.url or self.path}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        head = ": ".join(parts)
        text = f"{head}: {self.summary}" if head else self.summary
        if self.code:
            text += f" [{self.code}]"
        if self.logto_message and self.logto_message not in self.summary:
            text += f" Logto says: {self.logto_message}"
        if self.details:
            text += f" ({self.details})"
        if self.hint:
            text += f" -> {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def with_hint(self, hint: str) -> "LogtoError":
        """Replace the hint (and the message built from it); returns ``self`` for ``raise exc.with_hint(...)``."""
        self.hint = hint
        self.args = (self._compose(),)
        return self


class LogtoInputError(LogtoError, ValueError):
    """A value was rejected before any request was sent; ``field`` names the offending setting."""

    default_hint = "Fix the value in the Pulumi program or stack configuration."

    def __init__(self, field: str, reason: str, *, hint: str | None = None) -> None:
        self.field = field
        super().__init__(f"invalid {field}: {reason}", hint=hint)


class LogtoConnectionError(LogtoError):
    """Logto could not be reached, or the connection broke before a response arrived.

    ``may_have_reached_server`` is True when the request may have been processed by Logto even
    though no response arrived (read timeout, connection dropped after sending). Callers that
    create objects must then look for the object before creating it again.
    """

    default_hint = "Is Logto running, and is the endpoint right?"

    def __init__(self, summary: str, *, may_have_reached_server: bool = False, **kwargs: Any) -> None:
        self.may_have_reached_server = may_have_reached_server
        super().__init__(summary, **kwargs)


class LogtoTimeoutError(LogtoConnectionError):
    """Logto did not answer within the configured timeout."""

    default_hint = (
        "Logto is up but slow or stuck: check its logs and load, or raise the client timeout."
    )


class LogtoAuthenticationError(LogtoError):
    """401: the client credentials or the bearer token were rejected."""

    default_hint = "The M2M client id or secret is wrong."


class LogtoPermissionError(LogtoError):
    """403: the token is valid but lacks the Management API permission."""

    default_hint = (
        "The M2M application lacks the role 'Logto Management API access': assign it in the "
        "console (Applications -> the M2M app -> Roles) or rerun the bootstrap."
    )


class LogtoNotFoundError(LogtoError):
    """404: the application, secret or hook does not exist (any more)."""

    default_hint = (
        "The object was deleted (e.g. in the console) or the id is wrong; `pulumi refresh` forgets "
        "deleted objects so the next `pulumi up` creates them again."
    )


class LogtoValidationError(LogtoError):
    """400/422: Logto rejected the request body or parameters."""

    default_hint = "Logto rejected the values sent; see its message for the field at fault."


class LogtoRateLimitedError(LogtoError):
    """429 that persisted through every retry."""

    default_hint = "Logto (Cloud) is rate limiting this client: wait and run again, or provision fewer objects at once."


class LogtoServerError(LogtoError):
    """5xx from Logto (after retries where retrying was safe)."""

    gateway_ambiguous: bool = False
    """True when the answer may come from a proxy in front of Logto rather than from Logto (502,
    504, 520-524, or any 5xx without Logto's JSON error body): Logto may have committed the request,
    or may still be working on it, so a create must not be sent again before a rerun looks it up."""

    default_hint = (
        "Logto failed internally: check its logs. A 500 on every Management API call while "
        "/api/status answers 204 usually means Logto cannot reach its own ENDPOINT or ADMIN_ENDPOINT "
        "host name from inside its container."
    )


class LogtoUnexpectedResponseError(LogtoError):
    """Logto answered with a status or body this client does not know how to read."""

    default_hint = "Check that the endpoint points at a Logto server of a supported version."
