"""Applications and their named secrets: thin verbs over /api/applications, with input checks.

Values are checked before anything is sent so a typo gives one clear error naming the field instead
of a Logto ZodError (or worse, a half-applied change).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence
from urllib.parse import quote, urlsplit

from components import clock

from .errors import LogtoInputError
from .transport import LogtoTransport

APPLICATION_TYPES = ("Native", "SPA", "Traditional", "MachineToMachine", "Protected", "SAML")
DEFAULT_SECRET_NAME = "Default secret"
MAX_PAGE_SIZE = 100
_UNSET: Any = object()


def validate_name(field: str, value: Any) -> str:
    """A non-empty name of at most 256 characters (Logto's limit)."""
    if not isinstance(value, str) or not value.strip():
        raise LogtoInputError(field, "must be a non-empty string")
    if len(value) > 256:
        raise LogtoInputError(field, "is longer than 256 characters")
    return value


def validate_app_type(value: Any) -> str:
    """One of Logto's application types (the console's "Next.js (App Router)" is ``Traditional``)."""
    if value not in APPLICATION_TYPES:
        raise LogtoInputError(
            "app_type",
            f"{value!r} is not a Logto application type; use one of {', '.join(APPLICATION_TYPES)}",
            hint="A Next.js (App Router) app such as LobeChat is 'Traditional'.",
        )
    return value


def validate_uri(field: str, value: Any, *, allow_custom_scheme: bool = False) -> str:
    """An absolute URI: http(s) with a host, or (native apps) ``scheme://...``; no spaces, no fragment."""
    if not isinstance(value, str) or not value:
        raise LogtoInputError(field, "must be a non-empty URI string")
    if value != value.strip() or any(ch.isspace() for ch in value):
        raise LogtoInputError(field, f"{value!r} contains whitespace")
    parts = urlsplit(value)
    if parts.fragment:
        raise LogtoInputError(field, f"{value!r} has a #fragment, which OAuth redirect URIs may not have")
    if parts.scheme in {"http", "https"}:
        if not parts.hostname:
            raise LogtoInputError(field, f"{value!r} has no host")
        try:
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise LogtoInputError(field, f"{value!r} has an invalid port") from None
        return value
    if allow_custom_scheme and parts.scheme and "://" in value:
        return value
    raise LogtoInputError(field, f"{value!r} is not an absolute http(s) URI")


def validate_uri_list(field: str, values: Any, *, allow_custom_scheme: bool = False) -> list[str]:
    """A list of URIs (each checked with ``validate_uri``); a single string is refused, not split."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise LogtoInputError(field, "must be a list of URIs")
    return [
        validate_uri(f"{field}[{index}]", value, allow_custom_scheme=allow_custom_scheme)
        for index, value in enumerate(values)
    ]


def validate_expires_at(value: Any) -> int | None:
    """Expiry in epoch milliseconds, in the future (Logto refuses a past ``expiresAt``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LogtoInputError("expires_at", "must be epoch milliseconds (an integer) or None")
    millis = int(value)
    if millis <= int(clock.now() * 1000):
        raise LogtoInputError("expires_at", f"{millis} is not in the future (epoch milliseconds)")
    return millis


def _segment(value: str, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise LogtoInputError(field, "must be a non-empty string")
    return quote(value, safe="")


def oidc_client_metadata(
    redirect_uris: Sequence[str], post_sign_out_redirect_uris: Sequence[str], *, app_type: str = "Traditional"
) -> dict[str, list[str]]:
    """The complete ``oidcClientMetadata`` object (Logto replaces it wholesale on PATCH)."""
    native = app_type == "Native"
    return {
        "redirectUris": validate_uri_list("redirect_uris", redirect_uris, allow_custom_scheme=native),
        "postLogoutRedirectUris": validate_uri_list(
            "post_sign_out_redirect_uris", post_sign_out_redirect_uris, allow_custom_scheme=native
        ),
    }


class Applications:
    """Verbs on ``/api/applications`` and ``/api/applications/{id}/secrets``."""

    def __init__(self, transport: LogtoTransport) -> None:
        self.transport = transport

    def get(self, app_id: str) -> dict[str, Any]:
        """One application (raises ``LogtoNotFoundError`` when it does not exist)."""
        return self.transport.request_json("GET", f"/api/applications/{_segment(app_id, 'app_id')}")

    def list(
        self,
        *,
        types: Iterable[str] | None = None,
        search: str | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> list[dict[str, Any]]:
        """One page of applications, optionally filtered by type and a LIKE ``search`` pattern."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise LogtoInputError("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if types:
            params["types"] = [validate_app_type(t) for t in types]
        if search:
            params["search"] = search
        return self.transport.request_json("GET", "/api/applications", params=params)

    def list_all(self, *, types: Iterable[str] | None = None, search: str | None = None) -> list[dict[str, Any]]:
        """Every application (paging through 100 at a time)."""
        types = list(types) if types else None
        result: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.list(types=types, search=search, page=page, page_size=MAX_PAGE_SIZE)
            result.extend(batch)
            if len(batch) < MAX_PAGE_SIZE:
                return result
            page += 1

    def search(self, text: str) -> list[dict[str, Any]]:
        """Applications whose name, id or description contains ``text`` (Logto needs % wildcards)."""
        validate_name("search", text)
        return self.list_all(search=f"%{text}%")

    def create(
        self,
        *,
        name: str,
        app_type: str = "Traditional",
        redirect_uris: Sequence[str] = (),
        post_sign_out_redirect_uris: Sequence[str] = (),
        cors_allowed_origins: Sequence[str] = (),
        description: str | None = None,
        custom_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create an application (Logto answers 200 with it). Not retried after a lost response."""
        body: dict[str, Any] = {
            "name": validate_name("name", name),
            "type": validate_app_type(app_type),
            "oidcClientMetadata": oidc_client_metadata(redirect_uris, post_sign_out_redirect_uris, app_type=app_type),
            "customClientMetadata": {
                "corsAllowedOrigins": validate_uri_list("cors_allowed_origins", cors_allowed_origins)
            },
        }
        if description is not None:
            body["description"] = description
        if custom_data is not None:
            body["customData"] = custom_data
        return self.transport.request_json("POST", "/api/applications", json=body, expected=(200, 201))

    def update(
        self,
        app_id: str,
        *,
        name: str | None = None,
        description: str | None = _UNSET,
        oidc_client_metadata: dict[str, Any] | None = None,
        custom_client_metadata: dict[str, Any] | None = None,
        custom_data: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """PATCH an application. Metadata objects replace the stored ones wholesale: pass them complete."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = validate_name("name", name)
        if description is not _UNSET:
            body["description"] = description
        if oidc_client_metadata is not None:
            for key in ("redirectUris", "postLogoutRedirectUris"):
                if key not in oidc_client_metadata:
                    raise LogtoInputError(
                        f"oidc_client_metadata.{key}",
                        "is missing; Logto replaces oidcClientMetadata wholesale, so send it complete",
                    )
            validate_uri_list("redirect_uris", oidc_client_metadata["redirectUris"], allow_custom_scheme=True)
            validate_uri_list(
                "post_sign_out_redirect_uris", oidc_client_metadata["postLogoutRedirectUris"], allow_custom_scheme=True
            )
            body["oidcClientMetadata"] = oidc_client_metadata
        if custom_client_metadata is not None:
            if "corsAllowedOrigins" in custom_client_metadata:
                validate_uri_list("cors_allowed_origins", custom_client_metadata["corsAllowedOrigins"])
            body["customClientMetadata"] = custom_client_metadata
        if custom_data is not None:
            body["customData"] = custom_data
        if not body:
            raise LogtoInputError("update", "nothing to change")
        return self.transport.request_json(
            "PATCH", f"/api/applications/{_segment(app_id, 'app_id')}", json=body
        )

    def delete(self, app_id: str) -> None:
        """Delete an application (``LogtoNotFoundError`` if it is already gone)."""
        self.transport.request_json(
            "DELETE", f"/api/applications/{_segment(app_id, 'app_id')}", expected=(200, 204)
        )

    def list_secrets(self, app_id: str) -> list[dict[str, Any]]:
        """The application's named secrets, values included (all unexpired ones are valid together)."""
        return self.transport.request_json("GET", f"/api/applications/{_segment(app_id, 'app_id')}/secrets")

    def create_secret(self, app_id: str, name: str, *, expires_at: int | None = None) -> dict[str, Any]:
        """Create a named secret (201 ``{name, value, expiresAt}``); 422 if the name exists."""
        body: dict[str, Any] = {"name": validate_name("secret_name", name)}
        millis = validate_expires_at(expires_at)
        if millis is not None:
            body["expiresAt"] = millis
        return self.transport.request_json(
            "POST", f"/api/applications/{_segment(app_id, 'app_id')}/secrets", json=body, expected=(200, 201)
        )

    def delete_secret(self, app_id: str, name: str) -> None:
        """Delete a named secret (``LogtoNotFoundError`` if it does not exist)."""
        self.transport.request_json(
            "DELETE",
            f"/api/applications/{_segment(app_id, 'app_id')}/secrets/{_segment(name, 'secret_name')}",
            expected=(200, 204),
        )

    def delete_legacy_secret(self, app_id: str) -> None:
        """Retire the plain ``secret`` column (400 ``application.no_legacy_secret_found`` when there is none)."""
        self.transport.request_json(
            "DELETE", f"/api/applications/{_segment(app_id, 'app_id')}/legacy-secret", expected=(200, 204)
        )

    def default_secret(self, app_id: str) -> str | None:
        """Value of the secret named "Default secret" (the usable client secret), or None."""
        for secret in self.list_secrets(app_id):
            if secret.get("name") == DEFAULT_SECRET_NAME:
                return secret.get("value")
        return None
