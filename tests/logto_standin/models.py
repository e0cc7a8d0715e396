"""In-memory state and rules of the Logto stand-in (no HTTP here; see ``server.py``).

Every rule follows the exchanges recorded from a real Logto 1.37.1 in ``shared/logto-contract``:
status codes, error codes, the zod-style validation errors, which fields a PATCH replaces wholesale,
which application types get a ``Default secret``, and which secrets authenticate at ``/oidc/token``.
Where the recordings say nothing, the choice made here is written next to the code.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import webhooks

TENANT_ID = "default"
MANAGEMENT_API_RESOURCE = "https://default.logto.app/api"
MANAGEMENT_API_SCOPE = "all"
MANAGEMENT_ROLE_NAME = "Logto Management API access"
DEFAULT_SECRET_NAME = "Default secret"
TOKEN_TTL_SECONDS = 3600
RECENT_LOG_WINDOW_MS = 24 * 3600 * 1000
MAX_PAGE_SIZE = 100

APPLICATION_TYPES = ("Native", "SPA", "Traditional", "MachineToMachine", "Protected", "SAML")
# Public clients have no secret; every other type gets a "Default secret" on create (recorded for
# Traditional and MachineToMachine, assumed for the rest).
PUBLIC_APPLICATION_TYPES = frozenset({"Native", "SPA"})
GRANT_TYPES_BY_APPLICATION_TYPE: dict[str, frozenset[str]] = {
    "Native": frozenset({"authorization_code", "refresh_token"}),
    "SPA": frozenset({"authorization_code", "refresh_token"}),
    "Traditional": frozenset({"authorization_code", "refresh_token"}),
    "MachineToMachine": frozenset({"client_credentials"}),
    "Protected": frozenset({"authorization_code", "refresh_token"}),
    "SAML": frozenset(),
}
SUPPORTED_GRANT_TYPES = frozenset(
    {"implicit", "authorization_code", "refresh_token", "client_credentials",
     "urn:ietf:params:oauth:grant-type:token-exchange"}
)

HOOK_EVENTS = (
    "PostRegister", "PostSignIn", "PostSignInAdaptiveMfaTriggered", "PostResetPassword",
    "User.Created", "User.Deleted", "User.Data.Updated", "User.SuspensionStatus.Updated",
    "Role.Created", "Role.Deleted", "Role.Data.Updated", "Role.Scopes.Updated",
    "Scope.Created", "Scope.Deleted", "Scope.Data.Updated",
    "Organization.Created", "Organization.Deleted", "Organization.Data.Updated",
    "Organization.Membership.Updated",
    "OrganizationRole.Created", "OrganizationRole.Deleted", "OrganizationRole.Data.Updated",
    "OrganizationRole.Scopes.Updated",
    "OrganizationScope.Created", "OrganizationScope.Deleted", "OrganizationScope.Data.Updated",
    "Identifier.Lockout",
)
USER_DATA_UPDATED = "User.Data.Updated"

OIDC_METADATA_KEYS = (
    "redirectUris", "postLogoutRedirectUris", "backchannelLogoutUri",
    "backchannelLogoutSessionRequired", "logoUri",
)
CUSTOM_CLIENT_METADATA_KEYS = (
    "corsAllowedOrigins", "idTokenTtl", "refreshTokenTtl", "refreshTokenTtlInDays", "tenantId",
    "alwaysIssueRefreshToken", "rotateRefreshToken", "allowTokenExchange",
)
USER_PATCHABLE_KEYS = ("username", "primaryEmail", "primaryPhone", "name", "avatar", "customData", "profile")

_LOWER_ALNUM = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_USERNAME_RE = re.compile(r"^[A-Z_a-z]\w*$")


def _random_id(length: int = 21) -> str:
    return "".join(secrets.choice(_LOWER_ALNUM) for _ in range(length))


def _random_secret(length: int = 32) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def _now_ms() -> int:
    return int(time.time() * 1000)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------------------------------
# errors


class ApiError(Exception):
    """A Logto error answer: HTTP status plus the JSON body Logto sends (``{code, message, data?, details?}``)."""

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        *,
        data: Any = None,
        details: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.data = data
        self.details = details
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body, with the keys in the order Logto writes them."""
        body: dict[str, Any] = {}
        if self.code is not None:
            body["code"] = self.code
        if self.data is not None:
            body["data"] = self.data
        if self.details is not None:
            body["details"] = self.details
        body["message"] = self.message
        body.update(self.extra)
        return body


def not_exists_with_id(table: str, entity_id: str) -> ApiError:
    """404 for a missing row looked up by id (``applications``, ``hooks``, ``users``)."""
    return ApiError(404, "entity.not_exists_with_id", f"The {table} with ID `{entity_id}` does not exist.")


def entity_not_found() -> ApiError:
    """404 Logto gives for deletes of rows that are gone (hooks, users, secrets)."""
    return ApiError(404, "entity.not_found", "The resource does not exist.")


def entity_not_exists(name: str) -> ApiError:
    """404 Logto gives for updates of rows that are gone (``hook``, ``application_secret``)."""
    return ApiError(404, "entity.not_exists", f"The {name} does not exist.")


_OIDC_ERRORS: dict[str, tuple[str, dict[str, str]]] = {
    "invalid_client": ("An OIDC error occurred: oidc.invalid_client.", {}),
    "invalid_target": ("Invalid resource indicator.", {}),
    "invalid_request": ("Request is invalid.", {}),
    "invalid_grant": ("Grant request is invalid.", {"error_uri": "https://openid.sh/debug/invalid_grant"}),
    "unsupported_grant_type": ("Unsupported `grant_type` requested.", {}),
}


def oidc_error(status: int, error: str, description: str, headers: dict[str, str] | None = None) -> ApiError:
    """An error of the token endpoint, shaped like Logto's wrapper around oidc-provider's errors."""
    message, extra = _OIDC_ERRORS[error]
    return ApiError(
        status, f"oidc.{error}", message,
        extra={**extra, "error": error, "error_description": description}, headers=headers,
    )


def unauthorized(jose_code: str, jose_name: str) -> ApiError:
    """401 ``auth.unauthorized`` with the jose error Logto passes through in ``data``."""
    return ApiError(
        401, "auth.unauthorized", "Unauthorized. Please check credentials and its scope.",
        data={"code": jose_code, "name": jose_name},
    )


def invalid_pagination() -> ApiError:
    """400 for a page or page_size that is not a positive integer (or a page_size above 100)."""
    return ApiError(400, "guard.invalid_pagination", "The pagination value of the request is invalid.")


# --------------------------------------------------------------------------------------------------
# zod-like input validation (the issue objects Logto's guard returns)


class _Missing:
    def __repr__(self) -> str:
        return "undefined"


MISSING: Any = _Missing()


def zod_type(value: Any) -> str:
    """The type name zod reports for a JSON value (``undefined`` for an absent key)."""
    if value is MISSING:
        return "undefined"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "unknown"


def _enum_text(options: tuple[str, ...]) -> str:
    return " | ".join(f"'{option}'" for option in options)


class Guard:
    """Collects zod issues for one request body, then raises them as ``guard.invalid_input``."""

    def __init__(self) -> None:
        self.issues: list[dict[str, Any]] = []

    def expect(self, value: Any, expected: str, path: list[Any], *, optional: bool = False,
               nullable: bool = False) -> bool:
        """Type check; True when ``value`` is present and of the ``expected`` zod type."""
        if value is MISSING and optional:
            return False
        if value is None and nullable:
            return False
        received = zod_type(value)
        if received == expected:
            return True
        self.issues.append({
            "code": "invalid_type", "expected": expected, "received": received, "path": path,
            "message": "Required" if value is MISSING else f"Expected {expected}, received {received}",
        })
        return False

    def expect_enum(self, value: Any, options: tuple[str, ...], path: list[Any], *, optional: bool = False) -> bool:
        """Enum check with zod's wording (``invalid_type`` when absent, ``invalid_enum_value`` when unknown)."""
        if value is MISSING and optional:
            return False
        if not isinstance(value, str):
            received = zod_type(value)
            self.issues.append({
                "expected": _enum_text(options), "received": received, "code": "invalid_type", "path": path,
                "message": "Required" if value is MISSING else f"Expected {_enum_text(options)}, received {received}",
            })
            return False
        if value not in options:
            self.issues.append({
                "received": value, "code": "invalid_enum_value", "options": list(options), "path": path,
                "message": f"Invalid enum value. Expected {_enum_text(options)}, received '{value}'",
            })
            return False
        return True

    def string_length(self, value: str, path: list[Any], minimum: int = 1, maximum: int = 256) -> None:
        """zod's ``min``/``max`` on a string."""
        if len(value) < minimum:
            self.issues.append({
                "code": "too_small", "minimum": minimum, "type": "string", "inclusive": True, "exact": False,
                "message": f"String must contain at least {minimum} character(s)", "path": path,
            })
        elif len(value) > maximum:
            self.issues.append({
                "code": "too_big", "maximum": maximum, "type": "string", "inclusive": True, "exact": False,
                "message": f"String must contain at most {maximum} character(s)", "path": path,
            })

    def array_min(self, value: list[Any], path: list[Any], minimum: int = 1) -> None:
        """zod's ``min`` on an array."""
        if len(value) < minimum:
            self.issues.append({
                "code": "too_small", "minimum": minimum, "type": "array", "inclusive": True, "exact": False,
                "message": f"Array must contain at least {minimum} element(s)", "path": path,
            })

    def custom(self, path: list[Any], message: str = "Invalid input") -> None:
        """A refinement that failed (for example an invalid redirect URI)."""
        self.issues.append({"code": "custom", "message": message, "path": path})

    def regex(self, path: list[Any]) -> None:
        """A string that does not match its pattern."""
        self.issues.append({"validation": "regex", "code": "invalid_string", "message": "Invalid", "path": path})

    def raise_if_any(self) -> None:
        """Raise ``400 guard.invalid_input`` carrying every collected issue."""
        if not self.issues:
            return
        lines = []
        for issue in self.issues:
            key_path = ".".join(str(part) for part in issue["path"])
            if issue["code"] == "invalid_type":
                text = f"Expected {issue['expected']} but received {issue['received']}."
            else:
                text = issue["message"]
            lines.append(f'Error in key path "{key_path}": ({issue["code"]}) {text}')
        raise ApiError(
            400, "guard.invalid_input", "The request body is invalid.",
            data={"issues": self.issues, "name": "ZodError"}, details="\n".join(lines),
        )


def _body_object(body: Any) -> dict[str, Any]:
    if isinstance(body, dict):
        return body
    guard = Guard()
    guard.expect(body, "object", [])
    guard.raise_if_any()
    return {}


def _valid_redirect_uri(uri: str, app_type: str) -> bool:
    """Web apps need an http(s) URL with a host; native apps may use a custom scheme."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if not parts.scheme or " " in uri:
        return False
    if app_type == "Native":
        return bool(parts.netloc or parts.path)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _check_oidc_metadata(guard: Guard, value: Any, app_type: str) -> dict[str, Any] | None:
    path = ["oidcClientMetadata"]
    if not guard.expect(value, "object", path, optional=True):
        return None
    result: dict[str, Any] = {}
    for key in ("redirectUris", "postLogoutRedirectUris"):
        uris = value.get(key, MISSING)
        if guard.expect(uris, "array", [*path, key]):
            for index, uri in enumerate(uris):
                if not isinstance(uri, str) or not _valid_redirect_uri(uri, app_type):
                    guard.custom([*path, key, index])
            result[key] = list(uris)
    for key in OIDC_METADATA_KEYS[2:]:
        if key in value:
            result[key] = value[key]
    return result


def _check_custom_client_metadata(guard: Guard, value: Any) -> dict[str, Any] | None:
    path = ["customClientMetadata"]
    if not guard.expect(value, "object", path, optional=True):
        return None
    origins = value.get("corsAllowedOrigins", MISSING)
    if guard.expect(origins, "array", [*path, "corsAllowedOrigins"], optional=True):
        for index, origin in enumerate(origins):
            if guard.expect(origin, "string", [*path, "corsAllowedOrigins", index]):
                guard.string_length(origin, [*path, "corsAllowedOrigins", index], 1, 10_000)
    # Logto's zod schema strips unknown keys; the known ones are stored as sent (wholesale).
    return {key: value[key] for key in CUSTOM_CLIENT_METADATA_KEYS if key in value}


def _check_hook_events(guard: Guard, events: Any, *, optional: bool, min_one: bool) -> list[str] | None:
    if not guard.expect(events, "array", ["events"], optional=optional):
        return None
    for index, event in enumerate(events):
        guard.expect_enum(event, HOOK_EVENTS, ["events", index])
    if min_one:
        guard.array_min(events, ["events"])
    return list(events)


def _check_hook_config(guard: Guard, config: Any, *, optional: bool) -> dict[str, Any] | None:
    if not guard.expect(config, "object", ["config"], optional=optional):
        return None
    guard.expect(config.get("url", MISSING), "string", ["config", "url"])
    headers = config.get("headers", MISSING)
    if guard.expect(headers, "object", ["config", "headers"], optional=True):
        for name, header_value in headers.items():
            guard.expect(header_value, "string", ["config", "headers", name])
    result = {"url": config.get("url")}
    if isinstance(headers, dict):
        result["headers"] = dict(headers)
    if "retries" in config:
        result["retries"] = config["retries"]
    return result


# --------------------------------------------------------------------------------------------------
# pagination and search


@dataclass(frozen=True)
class Page:
    """One page of a list answer; ``total`` is what Logto sends in the ``Total-Number`` header."""

    items: list[dict[str, Any]]
    total: int | None


def paginate(items: list[dict[str, Any]], page: int | None, page_size: int | None, *, always: bool = False) -> Page:
    """Logto paginates only when ``page`` or ``page_size`` is given (or the route always does)."""
    if page is None and page_size is None and not always:
        return Page(items, None)
    page = page or 1
    page_size = page_size or 20
    if page < 1 or page_size < 1 or page_size > MAX_PAGE_SIZE:
        raise invalid_pagination()
    start = (page - 1) * page_size
    return Page(items[start:start + page_size], len(items))


def like_pattern(search: str) -> re.Pattern[str]:
    """SQL ``ILIKE`` semantics, as Logto's ``search``: ``%`` any run, ``_`` one character, else literal."""
    parts = []
    for char in search:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


# --------------------------------------------------------------------------------------------------
# the state


@dataclass
class PendingDelivery:
    """A webhook delivery decided under the lock and sent after it is released."""

    hook_id: str
    url: str
    headers: dict[str, str]
    signing_key: str
    payload: dict[str, Any]
    event: str


@dataclass
class LogtoState:
    """Applications, their secrets, hooks, users and issued tokens of one stand-in, behind one lock.

    ``issuer`` is set by the server once it knows its port. ``insert_legacy_app`` is the stand-in's
    equivalent of the bootstrap SQL; ``clock_ms`` may be replaced to move time (secret expiry, logs).
    """

    issuer: str = "http://127.0.0.1/oidc"
    management_resource: str = MANAGEMENT_API_RESOURCE
    token_ttl: int = TOKEN_TTL_SECONDS
    delivery_timeout: float = 10.0
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    management_role_app_ids: set[str] = field(default_factory=set)
    hooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    hook_logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    clock_ms: Callable[[], int] = _now_ms
    delivery_aliases: dict[str, str] = field(default_factory=dict)
    """``host:port`` -> ``host:port`` for outgoing deliveries: a name that resolves inside the Docker
    network (a container alias such as ``lobe.localhost:3210``) mapped to where the test serves it."""
    resolve_url: Callable[[str], str | None] | None = None
    """Name resolution of delivery URLs as Logto's container sees it (e.g. Docker network aliases):
    the URL to connect to instead, or None when the host name does not resolve. None: as given."""

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self._token_key = secrets.token_bytes(32)
        self._token_kid = _random_secret(43)
        self._issued_jtis: set[str] = set()
        self._expired_jtis: set[str] = set()

    # ---- seeding (what SQL or the console does on a real server) --------------------------------

    def insert_legacy_app(
        self,
        *,
        name: str = "Bootstrap M2M (Management API)",
        app_id: str | None = None,
        secret: str | None = None,
        app_type: str = "MachineToMachine",
        description: str | None = None,
        with_role: bool = False,
    ) -> tuple[str, str]:
        """Insert an application row directly, as the bootstrap SQL does: the client secret is the
        plain ``secret`` column (a "legacy" secret) and there is no named secret. Returns (id, secret)."""
        app_id = app_id or _random_id()
        secret = secret or _random_secret()
        with self.lock:
            self.applications[app_id] = self._new_application_row(
                app_id, name, app_type, description=description, secret=secret,
            )
            self.secrets[app_id] = []
            if with_role:
                self.management_role_app_ids.add(app_id)
        return app_id, secret

    def insert_named_secret(self, app_id: str, *, name: str, value: str, expires_at: int | None) -> None:
        """Insert (or rewrite) a row of ``application_secrets`` directly, as the bootstrap SQL of a rotated
        generation does: ``ON CONFLICT (tenant_id, application_id, name) DO UPDATE`` value and expiry.
        The ``check_application_type`` constraint allows M2M, Traditional and Protected apps only."""
        with self.lock:
            app = self.applications[app_id]
            assert app["type"] in ("MachineToMachine", "Traditional", "Protected"), "check_application_type"
            entries = self.secrets.setdefault(app_id, [])
            existing = next((entry for entry in entries if entry["name"] == name), None)
            if existing is None:
                entry = self._new_secret(app_id, name, expires_at)
                entry["value"] = value
                entries.append(entry)
            else:
                existing["value"], existing["expiresAt"] = value, expires_at

    def add_m2m_app(self, *, with_role: bool, name: str = "stand-in m2m") -> tuple[str, str]:
        """An M2M application created the way the console does it; returns (id, Default secret)."""
        app = self.create_application({"name": name, "type": "MachineToMachine"})
        with self.lock:
            if with_role:
                self.management_role_app_ids.add(app["id"])
            default = self.secrets[app["id"]][0]["value"]
        return app["id"], default

    def _new_application_row(self, app_id: str, name: str, app_type: str, *, description: str | None,
                             secret: str) -> dict[str, Any]:
        return {
            "tenantId": TENANT_ID,
            "id": app_id,
            "name": name,
            "secret": secret,
            "description": description,
            "type": app_type,
            "oidcClientMetadata": {"redirectUris": [], "postLogoutRedirectUris": []},
            "customClientMetadata": {},
            "protectedAppMetadata": None,
            "customData": {},
            "isThirdParty": False,
            "createdAt": self.clock_ms(),
        }

    # ---- tokens ------------------------------------------------------------------------------------

    def _authenticate_client(self, client_id: str, client_secret: str) -> dict[str, Any] | None:
        app = self.applications.get(client_id)
        if app is None:
            return None
        now = self.clock_ms()
        # The secret column (legacy plain value, and on 1.37.1 even the "#internal:" value, as
        # recorded in 07) and every unexpired named secret authenticate at once.
        candidates = [app["secret"]] + [
            entry["value"] for entry in self.secrets.get(client_id, [])
            if entry["expiresAt"] is None or entry["expiresAt"] > now
        ]
        if any(hmac.compare_digest(client_secret.encode(), candidate.encode()) for candidate in candidates):
            return app
        return None

    def token_request(self, form: dict[str, str], basic: tuple[str, str] | None, *, basic_present: bool) -> dict[str, Any]:
        """``POST /oidc/token``: client authentication, grant type, resource indicator, scope."""
        body_credentials = "client_id" in form or "client_secret" in form
        if basic is None and not basic_present and not body_credentials:
            raise oidc_error(400, "invalid_request", "no client authentication mechanism provided")
        if (basic is not None or basic_present) and "client_secret" in form:
            raise oidc_error(400, "invalid_request", "client authentication must only be provided using one mechanism")
        used_basic = basic is not None or basic_present
        client_id, client_secret = basic if basic is not None else (form.get("client_id", ""), form.get("client_secret", ""))
        with self.lock:
            app = self._authenticate_client(client_id, client_secret) if client_secret else None
            if app is None:
                headers = {}
                if used_basic:
                    headers["WWW-Authenticate"] = (
                        f'Basic realm="{self.issuer}", error="invalid_client", '
                        'error_description="client authentication failed"'
                    )
                raise oidc_error(401, "invalid_client", "client authentication failed", headers)
            grant_type = form.get("grant_type")
            if not grant_type:
                raise oidc_error(400, "invalid_request", "missing required parameter 'grant_type'")
            if grant_type not in SUPPORTED_GRANT_TYPES:
                raise oidc_error(400, "unsupported_grant_type", "unsupported grant_type requested")
            if grant_type not in GRANT_TYPES_BY_APPLICATION_TYPE.get(app["type"], frozenset()):
                raise oidc_error(400, "invalid_request", "requested grant type is not allowed for this client")
            if grant_type != "client_credentials":
                # The stand-in never issues refresh tokens or codes, so any presented grant is bogus.
                raise oidc_error(400, "invalid_grant", "grant request is invalid")
            resource = form.get("resource")
            if not resource and not form.get("organization_id"):
                raise oidc_error(400, "invalid_target", "both `resource` and `organization_id` are not provided")
            if resource != self.management_resource:
                raise oidc_error(400, "invalid_target", "resource indicator is missing, or unknown")
            requested = form.get("scope", "").split()
            has_role = app["id"] in self.management_role_app_ids
            granted = [scope for scope in requested if scope == MANAGEMENT_API_SCOPE and has_role]
            token = self._mint_token(app["id"], granted)
        body: dict[str, Any] = {"access_token": token, "expires_in": self.token_ttl, "token_type": "Bearer"}
        if granted:
            body["scope"] = " ".join(granted)
        return body

    def _mint_token(self, client_id: str, scopes: list[str]) -> str:
        now = self.clock_ms() // 1000
        jti = _random_secret(21)
        header = {"alg": "HS256", "typ": "at+jwt", "kid": self._token_kid}
        claims: dict[str, Any] = {"jti": jti, "sub": client_id, "iat": now, "exp": now + self.token_ttl}
        if scopes:
            claims["scope"] = " ".join(scopes)
        claims.update({"client_id": client_id, "iss": self.issuer, "aud": self.management_resource})
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = hmac.new(self._token_key, signing_input.encode(), hashlib.sha256).digest()
        self._issued_jtis.add(jti)
        return f"{signing_input}.{_b64url(signature)}"

    def expire_all_tokens(self) -> None:
        """Every token issued so far now fails like an expired JWT (new tokens work)."""
        with self.lock:
            self._expired_jtis |= self._issued_jtis
            self._issued_jtis = set()

    def authenticate_bearer(self, authorization: str | None) -> dict[str, Any]:
        """Check a Management API ``Authorization`` header; returns the token's claims or raises 401/403."""
        if not authorization:
            raise ApiError(401, "auth.authorization_header_missing", "Authorization header is missing.")
        scheme, _, token = authorization.partition(" ")
        if scheme != "Bearer":
            raise ApiError(
                401, "auth.authorization_token_type_not_supported", "Authorization type is not supported.",
                data={"supportedTypes": ["Bearer"]},
            )
        parts = token.strip().split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not three parts")
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
            if not isinstance(header, dict) or not isinstance(claims, dict):
                raise ValueError("not objects")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise unauthorized("ERR_JWS_INVALID", "JWSInvalid") from None
        expected = hmac.new(self._token_key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise unauthorized("ERR_JWS_SIGNATURE_VERIFICATION_FAILED", "JWSSignatureVerificationFailed")
        with self.lock:
            revoked = claims.get("jti") in self._expired_jtis
        if revoked or not isinstance(claims.get("exp"), int) or claims["exp"] * 1000 <= self.clock_ms():
            raise unauthorized("ERR_JWT_EXPIRED", "JWTExpired")
        if claims.get("aud") != self.management_resource or claims.get("iss") != self.issuer:
            raise unauthorized("ERR_JWT_CLAIM_VALIDATION_FAILED", "JWTClaimValidationFailed")
        if MANAGEMENT_API_SCOPE not in str(claims.get("scope", "")).split():
            raise ApiError(403, "auth.forbidden", "Forbidden. Please check your user roles and permissions.")
        return claims

    # ---- applications ------------------------------------------------------------------------------

    def _application(self, app_id: str) -> dict[str, Any]:
        app = self.applications.get(app_id)
        if app is None:
            raise not_exists_with_id("applications", app_id)
        return app

    def create_application(self, body: Any) -> dict[str, Any]:
        """``POST /api/applications`` (200, not 201)."""
        body = _body_object(body)
        guard = Guard()
        name = body.get("name", MISSING)
        if guard.expect(name, "string", ["name"]):
            guard.string_length(name, ["name"])
        guard.expect(body.get("description", MISSING), "string", ["description"], optional=True, nullable=True)
        app_type = body.get("type", MISSING)
        type_ok = guard.expect_enum(app_type, APPLICATION_TYPES, ["type"])
        oidc = _check_oidc_metadata(guard, body.get("oidcClientMetadata", MISSING), app_type if type_ok else "")
        custom = _check_custom_client_metadata(guard, body.get("customClientMetadata", MISSING))
        guard.expect(body.get("customData", MISSING), "object", ["customData"], optional=True)
        guard.expect(body.get("isThirdParty", MISSING), "boolean", ["isThirdParty"], optional=True)
        guard.raise_if_any()
        app_id = _random_id()
        app = self._new_application_row(
            app_id, name, app_type, description=body.get("description"), secret="#internal:" + _random_secret(),
        )
        if oidc is not None:
            app["oidcClientMetadata"] = oidc
        if custom is not None:
            app["customClientMetadata"] = custom
        if "customData" in body:
            app["customData"] = copy.deepcopy(body["customData"])
        if "isThirdParty" in body:
            app["isThirdParty"] = body["isThirdParty"]
        with self.lock:
            self.applications[app_id] = app
            self.secrets[app_id] = []
            if app_type not in PUBLIC_APPLICATION_TYPES:
                self.secrets[app_id].append(self._new_secret(app_id, DEFAULT_SECRET_NAME, None))
            return copy.deepcopy(app)

    def get_application(self, app_id: str) -> dict[str, Any]:
        """``GET /api/applications/{id}``: the row plus ``isAdmin`` (only this route adds it)."""
        with self.lock:
            app = copy.deepcopy(self._application(app_id))
            app["isAdmin"] = app_id in self.management_role_app_ids
            return app

    def list_applications(self, *, types: list[str], search: str | None, is_third_party: bool | None,
                          page: int | None, page_size: int | None) -> Page:
        """``GET /api/applications``, newest first as on the real server."""
        pattern = like_pattern(search) if search is not None else None
        with self.lock:
            rows = sorted(self.applications.values(), key=lambda app: app["createdAt"], reverse=True)
            selected = [
                copy.deepcopy(app) for app in rows
                if (not types or app["type"] in types)
                and (is_third_party is None or app["isThirdParty"] == is_third_party)
                and (pattern is None or any(
                    isinstance(app.get(key), str) and pattern.fullmatch(app[key])
                    for key in ("id", "name", "description")
                ))
            ]
        return paginate(selected, page, page_size)

    def update_application(self, app_id: str, body: Any) -> dict[str, Any]:
        """``PATCH /api/applications/{id}``: objects replaced wholesale; ``type``/``isThirdParty`` dropped."""
        body = _body_object(body)
        guard = Guard()
        if guard.expect(body.get("name", MISSING), "string", ["name"], optional=True):
            guard.string_length(body["name"], ["name"])
        guard.expect(body.get("description", MISSING), "string", ["description"], optional=True, nullable=True)
        with self.lock:
            current_type = self.applications.get(app_id, {}).get("type", "")
        oidc = _check_oidc_metadata(guard, body.get("oidcClientMetadata", MISSING), current_type)
        custom = _check_custom_client_metadata(guard, body.get("customClientMetadata", MISSING))
        guard.expect(body.get("customData", MISSING), "object", ["customData"], optional=True)
        guard.expect(body.get("isAdmin", MISSING), "boolean", ["isAdmin"], optional=True)
        guard.raise_if_any()
        with self.lock:
            app = self._application(app_id)
            for key in ("name", "description"):
                if key in body:
                    app[key] = body[key]
            if oidc is not None:
                app["oidcClientMetadata"] = oidc
            if custom is not None:
                app["customClientMetadata"] = custom
            if "customData" in body:
                app["customData"] = copy.deepcopy(body["customData"])
            if "protectedAppMetadata" in body:
                app["protectedAppMetadata"] = copy.deepcopy(body["protectedAppMetadata"])
            if body.get("isAdmin") is True and app["type"] == "MachineToMachine":
                self.management_role_app_ids.add(app_id)
            elif body.get("isAdmin") is False:
                self.management_role_app_ids.discard(app_id)
            return copy.deepcopy(app)

    def delete_application(self, app_id: str) -> None:
        """``DELETE /api/applications/{id}`` (its secrets go with it)."""
        with self.lock:
            self._application(app_id)
            del self.applications[app_id]
            self.secrets.pop(app_id, None)
            self.management_role_app_ids.discard(app_id)

    def delete_legacy_secret(self, app_id: str) -> dict[str, Any]:
        """``DELETE /api/applications/{id}/legacy-secret``: a plain secret column becomes internal."""
        with self.lock:
            app = self._application(app_id)
            if app["secret"].startswith("#internal:"):
                raise ApiError(400, "application.no_legacy_secret_found", "The application does not have a legacy secret.")
            app["secret"] = "#internal:" + _random_secret()
            return copy.deepcopy(app)

    # ---- application secrets -----------------------------------------------------------------------

    def _new_secret(self, app_id: str, name: str, expires_at: int | None) -> dict[str, Any]:
        return {
            "tenantId": TENANT_ID, "applicationId": app_id, "name": name, "value": _random_secret(),
            "createdAt": self.clock_ms(), "expiresAt": expires_at,
        }

    def list_secrets(self, app_id: str) -> list[dict[str, Any]]:
        """``GET /api/applications/{id}/secrets``, oldest first."""
        with self.lock:
            self._application(app_id)
            return copy.deepcopy(self.secrets.get(app_id, []))

    def create_secret(self, app_id: str, body: Any) -> dict[str, Any]:
        """``POST /api/applications/{id}/secrets`` → 201 with the value."""
        body = _body_object(body)
        guard = Guard()
        name = body.get("name", MISSING)
        if guard.expect(name, "string", ["name"]):
            guard.string_length(name, ["name"])
        expires_at = body.get("expiresAt", MISSING)
        guard.expect(expires_at, "number", ["expiresAt"], optional=True, nullable=True)
        guard.raise_if_any()
        expires_at = None if expires_at is MISSING else expires_at
        if expires_at is not None and expires_at <= self.clock_ms():
            raise ApiError(400, "request.invalid_input", "Input is invalid. The value of `expiresAt` must be in the future.")
        with self.lock:
            if app_id not in self.applications:
                # 1.37.1 answers with the foreign-key error (1.42: entity.not_exists_with_id).
                raise ApiError(404, "entity.relation_foreign_key_not_found",
                               "Cannot find one or more foreign keys. Please check the input and ensure that "
                               "all referenced entities exist.")
            entries = self.secrets.setdefault(app_id, [])
            if any(entry["name"] == name for entry in entries):
                raise ApiError(422, "application.secret_name_exists", "Secret name already exists.")
            entry = self._new_secret(app_id, name, expires_at)
            entries.append(entry)
            return copy.deepcopy(entry)

    def rename_secret(self, app_id: str, name: str, body: Any) -> dict[str, Any]:
        """``PATCH /api/applications/{id}/secrets/{name}`` (rename)."""
        body = _body_object(body)
        guard = Guard()
        new_name = body.get("name", MISSING)
        if guard.expect(new_name, "string", ["name"]):
            guard.string_length(new_name, ["name"])
        guard.raise_if_any()
        with self.lock:
            entries = self.secrets.get(app_id, [])
            entry = next((item for item in entries if item["name"] == name), None)
            if entry is None:
                raise entity_not_exists("application_secret")
            if new_name != name and any(item["name"] == new_name for item in entries):
                raise ApiError(422, "application.secret_name_exists", "Secret name already exists.")
            entry["name"] = new_name
            return copy.deepcopy(entry)

    def delete_secret(self, app_id: str, name: str) -> None:
        """``DELETE /api/applications/{id}/secrets/{name}`` → 204, or 404 ``entity.not_found``."""
        with self.lock:
            entries = self.secrets.get(app_id, [])
            remaining = [item for item in entries if item["name"] != name]
            if len(remaining) == len(entries):
                raise entity_not_found()
            self.secrets[app_id] = remaining

    # ---- hooks -------------------------------------------------------------------------------------

    def _hook(self, hook_id: str) -> dict[str, Any]:
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise not_exists_with_id("hooks", hook_id)
        return hook

    def _hook_view(self, hook: dict[str, Any], include_stats: bool) -> dict[str, Any]:
        view = copy.deepcopy(hook)
        if include_stats:
            since = self.clock_ms() - RECENT_LOG_WINDOW_MS
            logs = [log for log in self.hook_logs.get(hook["id"], []) if log["createdAt"] >= since]
            view["executionStats"] = {
                "successCount": sum(1 for log in logs if log["payload"]["result"] == "Success"),
                "requestCount": len(logs),
            }
        return view

    def create_hook(self, body: Any) -> dict[str, Any]:
        """``POST /api/hooks`` → 201 with a server-generated ``signingKey``."""
        body = _body_object(body)
        guard = Guard()
        if guard.expect(body.get("name", MISSING), "string", ["name"], optional=True):
            guard.string_length(body["name"], ["name"])
        guard.expect_enum(body.get("event", MISSING), HOOK_EVENTS, ["event"], optional=True)
        events = _check_hook_events(guard, body.get("events", MISSING), optional=True, min_one=False)
        config = _check_hook_config(guard, body.get("config", MISSING), optional=False)
        guard.expect(body.get("enabled", MISSING), "boolean", ["enabled"], optional=True)
        guard.raise_if_any()
        event = body.get("event")
        if not events and not event:
            raise ApiError(400, "hook.missing_events", "You need to provide at least one event.")
        hook = {
            "tenantId": TENANT_ID,
            "id": _random_id(),
            "name": body.get("name", ""),
            "event": event,
            "events": events or [event],
            "config": config,
            "signingKey": _random_secret(),
            "enabled": body.get("enabled", True),
            "createdAt": self.clock_ms(),
        }
        with self.lock:
            self.hooks[hook["id"]] = hook
            self.hook_logs[hook["id"]] = []
            return copy.deepcopy(hook)

    def get_hook(self, hook_id: str, *, include_stats: bool) -> dict[str, Any]:
        """``GET /api/hooks/{id}`` (``includeExecutionStats`` adds the last 24 h counts)."""
        with self.lock:
            return self._hook_view(self._hook(hook_id), include_stats)

    def list_hooks(self, *, include_stats: bool, page: int | None, page_size: int | None) -> Page:
        """``GET /api/hooks``, newest first."""
        with self.lock:
            rows = sorted(self.hooks.values(), key=lambda hook: hook["createdAt"], reverse=True)
            views = [self._hook_view(hook, include_stats) for hook in rows]
        return paginate(views, page, page_size)

    def update_hook(self, hook_id: str, body: Any) -> dict[str, Any]:
        """``PATCH /api/hooks/{id}``: ``config`` replaced wholesale; ``events`` needs at least one."""
        body = _body_object(body)
        guard = Guard()
        if guard.expect(body.get("name", MISSING), "string", ["name"], optional=True):
            guard.string_length(body["name"], ["name"])
        if body.get("event") is not None:
            guard.expect_enum(body.get("event"), HOOK_EVENTS, ["event"])
        events = _check_hook_events(guard, body.get("events", MISSING), optional=True, min_one=True)
        config = _check_hook_config(guard, body.get("config", MISSING), optional=True)
        guard.expect(body.get("enabled", MISSING), "boolean", ["enabled"], optional=True)
        guard.raise_if_any()
        with self.lock:
            hook = self.hooks.get(hook_id)
            if hook is None:
                raise entity_not_exists("hook")
            if "name" in body:
                hook["name"] = body["name"]
            if "event" in body:
                hook["event"] = body["event"]
            if events is not None:
                hook["events"] = events
            if config is not None:
                hook["config"] = config
            if "enabled" in body:
                hook["enabled"] = body["enabled"]
            return copy.deepcopy(hook)

    def rotate_signing_key(self, hook_id: str) -> dict[str, Any]:
        """``PATCH /api/hooks/{id}/signing-key``: a new key at once; the old one is dead."""
        with self.lock:
            hook = self.hooks.get(hook_id)
            if hook is None:
                raise entity_not_exists("hook")
            hook["signingKey"] = _random_secret()
            return copy.deepcopy(hook)

    def delete_hook(self, hook_id: str) -> None:
        """``DELETE /api/hooks/{id}`` → 204, or 404 ``entity.not_found``."""
        with self.lock:
            if self.hooks.pop(hook_id, None) is None:
                raise entity_not_found()
            self.hook_logs.pop(hook_id, None)

    def recent_hook_logs(self, hook_id: str, *, page: int | None, page_size: int | None) -> Page:
        """``GET /api/hooks/{id}/recent-logs``: real deliveries of the last 24 h, newest first, always paged."""
        with self.lock:
            self._hook(hook_id)
            since = self.clock_ms() - RECENT_LOG_WINDOW_MS
            logs = [copy.deepcopy(log) for log in reversed(self.hook_logs.get(hook_id, [])) if log["createdAt"] >= since]
        return paginate(logs, page, page_size, always=True)

    def test_hook(self, hook_id: str, body: Any) -> None:
        """``POST /api/hooks/{id}/test``: one signed sample delivery per event to ``config.url``.

        Sent with the hook's current signing key and the headers of the body's ``config``; 422 when
        the endpoint cannot be reached or answers with an error. Test deliveries are not logged.
        """
        body = _body_object(body)
        guard = Guard()
        events = _check_hook_events(guard, body.get("events", MISSING), optional=False, min_one=False)
        config = _check_hook_config(guard, body.get("config", MISSING), optional=False)
        guard.raise_if_any()
        with self.lock:
            hook = self._hook(hook_id)
            signing_key = hook["signingKey"]
        assert events is not None and config is not None
        for event in events:
            payload = {
                "event": event, "hookId": hook_id, "createdAt": _iso(self.clock_ms()),
                "userAgent": "fake-user-agent", "path": "/fake-path/:id", "method": "POST", "status": 200,
                "params": {"id": "fake-id"}, "data": {"result": "success"},
            }
            result = webhooks.deliver(self.delivery_url(config["url"]), config.get("headers") or {}, payload, signing_key,
                                      timeout=self.delivery_timeout)
            if not result.ok:
                raise ApiError(422, "hook.send_test_payload_failed", f"Failed to send test payload: {result.error}")

    def delivery_url(self, url: str) -> str:
        """``url`` with its ``host:port`` replaced per ``delivery_aliases`` (unchanged when not aliased)."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = self.delivery_aliases.get(f"{parts.hostname}:{port}")
        return urlunsplit((parts.scheme, target, parts.path, parts.query, parts.fragment)) if target else url

    # ---- users -------------------------------------------------------------------------------------

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self.users.get(user_id)
        if user is None:
            raise not_exists_with_id("users", user_id)
        return user

    @staticmethod
    def _user_view(user: dict[str, Any]) -> dict[str, Any]:
        view = copy.deepcopy(user)
        view["hasPassword"] = view.pop("_password", None) is not None
        return view

    def _check_user_fields(self, body: dict[str, Any], guard: Guard) -> None:
        username = body.get("username", MISSING)
        if guard.expect(username, "string", ["username"], optional=True, nullable=True) and not _USERNAME_RE.match(username):
            guard.regex(["username"])
        for key in ("primaryEmail", "primaryPhone", "name", "avatar"):
            guard.expect(body.get(key, MISSING), "string", [key], optional=True, nullable=True)
        for key in ("customData", "profile"):
            guard.expect(body.get(key, MISSING), "object", [key], optional=True)

    def _ensure_unique(self, body: dict[str, Any], user_id: str | None) -> None:
        checks = (
            ("username", "user.username_already_in_use", "This username is already in use."),
            ("primaryEmail", "user.email_already_in_use", "This email is associated with an existing account."),
            ("primaryPhone", "user.phone_already_in_use", "This phone number is associated with an existing account."),
        )
        for key, code, message in checks:
            value = body.get(key)
            if not value:
                continue
            for other in self.users.values():
                if other["id"] != user_id and isinstance(other.get(key), str) and other[key].lower() == value.lower():
                    raise ApiError(422, code, message)

    def create_user(self, body: Any) -> dict[str, Any]:
        """``POST /api/users`` → 200 with the user (``hasPassword`` instead of the password)."""
        body = _body_object(body)
        guard = Guard()
        self._check_user_fields(body, guard)
        guard.expect(body.get("password", MISSING), "string", ["password"], optional=True)
        guard.raise_if_any()
        now = self.clock_ms()
        with self.lock:
            self._ensure_unique(body, None)
            user = {
                "id": _random_id(12),
                "username": body.get("username"),
                "primaryEmail": body.get("primaryEmail"),
                "primaryPhone": body.get("primaryPhone"),
                "name": body.get("name"),
                "avatar": body.get("avatar"),
                "customData": copy.deepcopy(body.get("customData", {})),
                "identities": {},
                "lastSignInAt": None,
                "createdAt": now,
                "updatedAt": now,
                "profile": copy.deepcopy(body.get("profile", {})),
                "applicationId": None,
                "isSuspended": False,
                "_password": hashlib.sha256(body["password"].encode()).hexdigest() if body.get("password") else None,
            }
            self.users[user["id"]] = user
            return self._user_view(user)

    def get_user(self, user_id: str) -> dict[str, Any]:
        """``GET /api/users/{id}``."""
        with self.lock:
            return self._user_view(self._user(user_id))

    def list_users(self, *, page: int | None, page_size: int | None) -> Page:
        """``GET /api/users``, newest first."""
        with self.lock:
            rows = sorted(self.users.values(), key=lambda user: user["createdAt"], reverse=True)
            return paginate([self._user_view(user) for user in rows], page, page_size)

    def update_user(self, user_id: str, body: Any, *, user_agent: str | None, ip: str | None) -> dict[str, Any]:
        """``PATCH /api/users/{id}``, then a signed ``User.Data.Updated`` to every enabled hook subscribed.

        Logto sends it after answering; the stand-in sends it before answering, so a test sees the
        delivery as soon as the PATCH returns.
        """
        body = _body_object(body)
        guard = Guard()
        self._check_user_fields(body, guard)
        guard.raise_if_any()
        with self.lock:
            user = self._user(user_id)
            self._ensure_unique(body, user_id)
            for key in USER_PATCHABLE_KEYS:
                if key in body:
                    user[key] = copy.deepcopy(body[key])
            user["updatedAt"] = self.clock_ms()
            view = self._user_view(user)
            pending = self._pending_deliveries(USER_DATA_UPDATED, {
                "event": USER_DATA_UPDATED, "createdAt": _iso(self.clock_ms()), "userAgent": user_agent, "ip": ip,
                "path": f"/users/{user_id}", "method": "PATCH", "status": 200,
                "params": {"userId": user_id}, "matchedRoute": "/users/:userId", "data": view,
            })
        self._deliver(pending)
        return view

    def delete_user(self, user_id: str) -> None:
        """``DELETE /api/users/{id}`` → 204, or 404 ``entity.not_found``."""
        with self.lock:
            if self.users.pop(user_id, None) is None:
                raise entity_not_found()

    # ---- deliveries --------------------------------------------------------------------------------

    def _pending_deliveries(self, event: str, payload: dict[str, Any]) -> list[PendingDelivery]:
        pending = []
        for hook in sorted(self.hooks.values(), key=lambda item: item["createdAt"]):
            if not hook["enabled"] or event not in hook["events"]:
                continue
            body = {key: value for key, value in payload.items() if value is not None or key == "data"}
            body["hookId"] = hook["id"]
            pending.append(PendingDelivery(
                hook_id=hook["id"], url=hook["config"]["url"], headers=dict(hook["config"].get("headers") or {}),
                signing_key=hook["signingKey"], payload=body, event=event,
            ))
        return pending

    def _deliver(self, pending: list[PendingDelivery]) -> None:
        for delivery in pending:
            target = self.resolve_url(delivery.url) if self.resolve_url is not None else self.delivery_url(delivery.url)
            if target is None:
                result = webhooks.DeliveryResult(None, error="TypeError: fetch failed")  # getaddrinfo ENOTFOUND
            else:
                result = webhooks.deliver(target, delivery.headers, delivery.payload, delivery.signing_key,
                                          timeout=self.delivery_timeout)
            key = f"TriggerHook.{delivery.event}"
            log_payload: dict[str, Any] = {
                "key": key, "result": "Success" if result.ok else "Error", "hookId": delivery.hook_id,
            }
            if result.status is not None:
                log_payload["response"] = {"body": result.response_body, "statusCode": result.status}
            if result.error and result.status is None:
                log_payload["error"] = result.error
            log_payload["hookRequest"] = {"body": delivery.payload}
            with self.lock:
                if delivery.hook_id in self.hook_logs:
                    self.hook_logs[delivery.hook_id].append(
                        {"id": _random_id(), "key": key, "payload": log_payload, "createdAt": self.clock_ms()}
                    )


def _iso(epoch_ms: int) -> str:
    """``new Date(epoch_ms).toISOString()``: UTC with milliseconds and ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_ms // 1000)) + f".{epoch_ms % 1000:03d}Z"
