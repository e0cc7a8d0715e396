"""``LogtoManagementCredential``: the M2M credential every Logto resource of the stage manages Logto with.

One resource per *generation* of the bootstrap M2M secret (``rotation.maxAge.m2mSecret`` /
``rotation.rotateNow.m2mSecret``). Generation 0 is the legacy ``secret`` column the bootstrap SQL
wrote before rotation existed; generation N is the named secret ``m2m-N`` the bootstrap SQL inserts
into ``application_secrets`` (Logto accepts the legacy column and every unexpired named secret at once).

Every other Logto resource takes its connection (client id and secret) from this resource's outputs,
so when the generation changes the engine:

1. creates the new credential (create-before-delete): ``create`` checks that Logto accepts it at the
   token endpoint (a bounded wait while Logto picks the new row up) and sweeps leftovers of
   generations before the previous one;
2. updates every dependent in place with the new connection (their ``update`` uses the new inputs);
3. at the end of the run, deletes replaced dependents first (with the old, still valid, credential
   stored in their state), and this resource's previous generation last: its ``delete`` retires its
   *own* secret with its *own* credential (``DELETE .../legacy-secret`` or ``.../secrets/m2m-N``).

After a failed run the engine runs the pending delete of the old generation *first* in the next run,
while resources the failed run never reached (the ``LobeChatSecretLease``, declared after LobeChat)
still hold the old credential in their state. So the lease records the generation it holds in the
M2M application's ``customData.lobechatLogtoM2m`` (``generation``); an old generation that is still
held is not retired by its delete but marked (``retire``), and the lease retires it once it moved on.
No secret is ever logged; an own credential already rejected or a secret already gone counts as done.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Mapping

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.clock import now
from components.logto_api import LogtoAuthenticationError, LogtoError, LogtoNotFoundError, ManagementApi

from .connection import (
    CONNECTION_KEYS,
    TIMEOUT_KEY,
    InputProblems,
    LogtoConnectionArgs,
    api_from_props,
    connection_outputs,
    differs,
    is_unknown,
    secret_outputs_opts,
)

log = logging.getLogger(__name__)

SECRET_PREFIX = "m2m-"
HELD_KEY = "lobechatLogtoM2m"
"""Key of the M2M application's ``customData``: ``{"generation": N, "retire": [names]}``."""
LEGACY = "legacy"
"""Name used in ``retire`` (and logs) for generation 0, the legacy ``secret`` column."""
VERIFY_TIMEOUT_S = 60.0
VERIFY_INTERVAL_S = 0.5
_MANAGED = re.compile(r"^m2m-(\d{1,9})$")
INPUT_KEYS = ("generation", "secret_name")
REPLACING_KEYS = ("generation", "secret_name", "logto_client_id", "logto_client_secret")

_sleep = time.sleep
_monotonic = time.monotonic


def m2m_secret_name(generation: Any) -> str | None:
    """None for generation 0 (the legacy column), ``m2m-<N>`` after."""
    number = int(generation or 0)
    return None if number == 0 else f"{SECRET_PREFIX}{number}"


def generation_of(name: Any) -> int | None:
    """The generation of a managed name (``legacy`` -> 0, ``m2m-N`` -> N), else None."""
    if name == LEGACY:
        return 0
    match = _MANAGED.match(name) if isinstance(name, str) else None
    return int(match.group(1)) if match else None


def retire(api: ManagementApi, app_id: str, name: str) -> bool:
    """Retire one managed secret of the M2M application; True when it was there. Gone counts as done."""
    try:
        if name == LEGACY:
            api.applications.delete_legacy_secret(app_id)
        else:
            api.applications.delete_secret(app_id, name)
    except LogtoNotFoundError:
        return False
    except LogtoError as exc:
        if exc.status == 400 and exc.code == "application.no_legacy_secret_found":
            return False
        raise
    log.info("retired M2M secret %s of application %s", name, app_id)
    return True


def read_held(api: ManagementApi, app_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(customData, held)`` of the M2M application (held {} when the lease never wrote it)."""
    app = api.applications.get(app_id)
    custom = dict(app.get("customData") or {})
    value = custom.get(HELD_KEY)
    return custom, (dict(value) if isinstance(value, Mapping) else {})


def _held_generation(held: Mapping[str, Any]) -> int:
    value = held.get("generation")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _own_name(props: Mapping[str, Any]) -> str:
    return props.get("secret_name") or LEGACY


def _problems(props: Mapping[str, Any]) -> InputProblems:
    problems = InputProblems()
    problems.check_connection(props)
    generation, name = props.get("generation"), props.get("secret_name")
    if not is_unknown(generation):
        if isinstance(generation, bool) or not isinstance(generation, (int, float)) or generation < 0 \
                or int(generation) != generation:
            problems.add("generation", "must be a whole number >= 0")
        elif not is_unknown(name) and (name or None) != m2m_secret_name(generation):
            problems.add("secret_name", f"must be {m2m_secret_name(generation)!r} for generation {int(generation)}")
    return problems


def _outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    generation = props.get("generation")
    return {
        **connection_outputs(props),
        "generation": int(generation) if isinstance(generation, (int, float)) else generation,
        "secret_name": props.get("secret_name") or None,
    }


class LogtoManagementCredentialProvider(ResourceProvider):
    """Dynamic provider for ``LogtoManagementCredential``."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, _problems(news).failures())

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """A new generation or secret replaces (create-before-delete); a moved endpoint updates in place."""
        replaces = [k for k in REPLACING_KEYS if differs(olds, news, k)]
        changed = [k for k in CONNECTION_KEYS if differs(olds, news, k)]
        return DiffResult(changes=bool(replaces or changed), replaces=replaces, delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        _problems(props).raise_first()
        api = api_from_props(props)
        _verify(api, props)
        generation = int(props["generation"])
        if generation >= 2:  # generation 1 has nothing older than its predecessor (the legacy column)
            _sweep(api, props["logto_client_id"], generation)
        return CreateResult(f"{props['logto_client_id']}/{_own_name(props)}", _outputs(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        _verify(api_from_props(news), news)
        return UpdateResult(_outputs(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # What Logto accepts is checked by create; a refresh keeps the generation as stored.
        return ReadResult(id_, dict(props), {k: props.get(k) for k in (*INPUT_KEYS, *CONNECTION_KEYS)})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        """Retire this generation's own secret with its own credential, unless the lease still holds it."""
        api = api_from_props(props)
        app_id, name = props["logto_client_id"], _own_name(props)
        generation = int(props.get("generation") or 0)
        try:
            custom, held = read_held(api, app_id)
        except LogtoAuthenticationError:
            log.info("M2M secret %s of application %s is already refused: nothing to retire", name, app_id)
            return
        except LogtoNotFoundError:
            return
        if _held_generation(held) == generation:
            # Pending delete of a failed run: the lease (declared after LobeChat) still holds this one.
            marked = sorted({*[str(n) for n in held.get("retire") or []], name})
            api.applications.update(app_id, custom_data={**custom, HELD_KEY: {**held, "retire": marked}})
            log.info("M2M secret %s is still held by the secret lease; left for the lease to retire", name)
            return
        retire(api, app_id, name)


def _verify(api: ManagementApi, props: Mapping[str, Any]) -> None:
    """Logto accepts this credential at its token endpoint (bounded wait while it picks up the new row)."""
    deadline = _monotonic() + VERIFY_TIMEOUT_S
    while True:
        try:
            api.transport.access_token()
            return
        except LogtoAuthenticationError as exc:
            if _monotonic() >= deadline:
                raise LogtoAuthenticationError(
                    f"Logto still refuses the M2M secret {_own_name(props)} of application "
                    f"{props.get('logto_client_id')} after {VERIFY_TIMEOUT_S:.0f} s (step: verify the new "
                    "Management API credential)",
                    method="POST", url=exc.url, status=exc.status, code=exc.code,
                    hint="The bootstrap container wrote it into Logto's database: check its logs and that it "
                         "ran against the database this Logto uses. The stage keeps working on the previous "
                         "credential; run `pulumi up` again once fixed.",
                ) from None
            _sleep(VERIFY_INTERVAL_S)


def _sweep(api: ManagementApi, app_id: str, generation: int) -> None:
    """Retire managed secrets older than the previous generation (left over by a lost state or a lost
    delete), and older ones that expired (a stage not deployed for longer than maxAge + expiryGrace:
    their own delete is refused, so it cannot retire them)."""
    at_ms = now() * 1000
    for secret in api.applications.list_secrets(app_id):
        found = generation_of(secret.get("name"))
        expires = secret.get("expiresAt")
        expired = isinstance(expires, (int, float)) and expires <= at_ms
        if found is not None and found < generation and (found < generation - 1 or expired):
            retire(api, app_id, secret["name"])
    if generation == 2:
        # The legacy column is generation 0's own; it can only be left over once (e.g. a lost state):
        # checked at the first generation after its successor, not at every rotation (a 400 when gone).
        retire(api, app_id, LEGACY)


class LogtoManagementCredential(pulumi.dynamic.Resource, module="logto", name="ManagementCredential"):
    """The M2M credential of one generation; ``logto_client_id`` / ``logto_client_secret`` feed every connection."""

    logto_client_id: pulumi.Output[str]
    logto_client_secret: pulumi.Output[str]
    generation: pulumi.Output[int]
    secret_name: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        *,
        connection: LogtoConnectionArgs,
        generation: pulumi.Input[int],
        secret_name: pulumi.Input[str | None],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {**connection.to_props(), "generation": generation, "secret_name": secret_name}
        super().__init__(LogtoManagementCredentialProvider(), resource_name, props, secret_outputs_opts(opts, ()))
        self.logto_client_secret = pulumi.Output.secret(self.logto_client_secret)

    def connection(self, endpoint: pulumi.Input[str], resource: pulumi.Input[str]) -> LogtoConnectionArgs:
        """The connection every other Logto resource uses: this generation's client id and secret."""
        return LogtoConnectionArgs(endpoint=endpoint, client_id=self.logto_client_id,
                                   client_secret=self.logto_client_secret, resource=resource)


__all__ = ["HELD_KEY", "LogtoManagementCredential", "LogtoManagementCredentialProvider", "TIMEOUT_KEY",
           "m2m_secret_name", "generation_of", "retire", "read_held"]
