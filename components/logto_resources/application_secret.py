"""``LogtoApplicationSecret``: one named secret of a Logto application (its value is a Pulumi secret).

All unexpired named secrets of an application authenticate at once, which is what makes rotation
without downtime possible: create the new one, roll it out, delete the old one.

The secret's name is unique within its application, so the name is its identity: a create that
finds the name taken (422 ``application.secret_name_exists``, e.g. after a lost response) takes the
existing secret over instead of failing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Mapping

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from components.logto_api import LogtoError, LogtoInputError, LogtoNotFoundError, ManagementApi, validate_name

from .secret_lease import held
from .connection import (
    CONNECTION_KEYS,
    InputProblems,
    read_inputs,
    LogtoConnectionArgs,
    api_from_props,
    connection_outputs,
    differs,
    is_unknown,
    secret_outputs_opts,
)

log = logging.getLogger(__name__)

INPUT_KEYS = ("application_id", "secret_name", "expires_at", *CONNECTION_KEYS)
SECRET_OUTPUTS = ("value",)


def expires_at_millis(value: Any) -> int | None:
    """Normalise an expiry to epoch milliseconds: None, a number of ms, or an ISO 8601 timestamp."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise LogtoInputError("expires_at", "must be epoch milliseconds or an ISO 8601 timestamp")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise LogtoInputError("expires_at", f"{value!r} is not an ISO 8601 timestamp") from None
        if parsed.tzinfo is None:
            raise LogtoInputError("expires_at", f"{value!r} has no time zone (add Z or +00:00)")
        return int(parsed.timestamp() * 1000)
    raise LogtoInputError("expires_at", "must be epoch milliseconds or an ISO 8601 timestamp")


def _secret_id(application_id: str, secret_name: str) -> str:
    return f"{application_id}/{secret_name}"


def _outputs(props: Mapping[str, Any], secret: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **connection_outputs(props),
        "application_id": props.get("application_id"),
        "secret_name": secret.get("name"),
        "expires_at": secret.get("expiresAt"),
        "value": secret.get("value"),
    }


def _problems(props: Mapping[str, Any]) -> InputProblems:
    problems = InputProblems()
    problems.check_connection(props)
    problems.run("application_id", props.get("application_id"), validate_name, "application_id")
    problems.run("secret_name", props.get("secret_name"), validate_name, "secret_name")
    problems.run("expires_at", props.get("expires_at"), expires_at_millis)
    return problems


def _find(api: ManagementApi, application_id: str, name: str) -> dict[str, Any] | None:
    for secret in api.applications.list_secrets(application_id):
        if secret.get("name") == name:
            return secret
    return None


class LogtoApplicationSecretProvider(ResourceProvider):
    """Dynamic provider for ``LogtoApplicationSecret``. Stateless: every method builds its own client."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validate inputs and normalise ``expires_at`` to epoch milliseconds."""
        problems = _problems(news)
        inputs = dict(news)
        if not problems.items and not is_unknown(news.get("expires_at")):
            inputs["expires_at"] = expires_at_millis(news.get("expires_at"))
        return CheckResult(inputs, problems.failures())

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        """Any change of application, name or expiry replaces; credentials alone update in place."""
        replaces = [k for k in ("application_id", "secret_name", "expires_at") if differs(olds, news, k)]
        # Same application and name: the old secret must go first, or the new one's name is taken.
        same_identity = not differs(olds, news, "application_id") and not differs(olds, news, "secret_name")
        changed = [k for k in CONNECTION_KEYS if differs(olds, news, k)]
        return DiffResult(
            changes=bool(replaces or changed),
            replaces=replaces,
            delete_before_replace=bool(replaces) and same_identity,
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        """Create the named secret; if the name already exists (a lost earlier create), take it over."""
        _problems(props).raise_first()
        api = api_from_props(props)
        application_id, name = props["application_id"], props["secret_name"]
        expires_at = expires_at_millis(props.get("expires_at"))
        secret: dict[str, Any] | None = None
        for attempt in (1, 2):
            try:
                secret = api.applications.create_secret(application_id, name, expires_at=expires_at)
                break
            except LogtoError as exc:
                name_taken = exc.status == 422 and exc.code == "application.secret_name_exists"
                if not (name_taken or exc.may_have_reached_server):
                    raise
                secret = _find(api, application_id, name)
                if secret is not None or attempt == 2:
                    break
        if secret is None:
            raise LogtoNotFoundError(
                f"secret {name!r} of application {application_id} vanished while it was being created.",
                hint="Run the update again.",
            )
        return CreateResult(_secret_id(application_id, name), _outputs(props, secret))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """Live value and expiry; a deleted secret (or application) reads as gone."""
        api = api_from_props(props)
        try:
            secret = _find(api, props["application_id"], props["secret_name"])
        except LogtoNotFoundError:
            secret = None
        if secret is None:
            return ReadResult("", {})
        outs = _outputs(props, secret)
        return ReadResult(id_, outs, read_inputs(outs, INPUT_KEYS))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Only the credentials changed (everything else replaces): re-read with the new ones."""
        api = api_from_props(news)
        secret = _find(api, news["application_id"], news["secret_name"])
        if secret is None:
            raise LogtoNotFoundError(
                f"secret {news['secret_name']!r} of application {news['application_id']} no longer exists.",
                hint="Run `pulumi refresh`, then `pulumi up` to create it again.",
            )
        return UpdateResult({**olds, **news, **_outputs(news, secret)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Delete the secret; already gone (or its application gone) counts as done.

        A secret that the running LobeChat still holds (``LobeChatSecretLease``) is kept: that happens
        when a run failed between creating its successor and rolling LobeChat onto it, and Pulumi
        deletes pending deletes first in the next run. The lease sweeps it once nothing holds it.
        """
        api = api_from_props(props)
        if held(api, props["application_id"]).get("clientSecret") == props["secret_name"]:
            log.info("secret %r is still held by the running LobeChat; left for the lease to sweep", props["secret_name"])
            return
        try:
            api.applications.delete_secret(props["application_id"], props["secret_name"])
        except LogtoNotFoundError:
            pass


class LogtoApplicationSecret(pulumi.dynamic.Resource, module="logto", name="ApplicationSecret"):
    """One named secret of a Logto application; ``value`` is a Pulumi secret."""

    value: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        connection: LogtoConnectionArgs,
        application_id: pulumi.Input[str],
        secret_name: pulumi.Input[str],
        expires_at: pulumi.Input[int] | pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **connection.to_props(),
            "application_id": application_id,
            "secret_name": secret_name,
            "expires_at": expires_at,
            "value": None,
        }
        super().__init__(
            LogtoApplicationSecretProvider(), resource_name, props, secret_outputs_opts(opts, SECRET_OUTPUTS)
        )
        # additional_secret_outputs is not applied under mocks; this keeps secretness visible there too.
        self.value = pulumi.Output.secret(self.value)
