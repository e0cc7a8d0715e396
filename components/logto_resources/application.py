"""``LogtoApplication``: an OIDC application in Logto (LobeChat's "Next.js (App Router)" = Traditional).

Ownership marker: ``customData = {"managedBy": "lobechat-logto", "project", "stack", "resource"}``.
It is sent in the same POST that creates the application, so an application either exists with its
marker or not at all. ``create`` looks for it before creating and again after a create whose
response was lost, which is what keeps a re-run of ``pulumi up`` from making a duplicate.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.logto_api import (
    DEFAULT_SECRET_NAME,
    LogtoInputError,
    LogtoNotFoundError,
    ManagementApi,
    validate_app_type,
    validate_name,
    validate_uri_list,
)

from . import listing_cache
from .connection import (
    CONNECTION_KEYS,
    MARKER_KEYS,
    LogtoConnectionArgs,
    InputProblems,
    create_without_duplicate,
    read_inputs,
    refuse_foreign_owner,
    api_from_props,
    connection_outputs,
    differs,
    is_unknown,
    marker,
    marker_props_from_custom_data,
    ownership_props,
    secret_outputs_opts,
)

log = logging.getLogger(__name__)

DESIRED_KEYS = ("name", "description", "redirect_uris", "post_sign_out_redirect_uris", "cors_allowed_origins")
INPUT_KEYS = (*DESIRED_KEYS, "app_type", "adopt_id", *MARKER_KEYS, *CONNECTION_KEYS)
SECRET_OUTPUTS = ("client_secret",)
PUBLIC_CLIENT_TYPES = frozenset({"SPA", "Native"})
LISTING_KIND = "applications"
"""Kind prefix of this resource's listings in ``listing_cache`` (one per application type)."""
"""Public clients have no secret: their ``client_secret`` output stays empty."""


def _outputs(props: Mapping[str, Any], app: Mapping[str, Any], client_secret: str | None) -> dict[str, Any]:
    """All outputs: live application state, the marker read back, the connection and the ids."""
    oidc = app.get("oidcClientMetadata") or {}
    custom = app.get("customClientMetadata") or {}
    return {
        **connection_outputs(props),
        "adopt_id": props.get("adopt_id"),
        "name": app.get("name"),
        "description": app.get("description"),
        "app_type": app.get("type"),
        "redirect_uris": list(oidc.get("redirectUris") or []),
        "post_sign_out_redirect_uris": list(oidc.get("postLogoutRedirectUris") or []),
        "cors_allowed_origins": list(custom.get("corsAllowedOrigins") or []),
        **marker_props_from_custom_data(app.get("customData")),
        "app_id": app["id"],
        "client_id": app["id"],
        "client_secret": client_secret or "",
    }


class LogtoApplicationProvider(ResourceProvider):
    """Dynamic provider for ``LogtoApplication``. Stateless: every method builds its own client."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate inputs locally so a typo fails the preview before any request."""
        return CheckResult(news, _problems(news).failures())

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """URIs, name, description, marker and credentials update in place; a type change replaces."""
        replaces: list[str] = []
        if differs(olds, news, "app_type"):
            replaces.append("app_type")
        adopt_id = news.get("adopt_id")
        if adopt_id and (is_unknown(adopt_id) or adopt_id != id_):
            replaces.append("adopt_id")
        changed = [k for k in (*DESIRED_KEYS, *MARKER_KEYS, *CONNECTION_KEYS) if differs(olds, news, k)]
        missing_secret = (
            not olds.get("client_secret") and olds.get("app_type") not in PUBLIC_CLIENT_TYPES and _manages_default(news)
        )
        return DiffResult(changes=bool(replaces or changed or missing_secret), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Adopt ``adopt_id``, or take over this stack's own application, or create one (duplicate-safe)."""
        _problems(props).raise_first()
        api = api_from_props(props)
        adopt_id = props.get("adopt_id")
        if adopt_id:
            app = _adopt(api, adopt_id, props)
            secret = _ensure_default_secret(api, app, create_missing=_manages_default(props))
        else:
            app, secret = _take_over_or_create(api, props)
        return CreateResult(app["id"], _outputs(props, app, secret))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Live state (so refresh shows drift); an application deleted in Logto reads as gone."""
        api = api_from_props(props)
        try:
            app = api.applications.get(id_)
            secret = None if app.get("type") in PUBLIC_CLIENT_TYPES else api.applications.default_secret(id_)
        except LogtoNotFoundError:
            return ReadResult("", {})
        outs = _outputs(props, app, secret)
        return ReadResult(id_, outs, read_inputs(outs, INPUT_KEYS))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """PATCH complete objects when the desired state changed; credentials alone change nothing in Logto."""
        api = api_from_props(news)
        if any(differs(olds, news, k) for k in (*DESIRED_KEYS, *MARKER_KEYS)):
            app = _apply(api, id_, news)
        else:
            app = api.applications.get(id_)
        secret = _ensure_default_secret(api, app, create_missing=_manages_default(news))
        return UpdateResult({**olds, **news, **_outputs(news, app, secret)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Delete the application; already gone counts as done."""
        api = api_from_props(props)
        try:
            api.applications.delete(id_)
        except LogtoNotFoundError:
            pass
        finally:
            listing_cache.forget(api, LISTING_KIND)


def _problems(props: Mapping[str, Any]) -> InputProblems:
    problems = InputProblems()
    problems.check_connection(props)
    problems.run("name", props.get("name"), validate_name, "name")
    problems.run("app_type", props.get("app_type"), validate_app_type)
    native = props.get("app_type") == "Native"
    for key in ("redirect_uris", "post_sign_out_redirect_uris"):
        problems.run(key, props.get(key), validate_uri_list, key, allow_custom_scheme=native)
    problems.run("cors_allowed_origins", props.get("cors_allowed_origins"), validate_uri_list, "cors_allowed_origins")
    description = props.get("description")
    if description is not None and not is_unknown(description) and not isinstance(description, str):
        problems.add("description", "must be a string")
    adopt_id = props.get("adopt_id")
    if adopt_id is not None and not is_unknown(adopt_id) and (not isinstance(adopt_id, str) or not adopt_id):
        problems.add("adopt_id", "must be an application id or None")
    return problems


def _oidc_metadata(props: Mapping[str, Any], live: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {
        **((live or {}).get("oidcClientMetadata") or {}),
        "redirectUris": list(props.get("redirect_uris") or []),
        "postLogoutRedirectUris": list(props.get("post_sign_out_redirect_uris") or []),
    }


def _apply(
    api: ManagementApi,
    app_id: str,
    props: Mapping[str, Any],
    *,
    adopting: bool = False,
    live: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Bring an existing application to the desired state (one GET unless ``live`` is given, one PATCH).

    Logto replaces the metadata objects wholesale, so the live objects are merged with ours: fields
    this resource does not manage (a logo URI, token TTLs set in the console) survive.
    """
    if live is None:
        live = api.applications.get(app_id)
    if adopting:
        refuse_foreign_owner("adopt_id", f"application {app_id}", marker_props_from_custom_data(live.get("customData")), props)
    if live.get("type") != props.get("app_type"):
        raise LogtoInputError(
            "app_type",
            f"application {app_id} is {live.get('type')!r} in Logto, the program says {props.get('app_type')!r}",
            hint="Logto cannot change an application's type: remove adopt_id to create a new one, or fix app_type.",
        )
    updated = api.applications.update(
        app_id,
        name=props.get("name"),
        description=props.get("description"),
        oidc_client_metadata=_oidc_metadata(props, live),
        custom_client_metadata={
            **(live.get("customClientMetadata") or {}),
            "corsAllowedOrigins": list(props.get("cors_allowed_origins") or []),
        },
        custom_data={**(live.get("customData") or {}), **marker(props)},
    )
    listing_cache.remember_written(api, _listing_kind(props), updated)
    return updated


def _adopt(api: ManagementApi, adopt_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return _apply(api, adopt_id, props, adopting=True)
    except LogtoNotFoundError:
        raise LogtoInputError(
            "adopt_id",
            f"there is no application {adopt_id!r} in Logto to adopt",
            hint="Copy the App ID from the Logto console, or leave adopt_id unset to create a new application.",
        ) from None


def _listing_kind(props: Mapping[str, Any]) -> str:
    return f"{LISTING_KIND}:{props['app_type']}"


def _find_owned(api: ManagementApi, props: Mapping[str, Any], *, fresh: bool = False) -> dict[str, Any] | None:
    """This stack's application for this resource, if one exists (oldest first if several).

    The applications of that type are listed once per provider process (``listing_cache``);
    ``fresh`` lists them from Logto again (after a create whose response was lost).
    """
    wanted = marker(props)
    apps = listing_cache.listing(
        api, _listing_kind(props), lambda: api.applications.list_all(types=[props["app_type"]]), fresh=fresh
    )
    matches = [
        app
        for app in apps
        if isinstance(app.get("customData"), Mapping)
        and all(app["customData"].get(k) == v for k, v in wanted.items())
    ]
    if not matches:
        return None
    matches.sort(key=lambda app: app.get("createdAt") or 0)
    if len(matches) > 1:
        log.warning(
            "%d Logto applications carry the marker of %s/%s/%s; using the oldest, %s",
            len(matches), wanted["project"], wanted["stack"], wanted["resource"], matches[0]["id"],
        )
    return matches[0]


def _in_desired_state(live: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    """True when a found application already is what ``props`` asks for (then no PATCH is sent)."""
    oidc = live.get("oidcClientMetadata") or {}
    custom = live.get("customClientMetadata") or {}
    custom_data = live.get("customData") or {}
    return (
        live.get("type") == props.get("app_type")
        and live.get("name") == props.get("name")
        and (live.get("description") or None) == (props.get("description") or None)
        and list(oidc.get("redirectUris") or []) == list(props.get("redirect_uris") or [])
        and list(oidc.get("postLogoutRedirectUris") or []) == list(props.get("post_sign_out_redirect_uris") or [])
        and list(custom.get("corsAllowedOrigins") or []) == list(props.get("cors_allowed_origins") or [])
        and isinstance(custom_data, Mapping)
        and all(custom_data.get(k) == v for k, v in marker(props).items())
    )


def _take_over_or_create(api: ManagementApi, props: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """This stack's application (found by marker, brought to the desired state) or a new one; its secret.

    The found application comes from the listing, so taking it over costs no GET, and no PATCH when
    it already is in the desired state. If it vanished since the listing (deleted in the console
    meanwhile), the lookup is repeated once against a fresh listing.
    """
    for fresh in (False, True):
        owned = _find_owned(api, props, fresh=fresh)
        if owned is None:
            app = _create_without_duplicate(api, props)
            return app, _ensure_default_secret(api, app, create_missing=_manages_default(props))
        try:
            app = owned if _in_desired_state(owned, props) else _apply(api, owned["id"], props, live=owned)
            return app, _ensure_default_secret(api, app, create_missing=_manages_default(props))
        except LogtoNotFoundError:
            listing_cache.forget(api, LISTING_KIND)
            if fresh:
                raise
    raise AssertionError("unreachable")


def _create_without_duplicate(api: ManagementApi, props: Mapping[str, Any]) -> dict[str, Any]:
    """POST the application; a lost response is resolved by marker (see ``create_without_duplicate``).

    The created application is written through to the process's listing; after a lost response the
    listing is dropped and the lookup lists afresh.
    """
    try:
        app = _post_without_duplicate(api, props)
    except Exception:
        listing_cache.forget(api, LISTING_KIND)
        raise
    listing_cache.remember_written(api, _listing_kind(props), app)
    return app


def _post_without_duplicate(api: ManagementApi, props: Mapping[str, Any]) -> dict[str, Any]:
    return create_without_duplicate(
        lambda: api.applications.create(
            name=props["name"],
            app_type=props["app_type"],
            redirect_uris=props.get("redirect_uris") or [],
            post_sign_out_redirect_uris=props.get("post_sign_out_redirect_uris") or [],
            cors_allowed_origins=props.get("cors_allowed_origins") or [],
            description=props.get("description"),
            custom_data=marker(props),
        ),
        lambda: _find_owned(api, props, fresh=True),
        f"application {props.get('name')!r}",
    )


def _manages_default(props: Mapping[str, Any]) -> bool:
    return props.get("manage_default_secret") is not False


def _ensure_default_secret(api: ManagementApi, app: Mapping[str, Any], *, create_missing: bool = True) -> str:
    """The value of "Default secret", created when missing (the app's own ``secret`` is internal).

    Public clients (SPA, Native) have no secret at all: "". With ``create_missing`` False (the
    client secret is rotated through ``LogtoApplicationSecret``, which deletes the Default secret at
    the first rotation) a missing one stays missing: "".
    """
    if app.get("type") in PUBLIC_CLIENT_TYPES:
        return ""
    value = api.applications.default_secret(app["id"])
    if value or not create_missing:
        return value or ""
    return api.applications.create_secret(app["id"], DEFAULT_SECRET_NAME)["value"]


def _as_list(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


class LogtoApplication(pulumi.dynamic.Resource, module="logto", name="Application"):
    """An OIDC application in Logto, with its client id and usable client secret (a Pulumi secret)."""

    app_id: pulumi.Output[str]
    client_id: pulumi.Output[str]
    client_secret: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        connection: LogtoConnectionArgs,
        name: pulumi.Input[str],
        redirect_uris: pulumi.Input[Sequence[pulumi.Input[str]]],
        post_sign_out_redirect_uris: pulumi.Input[Sequence[pulumi.Input[str]]],
        cors_allowed_origins: pulumi.Input[Sequence[pulumi.Input[str]]],
        description: pulumi.Input[str] | None = None,
        app_type: pulumi.Input[str] = "Traditional",
        adopt_id: pulumi.Input[str] | None = None,
        manage_default_secret: bool = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **connection.to_props(),
            **ownership_props(resource_name),
            "name": name,
            "description": description,
            "app_type": app_type,
            "redirect_uris": _as_list(redirect_uris),
            "post_sign_out_redirect_uris": _as_list(post_sign_out_redirect_uris),
            "cors_allowed_origins": _as_list(cors_allowed_origins),
            "adopt_id": adopt_id,
            "manage_default_secret": manage_default_secret,
            "app_id": None,
            "client_id": None,
            "client_secret": None,
        }
        super().__init__(LogtoApplicationProvider(), resource_name, props, secret_outputs_opts(opts, SECRET_OUTPUTS))
        # additional_secret_outputs is not applied under mocks; this keeps secretness visible there too.
        self.client_secret = pulumi.Output.secret(self.client_secret)
