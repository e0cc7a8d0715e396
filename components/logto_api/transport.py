"""HTTP transport for Logto's Management API: connection settings, token cache, retries, timeouts.

Nothing here is meant to be pickled. Pulumi pickles dynamic providers into the stack state, so the
process-wide pieces (the token cache and the HTTP sessions) live in module-level variables of this
importable module: they are rebuilt empty in every provider process and never end up in the state.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from . import tls
from .readiness import wait_until_ready
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

log = logging.getLogger(__name__)

SELF_HOSTED_RESOURCE = "https://default.logto.app/api"
"""Resource indicator of the Management API on every self-hosted Logto, whatever its domain."""

MANAGEMENT_ROLE_NAME = "Logto Management API access"

# Statuses worth retrying: the server (or a proxy in front of it) says "not now".
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504, *range(520, 525)})
# Statuses that mean the request was refused before Logto acted on it, so retrying is safe even for
# a non-idempotent POST: 429, and 503 when it carries Logto's own JSON error body. 502, 504, 520-524
# and any 5xx without Logto's body are not: a gateway answers them when the upstream was too slow or
# broke mid-way, and Logto may well have committed the create behind it (or still be working on it).
NOT_PROCESSED_STATUSES = frozenset({429})
NOT_PROCESSED_WITH_LOGTO_BODY = frozenset({503})
GATEWAY_STATUSES = frozenset({502, 504, *range(520, 525)})
"""Answers only a proxy gives (Cloudflare's 520-524 included): never Logto's own verdict."""


def is_logto_error_body(response: requests.Response) -> bool:
    """True when the body is Logto's JSON error object (a ``message``), not a proxy's page."""
    if "json" not in response.headers.get("Content-Type", ""):
        return False
    body = _error_body(response)
    return isinstance(body.get("message"), str) or isinstance(body.get("code"), str)


def gateway_ambiguous(response: requests.Response) -> bool:
    """A 5xx that may have come from a gateway while Logto committed (or is committing) the request."""
    return response.status_code >= 500 and (
        response.status_code in GATEWAY_STATUSES or not is_logto_error_body(response)
    )
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"})

TOKEN_REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a cached token is treated as expired."""


def management_resource(tenant_id: str | None) -> str:
    """Resource indicator of the Management API: self-hosted (None/"default") or a Logto Cloud tenant."""
    if tenant_id is None or tenant_id.strip() in {"", "default"}:
        return SELF_HOSTED_RESOURCE
    tenant = tenant_id.strip()
    if not tenant.replace("-", "").isalnum():
        raise LogtoInputError("tenant_id", f"{tenant!r} is not a Logto tenant id (letters and digits)")
    return f"https://{tenant}.logto.app/api"


def _require_http_url(field_name: str, value: Any, *, hint: str | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LogtoInputError(field_name, "must be a non-empty URL string", hint=hint)
    parts = urlsplit(value.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc or " " in value.strip():
        raise LogtoInputError(field_name, f"{value!r} is not an http(s) URL", hint=hint)
    return value.strip()


@dataclass(frozen=True)
class LogtoConnection:
    """Where Logto is and how to authenticate to its Management API (an M2M application).

    ``endpoint`` is Logto's ENDPOINT (``https://auth.example.com``): no ``/oidc``, no ``/api``.
    ``client_secret`` is left out of ``repr`` so a logged connection never shows it.
    """

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    resource: str = SELF_HOSTED_RESOURCE
    timeout: float = 10.0
    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_cap: float = 5.0
    retry_after_cap: float = 30.0
    ready_timeout: float = 0.0
    """How long a request waits, once, for a Logto that refuses connections or answers 502/503/504
    while its ``/api/status`` does not answer (0: no wait; the Logto resources wait 180 s)."""
    ready_poll_interval: float = 2.0

    def __post_init__(self) -> None:
        endpoint = _require_http_url(
            "endpoint", self.endpoint, hint="Set the Logto endpoint, e.g. https://auth.example.com."
        )
        parts = urlsplit(endpoint)
        path = parts.path.rstrip("/")
        if path.endswith("/oidc") or path.endswith("/api"):
            raise LogtoInputError(
                "endpoint",
                f"{endpoint!r} ends in {path.rsplit('/', 1)[1]!r}",
                hint="Give Logto's ENDPOINT itself (e.g. https://auth.example.com): the client adds /oidc and /api.",
            )
        if parts.query or parts.fragment:
            raise LogtoInputError("endpoint", f"{endpoint!r} has a query or fragment")
        # Normalised here so the token cache key and every URL are built from one spelling.
        object.__setattr__(self, "endpoint", endpoint.rstrip("/"))
        if not isinstance(self.client_id, str) or not self.client_id.strip():
            raise LogtoInputError("client_id", "the M2M client id is empty")
        if not isinstance(self.client_secret, str) or not self.client_secret:
            raise LogtoInputError("client_secret", "the M2M client secret is empty")
        _require_http_url(
            "resource",
            self.resource,
            hint="Self-hosted Logto: https://default.logto.app/api; Logto Cloud: https://<tenant>.logto.app/api.",
        )
        if not isinstance(self.timeout, (int, float)) or self.timeout <= 0:
            raise LogtoInputError("timeout", "must be a positive number of seconds")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise LogtoInputError("max_attempts", "must be an integer >= 1")

    @property
    def token_url(self) -> str:
        """The OIDC token endpoint (``<endpoint>/oidc/token``)."""
        return f"{self.endpoint}/oidc/token"

    def url(self, path: str) -> str:
        """Absolute URL of a Management API path such as ``/api/applications``."""
        return f"{self.endpoint}{path}"

    @property
    def cache_key(self) -> tuple[str, str, str, str]:
        """Key of this connection's entry in the process-wide token cache.

        It includes a digest of the secret: a token issued for the right secret must not be handed
        to a connection holding a wrong or rotated-out one (the digest, never the secret, is kept).
        """
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (self.endpoint, self.client_id, self.resource, digest)


# --- process-wide state (never pickled: see the module docstring) -----------------------------------


@dataclass
class _CachedToken:
    access_token: str = field(repr=False)
    valid_until: float  # time.monotonic() deadline, already shortened by the refresh margin


_TOKEN_CACHE: dict[tuple[str, str, str], _CachedToken] = {}
_TOKEN_LOCK = threading.Lock()
_THREAD_STATE = threading.local()


def clear_token_cache() -> None:
    """Forget every cached token of this process (tests, credential rotation)."""
    with _TOKEN_LOCK:
        _TOKEN_CACHE.clear()


def _session() -> requests.Session:
    # One Session per thread keeps connections alive across calls (the engine may call providers
    # from several threads; a Session is not documented as thread-safe).
    session = getattr(_THREAD_STATE, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = "lobechat-logto-provisioner"
        _THREAD_STATE.session = session
    return session


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


# --- error mapping ------------------------------------------------------------------------------


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _short(text: Any, limit: int = 400) -> str | None:
    if text is None:
        return None
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_from_response(
    response: requests.Response, *, method: str, path: str, url: str, token_request: bool = False
) -> LogtoError:
    """Build the exception that matches a non-success response (never includes request data)."""
    status = response.status_code
    body = _error_body(response)
    code = body.get("code") or body.get("error")
    message = body.get("message") or body.get("error_description")
    details = body.get("details") or (body.get("error_description") if body.get("error") else None)
    common: dict[str, Any] = dict(
        method=method,
        path=path,
        url=url,
        status=status,
        code=_short(code, 100),
        logto_message=_short(message),
        details=_short(details),
    )
    oidc_error = body.get("error")
    if token_request:
        if status == 401 or oidc_error == "invalid_client":
            return LogtoAuthenticationError("Logto refused the M2M client credentials.", **common)
        if oidc_error == "invalid_target":
            return LogtoValidationError(
                "Logto does not know the resource indicator.",
                hint=(
                    "Self-hosted Logto always uses https://default.logto.app/api; Logto Cloud uses "
                    "https://<tenant-id>.logto.app/api."
                ),
                **common,
            )
        if oidc_error in {"invalid_request", "unauthorized_client", "invalid_scope"} and status == 400:
            return LogtoValidationError(
                "Logto refused the client-credentials grant.",
                hint="The client id must belong to a Machine-to-Machine application.",
                **common,
            )
    if status == 401:
        return LogtoAuthenticationError(
            "Logto rejected the access token even after fetching a fresh one.",
            hint=(
                "Check that the endpoint is the Logto that issued the token and that the resource "
                "indicator matches it; if the M2M client id or secret changed, update them."
            ),
            **common,
        )
    if status == 403:
        return LogtoPermissionError("Logto denied the Management API call.", **common)
    if status == 404:
        return LogtoNotFoundError("not found.", **common)
    if status in (400, 422):
        return LogtoValidationError("Logto rejected the request.", **common)
    if status == 429:
        return LogtoRateLimitedError("rate limited (retries exhausted).", **common)
    if status >= 500:
        if gateway_ambiguous(response):
            error = LogtoServerError(
                "the gateway in front of Logto answered with a server error (no answer from Logto itself).",
                **common,
            )
            error.gateway_ambiguous = True
            return error
        return LogtoServerError("Logto answered with a server error.", **common)
    return LogtoUnexpectedResponseError("unexpected response.", **common)


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _failed_before_sending(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection failed before the request could have reached Logto."""
    if isinstance(exc, requests.exceptions.ConnectTimeout) or tls.handshake_failure(exc) is not None:
        return True
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", inner)
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


class LogtoTransport:
    """Sends authenticated Management API requests for one ``LogtoConnection``.

    Cheap to build: it holds only the connection; tokens and HTTP sessions come from process-wide
    caches, so building a transport per provider call costs no extra token request.

    Retry policy (bounded by ``connection.max_attempts``, exponential backoff with full jitter):

    * Connection refused / DNS failure / connect timeout / a failed TLS handshake (the front still
      obtaining its certificate, :mod:`.tls`): the request never left this machine, so every method
      is retried, after one bounded wait for Logto's ``/api/status`` when ``ready_timeout`` is set.
    * 429 and 503: Logto (or its proxy) refused to handle the request, so every method is retried;
      429 waits for ``Retry-After`` (capped at ``retry_after_cap``).
    * 502, 504, a read timeout or a connection dropped after the request was sent: Logto may have
      processed it. Idempotent calls (GET, PUT, PATCH with complete objects, DELETE) are retried.
      A non-idempotent call (POST that creates something, signing-key rotation) is NOT retried
      here: a blind retry of a create whose response was lost makes a duplicate. Instead the error
      (``LogtoConnectionError.may_have_reached_server`` / ``LogtoServerError``) goes up to the
      resource layer, which looks for the object by its ownership marker before creating again.
    * Any other 4xx is final. A 401 from /api/* drops the cached token, fetches a new one and
      repeats the call once (the token may have expired early or been revoked).
    """

    def __init__(self, connection: LogtoConnection) -> None:
        self.connection = connection

    def __repr__(self) -> str:
        return f"LogtoTransport({self.connection!r})"

    # --- tokens ------------------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid Management API access token, from the process cache or freshly issued."""
        key = self.connection.cache_key
        with _TOKEN_LOCK:
            cached = _TOKEN_CACHE.get(key)
            if cached is not None and cached.valid_until > time.monotonic():
                return cached.access_token
            # Fetching under the lock means concurrent provider calls wait for one token request
            # instead of each asking for their own.
            token, lifetime = self._request_token()
            margin = TOKEN_REFRESH_MARGIN if lifetime > 2 * TOKEN_REFRESH_MARGIN else lifetime / 2
            _TOKEN_CACHE[key] = _CachedToken(token, time.monotonic() + lifetime - margin)
            return token

    def invalidate_token(self, rejected: str | None = None) -> None:
        """Drop this connection's cached token so the next call fetches a new one.

        With ``rejected``, only that token is dropped: when several threads hit the same expired
        token, the first one's replacement is not thrown away by the others.
        """
        with _TOKEN_LOCK:
            cached = _TOKEN_CACHE.get(self.connection.cache_key)
            if cached is not None and (rejected is None or cached.access_token == rejected):
                del _TOKEN_CACHE[self.connection.cache_key]

    def _request_token(self) -> tuple[str, float]:
        conn = self.connection
        response = self._send(
            "POST",
            "/oidc/token",
            conn.token_url,
            idempotent=True,  # issuing a token changes nothing lasting: safe to repeat
            data={"grant_type": "client_credentials", "resource": conn.resource, "scope": "all"},
            auth=requests.auth.HTTPBasicAuth(conn.client_id, conn.client_secret),
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            raise error_from_response(
                response, method="POST", path="/oidc/token", url=conn.token_url, token_request=True
            )
        body = self._json(response, "POST", "/oidc/token", conn.token_url)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise LogtoUnexpectedResponseError(
                "the token response has no access_token.", method="POST", url=conn.token_url, status=response.status_code
            )
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return token, lifetime

    # --- requests ----------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        expected: Iterable[int] = (200,),
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send an authenticated request to ``path`` (``/api/...``) and return the response.

        Raises the matching ``LogtoError`` subclass for any status outside ``expected``.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        url = self.connection.url(path)
        expected_set = frozenset(expected)
        refreshed = False
        while True:
            token = self.access_token()
            response = self._send(
                method,
                path,
                url,
                idempotent=idempotent,
                params=params,
                json=json,
                headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
                expected=expected_set,
            )
            if response.status_code == 401 and not refreshed:
                # Expired or revoked token: one fresh token, one more try. A second 401 is final.
                log.debug("401 on %s %s: refreshing the access token once", method, path)
                refreshed = True
                self.invalidate_token(token)
                continue
            if response.status_code in expected_set:
                return response
            error = error_from_response(response, method=method, path=path, url=url)
            if isinstance(error, LogtoServerError) and not idempotent:
                # A 5xx to a create says nothing about whether Logto committed it before failing.
                error.may_have_reached_server = True
            raise error

    def request_json(self, method: str, path: str, **kwargs: Any) -> Any:
        """``request`` and decode the JSON body (None for an empty body such as 204)."""
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return self._json(response, method.upper(), path, self.connection.url(path))

    @staticmethod
    def _json(response: requests.Response, method: str, path: str, url: str) -> Any:
        try:
            return response.json()
        except ValueError:
            raise LogtoUnexpectedResponseError(
                "the response is not JSON.", method=method, path=path, url=url, status=response.status_code
            ) from None

    def _backoff(self, attempt: int) -> float:
        conn = self.connection
        return random.uniform(0, min(conn.backoff_cap, conn.backoff_base * (2 ** (attempt - 1))))

    def _send(
        self,
        method: str,
        path: str,
        url: str,
        *,
        idempotent: bool,
        expected: frozenset[int] = frozenset({200}),
        **kwargs: Any,
    ) -> requests.Response:
        """One logical request with the retry policy of the class docstring applied."""
        conn = self.connection
        attempt = 0
        waited_for_ready = False

        def wait_once(reason: str) -> bool:
            # Logto not up yet, or restarting: one bounded wait per request, then the retries start over.
            nonlocal waited_for_ready, attempt
            if waited_for_ready or conn.ready_timeout <= 0:
                return False
            waited_for_ready = True
            came_back = wait_until_ready(conn.endpoint, reason=reason, timeout=conn.ready_timeout,
                                         poll_interval=conn.ready_poll_interval, request_timeout=conn.timeout,
                                         session=_session(), sleep=_sleep)
            if came_back:
                attempt = 0
            return came_back

        while True:
            attempt += 1
            last = attempt >= conn.max_attempts
            try:
                response = _session().request(method, url, timeout=conn.timeout, **kwargs)
            except requests.exceptions.ConnectionError as exc:
                before_sending = _failed_before_sending(exc)
                handshake = tls.handshake_failure(exc)
                # A front still obtaining its certificate is waited for like a Logto that is starting;
                # a permanent TLS problem (untrusted CA, plain HTTP) only gets the quick retries.
                waits = before_sending and (not handshake or tls.is_transient(handshake))
                reason = f"TLS handshake failed ({handshake})" if handshake else "connection refused"
                if waits and wait_once(reason):
                    continue
                if (before_sending or idempotent) and not last:
                    delay = self._backoff(attempt)
                    log.debug("%s %s: connection failed (attempt %d), retrying in %.2fs", method, path, attempt, delay)
                    _sleep(delay)
                    continue
                if isinstance(exc, requests.exceptions.ConnectTimeout):
                    raise LogtoTimeoutError(
                        f"could not connect within {conn.timeout:g}s.",
                        method=method,
                        path=path,
                        url=url,
                        hint="Is Logto running, and is the endpoint right? (connect timeout)",
                    ) from None
                if handshake:
                    summary = f"the TLS handshake with {conn.endpoint} failed ({handshake}) after {attempt} attempt(s)."
                elif before_sending:
                    summary = f"could not connect to {conn.endpoint} after {attempt} attempt(s)."
                else:
                    summary = "the connection broke before Logto answered."
                raise LogtoConnectionError(
                    summary,
                    may_have_reached_server=not before_sending,
                    method=method,
                    path=path,
                    url=url,
                    **({"hint": tls.HINT} if handshake else {}),
                ) from None
            except requests.exceptions.Timeout:
                if idempotent and not last:
                    delay = self._backoff(attempt)
                    log.debug("%s %s: timed out (attempt %d), retrying in %.2fs", method, path, attempt, delay)
                    _sleep(delay)
                    continue
                raise LogtoTimeoutError(
                    f"no answer within {conn.timeout:g}s"
                    + (" after {} attempt(s).".format(attempt) if idempotent else "; the request may have been applied."),
                    may_have_reached_server=True,
                    method=method,
                    path=path,
                    url=url,
                ) from None
            status = response.status_code
            if status in expected or status not in RETRYABLE_STATUSES:
                return response
            not_processed = status in NOT_PROCESSED_STATUSES or (
                status in NOT_PROCESSED_WITH_LOGTO_BODY and is_logto_error_body(response)
            )
            if not (idempotent or not_processed):
                return response
            if status in (502, 503, 504) and wait_once(f"HTTP {status}"):
                response.close()
                continue
            if last:
                return response
            delay = self._backoff(attempt)
            retry_after = _retry_after_seconds(response) if status in (429, 503) else None
            if retry_after is not None:
                if retry_after > conn.retry_after_cap:
                    # Retrying before the server's own wait is over only earns another refusal.
                    response.close()
                    raise LogtoRateLimitedError(
                        f"Logto asks to wait {retry_after:g} s before the next try (Retry-After), longer than "
                        f"this client waits ({conn.retry_after_cap:g} s).",
                        method=method,
                        path=path,
                        url=url,
                        status=status,
                        hint=f"Run `pulumi up` again in {retry_after:g} s or later; nothing was retried early.",
                    )
                delay = max(retry_after, 0.0)
            log.debug("%s %s: HTTP %d (attempt %d), retrying in %.2fs", method, path, status, attempt, delay)
            response.close()
            _sleep(delay)
