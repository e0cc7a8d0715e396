"""How the Logto resources reach the Management API, and what they share: inputs, checks, markers.

The connection travels as ordinary (secret) resource inputs, flattened into ``logto_*`` properties,
and the providers build a ``ManagementApi`` from them in every method. Nothing about the connection
is stored on a provider object, so nothing of it is pickled into the serialized provider; the
M2M secret only lives in the (encrypted) resource inputs and outputs.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping

import pulumi
from pulumi.dynamic import CheckFailure
from pulumi.runtime import rpc

from components.logto_api import (
    SELF_HOSTED_RESOURCE,
    LogtoConnection,
    LogtoError,
    LogtoInputError,
    LogtoTimeoutError,
    ManagementApi,
)

log = logging.getLogger(__name__)

MANAGED_BY = "lobechat-logto"
"""Value of the ownership marker's ``managedBy`` key (the Pulumi project family that owns an object)."""

CONNECTION_KEYS = ("logto_endpoint", "logto_client_id", "logto_client_secret", "logto_resource")
MARKER_KEYS = ("project", "stack", "resource_name")
CONNECTION_SECRET_OUTPUTS = ("logto_client_secret",)
READY_TIMEOUT_S = 180.0
"""How long a provider call waits for a Logto that is not ready (refused, 502/503/504, /api/status down)."""
TIMEOUT_KEY = "logto_timeout"
"""Optional per-request timeout in seconds; client-side tuning only, so not part of any diff."""


class LogtoConnectionArgs:
    """Pulumi inputs that say where Logto is and which M2M credential manages it.

    ``client_secret`` is wrapped in ``pulumi.Output.secret`` so it is encrypted in the state even
    when the caller passes a plain string.
    """

    def __init__(
        self,
        endpoint: pulumi.Input[str],
        client_id: pulumi.Input[str],
        client_secret: pulumi.Input[str],
        resource: pulumi.Input[str] = SELF_HOSTED_RESOURCE,
        *,
        timeout: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.client_secret = client_secret
        self.resource = resource
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"LogtoConnectionArgs(endpoint={self.endpoint!r}, client_id={self.client_id!r}, resource={self.resource!r})"

    def to_props(self) -> dict[str, Any]:
        """The flattened resource inputs (``logto_*``)."""
        props: dict[str, Any] = {
            "logto_endpoint": self.endpoint,
            "logto_client_id": self.client_id,
            "logto_client_secret": pulumi.Output.secret(self.client_secret),
            "logto_resource": self.resource,
        }
        if self.timeout is not None:
            props[TIMEOUT_KEY] = self.timeout
        return props


def ownership_props(resource_name: str) -> dict[str, Any]:
    """Marker inputs naming the owning project, stack and logical resource name."""
    return {"project": pulumi.get_project(), "stack": pulumi.get_stack(), "resource_name": resource_name}


def secret_outputs_opts(
    opts: pulumi.ResourceOptions | None, secret_outputs: Iterable[str]
) -> pulumi.ResourceOptions:
    """``opts`` with ``additional_secret_outputs`` extended (the caller's own entries are kept)."""
    ours = pulumi.ResourceOptions(additional_secret_outputs=[*secret_outputs, *CONNECTION_SECRET_OUTPUTS])
    return pulumi.ResourceOptions.merge(opts, ours)


def is_unknown(value: Any) -> bool:
    """True for a value not known yet (preview), at any depth."""
    if value == rpc.UNKNOWN:
        return True
    if isinstance(value, (list, tuple)):
        return any(is_unknown(v) for v in value)
    if isinstance(value, Mapping):
        return any(is_unknown(v) for v in value.values())
    return False


def connection_from_props(props: Mapping[str, Any]) -> LogtoConnection:
    """The ``LogtoConnection`` described by a resource's ``logto_*`` properties."""
    return LogtoConnection(
        endpoint=props.get("logto_endpoint"),  # type: ignore[arg-type] - validated by LogtoConnection
        client_id=props.get("logto_client_id"),  # type: ignore[arg-type]
        client_secret=props.get("logto_client_secret"),  # type: ignore[arg-type]
        resource=props.get("logto_resource") or SELF_HOSTED_RESOURCE,
        timeout=props.get(TIMEOUT_KEY) or 10.0,
        # During `pulumi up` Logto may still be starting or restarting (its Postgres restarted):
        # wait for it, bounded and reporting progress, instead of failing the first call.
        ready_timeout=READY_TIMEOUT_S,
    )


def api_from_props(props: Mapping[str, Any]) -> ManagementApi:
    """A fresh ``ManagementApi`` for one provider call (tokens and sessions come from process caches)."""
    return ManagementApi(connection_from_props(props))


class InputProblems:
    """Problems found in a resource's inputs; becomes ``CheckFailure``s or one raised error."""

    def __init__(self) -> None:
        self.items: list[tuple[str, LogtoError]] = []

    def add(self, prop: str, reason: str) -> None:
        """Record a problem found without a validator."""
        self.items.append((prop, LogtoInputError(prop, reason)))

    def run(self, prop: str, value: Any, validate: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``validate(*args, value, **kwargs)`` unless ``value`` is unknown; record its error."""
        if is_unknown(value):
            return value
        try:
            return validate(*args, value, **kwargs)
        except LogtoError as exc:
            self.items.append((prop, exc))
            return value

    def check_connection(self, props: Mapping[str, Any]) -> None:
        """Check the ``logto_*`` inputs (skipped while any of them is unknown)."""
        if any(is_unknown(props.get(k)) for k in CONNECTION_KEYS):
            return
        try:
            connection_from_props(props)
        except LogtoInputError as exc:
            self.items.append((exc.field if exc.field.startswith("logto_") else f"logto_{exc.field}", exc))

    def failures(self) -> list[CheckFailure]:
        """What ``check`` returns to the engine."""
        return [CheckFailure(prop, str(exc)) for prop, exc in self.items]

    def raise_first(self) -> None:
        """Raise the first problem (used by ``create`` so a direct call never sends bad input)."""
        if self.items:
            raise self.items[0][1]


def marker(props: Mapping[str, Any]) -> dict[str, str]:
    """The ``customData`` ownership marker for an object owned by this project, stack and resource."""
    return {
        "managedBy": MANAGED_BY,
        "project": str(props.get("project") or ""),
        "stack": str(props.get("stack") or ""),
        "resource": str(props.get("resource_name") or ""),
    }


def marker_props_from_custom_data(custom_data: Any) -> dict[str, str]:
    """``project``/``stack``/``resource_name`` read back from a live marker ("" when absent)."""
    if isinstance(custom_data, Mapping) and custom_data.get("managedBy") == MANAGED_BY:
        return {
            "project": str(custom_data.get("project") or ""),
            "stack": str(custom_data.get("stack") or ""),
            "resource_name": str(custom_data.get("resource") or ""),
        }
    return {"project": "", "stack": "", "resource_name": ""}


def differs(olds: Mapping[str, Any], news: Mapping[str, Any], key: str) -> bool:
    """True when ``key`` changed between old outputs and new inputs (unknown counts as changed)."""
    new = news.get(key)
    if is_unknown(new):
        return True
    return _normalise(olds.get(key)) != _normalise(new)


def _normalise(value: Any) -> Any:
    # The engine hands numbers back as floats and empty optional values as None or "".
    if value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalise(v) for k, v in value.items()}
    return value


def connection_outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """The ``logto_*`` properties carried into outputs (refresh and delete read them from there)."""
    outs = {k: props.get(k) for k in CONNECTION_KEYS}
    if props.get(TIMEOUT_KEY) is not None:
        outs[TIMEOUT_KEY] = props[TIMEOUT_KEY]
    return outs


def read_inputs(outs: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """The inputs ``read`` hands back (live values), so a refresh shows drift as input changes."""
    inputs = {k: outs.get(k) for k in keys}
    if outs.get(TIMEOUT_KEY) is not None:
        inputs[TIMEOUT_KEY] = outs[TIMEOUT_KEY]
    return inputs


RERUN_HINT = (
    "Logto may still be creating it. Run `pulumi up` again: it finds the object by its ownership "
    "marker and takes it over instead of creating a second one."
)


def create_without_duplicate(
    create: Callable[[], dict[str, Any]], find_owned: Callable[[], dict[str, Any] | None], what: str
) -> dict[str, Any]:
    """Run a create whose response may get lost, without ever leaving two objects behind.

    The transport does not repeat a POST that may have reached Logto. Here, after such a failure,
    the object is looked up by its ownership marker (sent inside the same POST, so it exists with
    the object or not at all). Found: use it. Not found after a dropped connection or Logto's own 5xx:
    the create did not happen, so it is sent once more. Not found after a timeout or a gateway's 5xx
    (502, 504, 520-524, or a 5xx without Logto's JSON error body): the request
    may still be running inside Logto and could commit after a second POST, so instead of risking a
    duplicate the error is raised with a hint to re-run, and the re-run's lookup adopts the object.
    """
    for attempt in (1, 2):
        try:
            return create()
        except LogtoError as exc:
            if not exc.may_have_reached_server:
                raise
            log.info("create of %s lost its response; looking for it by its ownership marker", what)
            found = find_owned()
            if found is not None:
                return found
            # A timeout, or a gateway's 5xx (502, 504, 520-524, any 5xx without Logto's JSON body):
            # Logto may still commit the first POST, so a second one could make a duplicate.
            still_in_flight = isinstance(exc, LogtoTimeoutError) or bool(getattr(exc, "gateway_ambiguous", False))
            if still_in_flight or attempt == 2:
                raise exc.with_hint(RERUN_HINT) from None
    raise AssertionError("unreachable")


def refuse_foreign_owner(field: str, what: str, owner: Mapping[str, str], props: Mapping[str, Any]) -> None:
    """Refuse to adopt an object whose marker names another project or stack.

    Two stacks adopting the same object would each rewrite it to their own desired state on every
    `pulumi up`; the same stack under another logical name (a rename) is fine.
    """
    if not owner.get("project") and not owner.get("stack"):
        return
    if (owner.get("project"), owner.get("stack")) != (props.get("project"), props.get("stack")):
        raise LogtoInputError(
            field,
            f"{what} is managed by stack {owner.get('project')}/{owner.get('stack')}",
            hint="Remove it from that stack (or delete its resource there) before adopting it here.",
        )
