"""``LogtoWebhook``: a Logto webhook (e.g. ``User.Data.Updated`` -> LobeChat), with its signing key.

Ownership marker: hooks have no ``customData``, so the marker rides in the hook's own configuration
as one extra delivery header, ``x-managed-by: lobechat-logto/<project>/<stack>/<resource>``. It is
part of the POST that creates the hook (so a hook exists with its marker or not at all), it is
exact (name + URL would also match a hand-made hook pointing at the same receiver), and it is
harmless: receivers ignore unknown headers. ``create`` looks for it before creating and after a
create whose response was lost, so re-running ``pulumi up`` never leaves a second hook. The header
is hidden from the ``headers`` output and may not be set by the user.

Key rotation: a hook has exactly one signing key, and ``PATCH .../signing-key`` kills the old one at
once, so a new key means a new hook. ``key_generation`` (0 by default) names the key's generation:
a new value *replaces* the hook, create-before-delete, so both hooks deliver while LobeChat is rolled
onto the new key, and the old hook is deleted last. The marker of a generation above 0 ends in
``@k<generation>`` so that the two hooks of an overlap are told apart (a lost create adopts its own
generation's hook, never the old one).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.logto_api import (
    LogtoInputError,
    LogtoNotFoundError,
    ManagementApi,
    validate_events,
    validate_headers,
    validate_name,
    validate_uri,
)

from . import listing_cache
from .secret_lease import held_by_owned_application
from .connection import (
    CONNECTION_KEYS,
    MANAGED_BY,
    MARKER_KEYS,
    InputProblems,
    create_without_duplicate,
    read_inputs,
    refuse_foreign_owner,
    LogtoConnectionArgs,
    api_from_props,
    connection_outputs,
    differs,
    is_unknown,
    ownership_props,
    secret_outputs_opts,
)

log = logging.getLogger(__name__)

MARKER_HEADER = "x-managed-by"
DESIRED_KEYS = ("name", "url", "events", "headers", "enabled")
INPUT_KEYS = (*DESIRED_KEYS, "adopt_id", "key_generation", *MARKER_KEYS, *CONNECTION_KEYS)
SECRET_OUTPUTS = ("signing_key",)
LISTING_KIND = "hooks"
"""Kind of this resource's listing in ``listing_cache``."""


def key_generation(props: Mapping[str, Any]) -> int:
    """The hook's key generation (0 when unset)."""
    value = props.get("key_generation")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def marker_header_value(props: Mapping[str, Any]) -> str:
    """``lobechat-logto/<project>/<stack>/<resource>[@k<generation>]`` for this hook."""
    generation = key_generation(props)
    suffix = f"@k{generation}" if generation else ""
    return f"{MANAGED_BY}/{props.get('project') or ''}/{props.get('stack') or ''}/{props.get('resource_name') or ''}{suffix}"


def _marker_props(headers: Mapping[str, Any]) -> dict[str, Any]:
    value = next((v for k, v in headers.items() if k.lower() == MARKER_HEADER), None)
    if isinstance(value, str):
        parts = value.split("/", 3)
        if len(parts) == 4 and parts[0] == MANAGED_BY:
            resource, _, generation = parts[3].rpartition("@k")
            if resource and generation.isdigit():
                return {"project": parts[1], "stack": parts[2], "resource_name": resource,
                        "key_generation": int(generation)}
            return {"project": parts[1], "stack": parts[2], "resource_name": parts[3], "key_generation": 0}
    return {"project": "", "stack": "", "resource_name": ""}


def _user_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (headers or {}).items() if k.lower() != MARKER_HEADER}


def _wire_headers(props: Mapping[str, Any]) -> dict[str, str]:
    return {**(props.get("headers") or {}), MARKER_HEADER: marker_header_value(props)}


def _outputs(props: Mapping[str, Any], hook: Mapping[str, Any]) -> dict[str, Any]:
    config = hook.get("config") or {}
    headers = config.get("headers") or {}
    return {
        **connection_outputs(props),
        "adopt_id": props.get("adopt_id"),
        "lease_application": props.get("lease_application"),
        "name": hook.get("name"),
        "url": config.get("url"),
        "events": list(hook.get("events") or []),
        "headers": _user_headers(headers),
        "enabled": hook.get("enabled"),
        **_marker_props(headers),
        "hook_id": hook["id"],
        "signing_key": hook.get("signingKey"),
    }


def _problems(props: Mapping[str, Any]) -> InputProblems:
    problems = InputProblems()
    problems.check_connection(props)
    problems.run("name", props.get("name"), validate_name, "name")
    problems.run("url", props.get("url"), validate_uri, "url")
    problems.run("events", props.get("events"), validate_events)
    headers = props.get("headers")
    problems.run("headers", headers, validate_headers)
    if isinstance(headers, Mapping) and any(str(k).lower() == MARKER_HEADER for k in headers):
        problems.add("headers", f"{MARKER_HEADER!r} is reserved for the ownership marker")
    enabled = props.get("enabled")
    if not is_unknown(enabled) and not isinstance(enabled, bool):
        problems.add("enabled", "must be true or false")
    adopt_id = props.get("adopt_id")
    if adopt_id is not None and not is_unknown(adopt_id) and (not isinstance(adopt_id, str) or not adopt_id):
        problems.add("adopt_id", "must be a hook id or None")
    generation = props.get("key_generation")
    if generation is not None and not is_unknown(generation) and (
        isinstance(generation, bool) or not isinstance(generation, (int, float)) or generation < 0
        or int(generation) != generation
    ):
        problems.add("key_generation", "must be a whole number from 0")
    return problems


def _events_differ(olds: Mapping[str, Any], news: Mapping[str, Any]) -> bool:
    new = news.get("events")
    if is_unknown(new):
        return True
    return sorted(olds.get("events") or []) != sorted(new or [])


class LogtoWebhookProvider(ResourceProvider):
    """Dynamic provider for ``LogtoWebhook``. Stateless: every method builds its own client."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate inputs locally (empty event list, bad URL, reserved header) before any request."""
        return CheckResult(news, _problems(news).failures())

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Everything updates in place (Logto's PATCH replaces ``config`` wholesale); a new adopt_id or
        key generation replaces (create-before-delete: the old hook delivers until it is deleted last)."""
        adopt_id = news.get("adopt_id")
        replaces = ["adopt_id"] if adopt_id and (is_unknown(adopt_id) or adopt_id != id_) else []
        if is_unknown(news.get("key_generation")) or key_generation(olds) != key_generation(news):
            replaces.append("key_generation")
        changed = [
            k for k in ("name", "url", "headers", "enabled", *MARKER_KEYS, *CONNECTION_KEYS) if differs(olds, news, k)
        ]
        if _events_differ(olds, news):
            changed.append("events")
        return DiffResult(changes=bool(replaces or changed), replaces=replaces)

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Adopt ``adopt_id``, or take over this stack's own hook, or create one (duplicate-safe)."""
        _problems(props).raise_first()
        api = api_from_props(props)
        adopt_id = props.get("adopt_id")
        if adopt_id:
            try:
                live = api.hooks.get(adopt_id)
                owner = _marker_props((live.get("config") or {}).get("headers") or {})
                refuse_foreign_owner("adopt_id", f"hook {adopt_id}", owner, props)
                hook = _apply(api, adopt_id, props)
            except LogtoNotFoundError:
                raise LogtoInputError(
                    "adopt_id",
                    f"there is no hook {adopt_id!r} in Logto to adopt",
                    hint="Copy the webhook id from the Logto console, or leave adopt_id unset to create one.",
                ) from None
        else:
            hook = _take_over_or_create(api, props)
        return CreateResult(hook["id"], _outputs(props, hook))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Live state (so refresh shows drift); a hook deleted in Logto reads as gone."""
        try:
            hook = api_from_props(props).hooks.get(id_)
        except LogtoNotFoundError:
            return ReadResult("", {})
        outs = _outputs(props, hook)
        return ReadResult(id_, outs, read_inputs(outs, INPUT_KEYS))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """PATCH the whole hook when its desired state changed; credentials alone change nothing in Logto."""
        api = api_from_props(news)
        desired_changed = _events_differ(olds, news) or any(
            differs(olds, news, k) for k in ("name", "url", "headers", "enabled", *MARKER_KEYS)
        )
        hook = _apply(api, id_, news) if desired_changed else api.hooks.get(id_)
        return UpdateResult({**olds, **news, **_outputs(news, hook)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Delete the hook; already gone counts as done. A hook whose key the running LobeChat still
        holds (the ``LobeChatSecretLease`` on this stack's application ``lease_application``, a
        resource name) is kept for the lease to sweep."""
        api = api_from_props(props)
        lease_app = props.get("lease_application")
        if lease_app and held_by_owned_application(api, props, lease_app).get("keyGeneration") == key_generation(props):
            log.info("hook %s delivers to the running LobeChat's key; left for the lease to sweep", id_)
            return
        try:
            api.hooks.delete(id_)
        except LogtoNotFoundError:
            pass
        finally:
            listing_cache.forget(api, LISTING_KIND)


def _apply(api: ManagementApi, hook_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """PATCH the complete desired state (one request; raises LogtoNotFoundError if the hook is gone)."""
    hook = api.hooks.update(
        hook_id,
        name=props["name"],
        events=_events(props),
        url=props["url"],
        headers=_wire_headers(props),
        enabled=props.get("enabled", True),
    )
    listing_cache.remember_written(api, LISTING_KIND, hook)
    return hook


def _events(props: Mapping[str, Any]) -> list[str]:
    return list(props.get("events") or [])


def _find_owned(api: ManagementApi, props: Mapping[str, Any], *, fresh: bool = False) -> dict[str, Any] | None:
    """This stack's hook for this resource (by marker header), oldest first if several.

    The hooks are listed once per provider process (``listing_cache``); ``fresh`` lists them from
    Logto again (after a create whose response was lost).
    """
    wanted = marker_header_value(props)
    hooks = listing_cache.listing(api, LISTING_KIND, api.hooks.list_all, fresh=fresh)
    matches = [
        hook
        for hook in hooks
        if any(
            k.lower() == MARKER_HEADER and v == wanted
            for k, v in ((hook.get("config") or {}).get("headers") or {}).items()
        )
    ]
    if not matches:
        return None
    matches.sort(key=lambda hook: hook.get("createdAt") or 0)
    if len(matches) > 1:
        log.warning("%d Logto hooks carry the marker %s; using the oldest, %s", len(matches), wanted, matches[0]["id"])
    return matches[0]


def _in_desired_state(live: Mapping[str, Any], props: Mapping[str, Any]) -> bool:
    """True when a found hook already is what ``props`` asks for (then no PATCH is sent)."""
    config = live.get("config") or {}
    return (
        live.get("name") == props.get("name")
        and sorted(live.get("events") or []) == sorted(_events(props))
        and config.get("url") == props.get("url")
        and dict(config.get("headers") or {}) == _wire_headers(props)
        and live.get("enabled") == props.get("enabled", True)
        and bool(live.get("signingKey"))
    )


def _take_over_or_create(api: ManagementApi, props: Mapping[str, Any]) -> dict[str, Any]:
    """This stack's hook (found by marker, brought to the desired state) or a new one.

    The found hook comes from the listing (signing key included), so taking it over costs nothing
    when it already is in the desired state, else one PATCH. If it vanished since the listing, the
    lookup is repeated once against a fresh listing.
    """
    for fresh in (False, True):
        owned = _find_owned(api, props, fresh=fresh)
        if owned is None:
            return _create_without_duplicate(api, props)
        if _in_desired_state(owned, props):
            return owned
        try:
            return _apply(api, owned["id"], props)
        except LogtoNotFoundError:
            listing_cache.forget(api, LISTING_KIND)
            if fresh:
                raise
    raise AssertionError("unreachable")


def _create_without_duplicate(api: ManagementApi, props: Mapping[str, Any]) -> dict[str, Any]:
    """POST the hook; a lost response is resolved by marker (see ``create_without_duplicate``).

    The created hook is written through to the process's listing; after a failure the listing is
    dropped and the lookup lists afresh.
    """
    try:
        hook = _post_without_duplicate(api, props)
    except Exception:
        listing_cache.forget(api, LISTING_KIND)
        raise
    listing_cache.remember_written(api, LISTING_KIND, hook)
    return hook


def _post_without_duplicate(api: ManagementApi, props: Mapping[str, Any]) -> dict[str, Any]:
    return create_without_duplicate(
        lambda: api.hooks.create(
            name=props["name"],
            url=props["url"],
            events=_events(props),
            headers=_wire_headers(props),
            enabled=props.get("enabled", True),
        ),
        lambda: _find_owned(api, props, fresh=True),
        f"hook {props.get('name')!r}",
    )


class LogtoWebhook(pulumi.dynamic.Resource, module="logto", name="Webhook"):
    """A Logto webhook; ``signing_key`` (server-generated) is a Pulumi secret."""

    hook_id: pulumi.Output[str]
    signing_key: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        connection: LogtoConnectionArgs,
        name: pulumi.Input[str],
        url: pulumi.Input[str],
        events: pulumi.Input[Iterable[pulumi.Input[str]]] = ("User.Data.Updated",),
        headers: pulumi.Input[Mapping[str, pulumi.Input[str]]] | None = None,
        enabled: pulumi.Input[bool] = True,
        adopt_id: pulumi.Input[str] | None = None,
        key_generation: pulumi.Input[int] | None = None,
        lease_application: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **connection.to_props(),
            **ownership_props(resource_name),
            "name": name,
            "url": url,
            "events": list(events) if isinstance(events, (list, tuple)) else events,
            "headers": dict(headers) if isinstance(headers, Mapping) else (headers if headers is not None else {}),
            "enabled": enabled,
            "adopt_id": adopt_id,
            "key_generation": key_generation,
            "lease_application": lease_application,
            "hook_id": None,
            "signing_key": None,
        }
        super().__init__(LogtoWebhookProvider(), resource_name, props, secret_outputs_opts(opts, SECRET_OUTPUTS))
        # additional_secret_outputs is not applied under mocks; this keeps secretness visible there too.
        self.signing_key = pulumi.Output.secret(self.signing_key)
