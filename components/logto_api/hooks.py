"""Webhooks: thin verbs over /api/hooks, with input checks before anything is sent."""

from __future__ import annotations

from typing import Any, Iterable, Mapping
from urllib.parse import quote

from .applications import MAX_PAGE_SIZE, validate_name, validate_uri
from .errors import LogtoInputError
from .transport import LogtoTransport

HOOK_EVENTS = (
    "PostRegister",
    "PostSignIn",
    "PostSignInAdaptiveMfaTriggered",
    "PostResetPassword",
    "User.Created",
    "User.Deleted",
    "User.Data.Updated",
    "User.SuspensionStatus.Updated",
    "Role.Created",
    "Role.Deleted",
    "Role.Data.Updated",
    "Role.Scopes.Updated",
    "Scope.Created",
    "Scope.Deleted",
    "Scope.Data.Updated",
    "Organization.Created",
    "Organization.Deleted",
    "Organization.Data.Updated",
    "Organization.Membership.Updated",
    "OrganizationRole.Created",
    "OrganizationRole.Deleted",
    "OrganizationRole.Data.Updated",
    "OrganizationRole.Scopes.Updated",
    "OrganizationScope.Created",
    "OrganizationScope.Deleted",
    "OrganizationScope.Data.Updated",
    "Identifier.Lockout",
)
"""Event names Logto 1.37 accepts (from its OpenAPI document)."""


def validate_events(events: Any) -> list[str]:
    """A non-empty list of known hook events."""
    if isinstance(events, (str, bytes)) or not isinstance(events, (list, tuple)):
        raise LogtoInputError("events", "must be a list of event names, e.g. ['User.Data.Updated']")
    if not events:
        raise LogtoInputError("events", "is empty; a Logto webhook needs at least one event")
    for event in events:
        if event not in HOOK_EVENTS:
            raise LogtoInputError(
                "events", f"{event!r} is not a Logto hook event", hint="LobeChat handles 'User.Data.Updated'."
            )
    return list(events)


def validate_headers(headers: Any) -> dict[str, str]:
    """Extra request headers of a delivery: a str -> str mapping (None means none)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise LogtoInputError("headers", "must be a mapping of header name to value")
    result: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str) or not key or any(ch.isspace() or ch == ":" for ch in key):
            raise LogtoInputError("headers", f"{key!r} is not a valid header name")
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise LogtoInputError("headers", f"the value of {key!r} must be a single-line string")
        result[key] = value
    return result


def hook_config(url: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The complete ``config`` object (Logto replaces it wholesale on PATCH)."""
    config: dict[str, Any] = {"url": validate_uri("url", url)}
    checked = validate_headers(headers)
    if checked:
        config["headers"] = checked
    return config


def _hook_path(hook_id: str) -> str:
    if not isinstance(hook_id, str) or not hook_id:
        raise LogtoInputError("hook_id", "must be a non-empty string")
    return f"/api/hooks/{quote(hook_id, safe='')}"


class Hooks:
    """Verbs on ``/api/hooks``."""

    def __init__(self, transport: LogtoTransport) -> None:
        self.transport = transport

    def get(self, hook_id: str) -> dict[str, Any]:
        """One hook, signing key included (``LogtoNotFoundError`` when it does not exist)."""
        return self.transport.request_json("GET", _hook_path(hook_id))

    def list(self, *, page: int = 1, page_size: int = 20) -> list[dict[str, Any]]:
        """One page of hooks."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise LogtoInputError("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        return self.transport.request_json("GET", "/api/hooks", params={"page": page, "page_size": page_size})

    def list_all(self) -> list[dict[str, Any]]:
        """Every hook (paging through 100 at a time)."""
        result: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.list(page=page, page_size=MAX_PAGE_SIZE)
            result.extend(batch)
            if len(batch) < MAX_PAGE_SIZE:
                return result
            page += 1

    def create(
        self,
        *,
        name: str,
        url: str,
        events: Iterable[str] = ("User.Data.Updated",),
        headers: Mapping[str, str] | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Create a hook (201 with its server-generated ``signingKey``). Not retried after a lost response."""
        body = {
            "name": validate_name("name", name),
            "events": validate_events(list(events) if not isinstance(events, (str, bytes)) else events),
            "config": hook_config(url, headers),
            "enabled": _validate_enabled(enabled),
        }
        return self.transport.request_json("POST", "/api/hooks", json=body, expected=(200, 201))

    def update(
        self,
        hook_id: str,
        *,
        name: str | None = None,
        events: Iterable[str] | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        enabled: bool | None = None,
    ) -> dict[str, Any]:
        """PATCH a hook. ``config`` is replaced wholesale, so ``headers`` can only be sent with ``url``."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = validate_name("name", name)
        if events is not None:
            body["events"] = validate_events(list(events) if not isinstance(events, (str, bytes)) else events)
        if url is not None:
            config = hook_config(url, headers)
            config.setdefault("headers", {})  # an explicit empty mapping clears old headers
            body["config"] = config
        elif headers is not None:
            raise LogtoInputError("headers", "Logto replaces config wholesale: pass url together with headers")
        if enabled is not None:
            body["enabled"] = _validate_enabled(enabled)
        if not body:
            raise LogtoInputError("update", "nothing to change")
        return self.transport.request_json("PATCH", _hook_path(hook_id), json=body)

    def delete(self, hook_id: str) -> None:
        """Delete a hook (``LogtoNotFoundError`` if it is already gone)."""
        self.transport.request_json("DELETE", _hook_path(hook_id), expected=(200, 204))

    def rotate_signing_key(self, hook_id: str) -> dict[str, Any]:
        """Swap the signing key at once (the old key dies immediately). Never retried blindly."""
        return self.transport.request_json("PATCH", f"{_hook_path(hook_id)}/signing-key", idempotent=False)

    def test(
        self,
        hook_id: str,
        *,
        url: str,
        events: Iterable[str] = ("User.Data.Updated",),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Ask Logto to send a test delivery to ``url`` (204; 422 when the endpoint fails)."""
        body = {
            "events": validate_events(list(events) if not isinstance(events, (str, bytes)) else events),
            "config": hook_config(url, headers),
        }
        self.transport.request_json("POST", f"{_hook_path(hook_id)}/test", json=body, expected=(200, 204))


def _validate_enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise LogtoInputError("enabled", "must be true or false")
    return value
