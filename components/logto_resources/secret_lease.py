"""``LobeChatSecretLease``: which client secret and webhook key generation the running LobeChat holds.

It is declared after the LobeChat container (its ``container_id`` is an input), so it is created or
updated only once a LobeChat holding those secrets is healthy. It does two things:

1. It writes the held names into the application's ``customData.lobechatLogtoHeld`` in Logto. The
   delete of a ``LogtoApplicationSecret`` or ``LogtoWebhook`` that is still held is skipped (the
   object is kept and swept later). That matters after a run that created the new secret but failed
   before the new container was healthy: Pulumi deletes pending-delete resources *first* in the next
   run, while the old container, the only one running, still holds the old secret.
2. It sweeps: every managed client secret (``Default secret``, ``lobechat-<N>``) and every hook of
   this stack's webhook that no running LobeChat can hold is deleted. When the container was
   replaced in this run the previous container is still running until the end of the run (Pulumi
   deletes replaced resources last), so the previous names are kept and swept by the next run.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.logto_api import LogtoAuthenticationError, LogtoNotFoundError, ManagementApi

from . import listing_cache
from .connection import (
    CONNECTION_KEYS,
    MANAGED_BY,
    InputProblems,
    LogtoConnectionArgs,
    api_from_props,
    connection_outputs,
    differs,
    is_unknown,
    secret_outputs_opts,
)

log = logging.getLogger(__name__)

HELD_KEY = "lobechatLogtoHeld"
"""Key of the application's ``customData`` that names what the running LobeChat holds."""
MANAGED_SECRET = re.compile(r"^(Default secret|lobechat-\d+)$")
INPUT_KEYS = ("application_id", "client_secret_name", "key_generation", "hook_marker", "container_id",
              "m2m_application_id", "m2m_generation")


def is_managed_secret(name: Any) -> bool:
    """A client secret that rotation owns: ``Default secret`` (generation 0) or ``lobechat-<N>``."""
    return isinstance(name, str) and bool(MANAGED_SECRET.match(name))


def hook_generation(headers: Mapping[str, Any], marker_prefix: str) -> int | None:
    """The key generation of a hook whose marker header starts with ``marker_prefix`` (else None)."""
    value = next((v for k, v in headers.items() if str(k).lower() == "x-managed-by"), None)
    if not isinstance(value, str):
        return None
    if value == marker_prefix:
        return 0
    if value.startswith(marker_prefix + "@k") and value[len(marker_prefix) + 2:].isdigit():
        return int(value[len(marker_prefix) + 2:])
    return None


def held(api: ManagementApi, application_id: str) -> dict[str, Any]:
    """What the running LobeChat holds, as written by the lease ({} when unknown or the app is gone)."""
    try:
        app = api.applications.get(application_id)
    except LogtoNotFoundError:
        return {}
    value = (app.get("customData") or {}).get(HELD_KEY)
    return dict(value) if isinstance(value, Mapping) else {}


def held_by_owned_application(api: ManagementApi, props: Mapping[str, Any], resource_name: str) -> dict[str, Any]:
    """What the running LobeChat holds, read from this stack's application ``resource_name`` (found by
    its ownership marker in a fresh listing: one request, and no dependency on the application)."""
    wanted = {"managedBy": MANAGED_BY, "project": props.get("project"), "stack": props.get("stack"),
              "resource": resource_name}
    for app in api.applications.list_all(types=["Traditional"]):
        custom = app.get("customData")
        if isinstance(custom, Mapping) and all(custom.get(k) == v for k, v in wanted.items()):
            value = custom.get(HELD_KEY)
            return dict(value) if isinstance(value, Mapping) else {}
    return {}


def _write_held(api: ManagementApi, application_id: str, value: dict[str, Any] | None) -> None:
    app = api.applications.get(application_id)
    current = app.get("customData") or {}
    if current.get(HELD_KEY) == value and (value is not None or HELD_KEY not in current):
        return  # unchanged (e.g. only the M2M credential moved): no write
    custom = {k: v for k, v in current.items() if k != HELD_KEY}
    if value is not None:
        custom[HELD_KEY] = value
    api.applications.update(application_id, custom_data=custom)
    listing_cache.forget(api, "applications")


def _generation(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _hold_m2m(api: ManagementApi, olds: Mapping[str, Any] | None, props: Mapping[str, Any]) -> None:
    """Record the M2M generation this stage's resources now hold (on the M2M application), and retire
    the older ones whose delete found them still held (a failed run's pending delete ran first)."""
    from .management_credential import HELD_KEY, generation_of, read_held, retire

    m2m_app, generation = props.get("m2m_application_id"), _generation(props.get("m2m_generation"))
    if not m2m_app or generation is None:
        return
    if olds is not None and _generation(olds.get("m2m_generation")) == generation \
            and olds.get("m2m_application_id") == m2m_app:
        return
    custom, held = read_held(api, m2m_app)
    for name in held.get("retire") or []:
        found = generation_of(name)
        if found is not None and found < generation:
            retire(api, m2m_app, str(name))
    api.applications.update(m2m_app, custom_data={**custom, HELD_KEY: {"generation": generation, "retire": []}})


class LobeChatSecretLeaseProvider(ResourceProvider):
    """Dynamic provider for ``LobeChatSecretLease``."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        problems = InputProblems()
        problems.check_connection(news)
        for key in ("application_id", "client_secret_name"):
            value = news.get(key)
            if not is_unknown(value) and (not isinstance(value, str) or not value):
                problems.add(key, "must be a non-empty string")
        return CheckResult(news, problems.failures())

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in (*INPUT_KEYS, *CONNECTION_KEYS) if differs(olds, news, k)]
        # Names kept for a container that was still running last time: sweep them now.
        sweep_pending = bool(olds.get("kept_secrets") or olds.get("kept_key_generations"))
        return DiffResult(changes=bool(changed) or sweep_pending, replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"lease/{props['application_id']}", self._apply(None, props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply(olds, news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, dict(props), {k: props.get(k) for k in (*INPUT_KEYS, *CONNECTION_KEYS)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """The LobeChat holding these is going away: release them, so their own deletes go through.

        A stored M2M credential that Logto refuses (retired by this lease's own last update, if the
        run stopped before the engine recorded it) releases nothing: logged, not an error."""
        try:
            _write_held(api_from_props(props), props["application_id"], None)
        except LogtoNotFoundError:
            pass
        except LogtoAuthenticationError:
            log.info("the stored M2M credential of the secret lease is refused: nothing released")

    def _apply(self, olds: Mapping[str, Any] | None, props: Mapping[str, Any]) -> dict[str, Any]:
        api = api_from_props(props)
        app_id = props["application_id"]
        name = props["client_secret_name"]
        generation = _generation(props.get("key_generation"))
        # A new container in this run: the one it replaces runs until the end of the run.
        previous_running = olds is not None and olds.get("container_id") != props.get("container_id")
        keep_secrets = {name}
        keep_generations = {generation}
        if previous_running and olds is not None:
            keep_secrets.add(olds.get("client_secret_name"))
            keep_generations.add(_generation(olds.get("key_generation")))
        _write_held(api, app_id, {"clientSecret": name, "keyGeneration": generation})
        _hold_m2m(api, olds, props)
        for secret in api.applications.list_secrets(app_id):
            if is_managed_secret(secret.get("name")) and secret.get("name") not in keep_secrets:
                try:
                    api.applications.delete_secret(app_id, secret["name"])
                except LogtoNotFoundError:
                    pass
        marker_prefix = props.get("hook_marker")
        if generation is not None and marker_prefix:
            for hook in api.hooks.list_all():
                found = hook_generation((hook.get("config") or {}).get("headers") or {}, marker_prefix)
                if found is not None and found not in keep_generations:
                    try:
                        api.hooks.delete(hook["id"])
                    except LogtoNotFoundError:
                        pass
                    listing_cache.forget(api, "hooks")
        return {
            **connection_outputs(props),
            **{k: props.get(k) for k in INPUT_KEYS},
            "kept_secrets": sorted(str(s) for s in keep_secrets - {name} if s),
            "kept_key_generations": sorted(g for g in keep_generations - {generation} if g is not None),
        }


class LobeChatSecretLease(pulumi.dynamic.Resource, module="logto", name="SecretLease"):
    """What the running LobeChat holds (see the module docstring); declare it after the container."""

    def __init__(
        self,
        resource_name: str,
        *,
        connection: LogtoConnectionArgs,
        application_id: pulumi.Input[str],
        client_secret_name: pulumi.Input[str],
        container_id: pulumi.Input[str],
        key_generation: pulumi.Input[int] | None = None,
        hook_marker: pulumi.Input[str] | None = None,
        m2m_application_id: pulumi.Input[str | None] | None = None,
        m2m_generation: pulumi.Input[int | None] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **connection.to_props(),
            "application_id": application_id,
            "client_secret_name": client_secret_name,
            "key_generation": key_generation,
            "hook_marker": hook_marker,
            "container_id": container_id,
            **({"m2m_application_id": m2m_application_id, "m2m_generation": m2m_generation}
               if m2m_application_id is not None else {}),
            "kept_secrets": None,
            "kept_key_generations": None,
        }
        super().__init__(LobeChatSecretLeaseProvider(), resource_name, props, secret_outputs_opts(opts, ()))
