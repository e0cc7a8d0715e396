"""``SecretRotation``: the rotation state of one secret, kept in the Pulumi state, and the decision
whether it is due.

The state is a *generation* number: the secret that LobeChat holds is the one made for the current
generation (a Logto client secret named after it, a webhook created for it, a session secret whose
keeper is it). Rotating means: the next generation. Everything is decided in ``check``, so that
``pulumi preview`` shows it as a plain property diff before anything happens::

    ~ generation:   2 => 3
    ~ reason:       "age 0s: rotated on request ..." => "age 91d >= maxAge 90d"
    ~ rotated_at:   ...

and the resources built from the generation show as replacements (``+-``) in the same preview.

Nothing lives outside the state: ``read`` (``pulumi refresh``) returns what is stored, so the age and
the generation survive a refresh, and a lost LobeChat container is recreated from the stored
generation's secret. The clock is :mod:`components.clock` (injectable; ``LOBECHAT_LOGTO_ROTATION_NOW``
for a dry run "as of" another day).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.clock import iso, now
from components.config.rotation import format_duration

POLICY_KEYS = ("secret", "max_age_seconds", "request", "lifetime_seconds")
STATE_KEYS = ("generation", "rotated_at", "expires_at", "honoured_request", "reason", "next_due_at")


@dataclass(frozen=True)
class Decision:
    """What ``check`` decided: the state to keep (``rotate`` False) or the next generation's."""

    rotate: bool
    state: dict[str, Any]


def _number(value: Any) -> float | None:
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def decide(olds: Mapping[str, Any], policy: Mapping[str, Any], at: float) -> Decision:
    """Whether the secret rotates at instant ``at``, and the state after.

    - No state yet (first deployment, or the stack just adopted rotation): generation 0, the secret
      that exists; a request present then counts as honoured (there is nothing older to replace).
    - A ``request`` other than the last honoured one: rotate ("rotateNow").
    - Older than ``max_age_seconds``: rotate.
    - Its Logto expiry comes within the grace (``lifetime - max_age``) of now, e.g. after the maxAge
      was raised: rotate, so a running LobeChat never holds an expired secret.
    """
    max_age = _number(policy.get("max_age_seconds"))
    lifetime = _number(policy.get("lifetime_seconds"))
    request = policy.get("request") or None
    generation = _number(olds.get("generation"))
    rotated_at = _number(olds.get("rotated_at"))
    if generation is None or rotated_at is None:
        return Decision(False, _state(0, at, None, request, "first deployment: the secret that exists is generation 0",
                                      max_age))
    generation_int = int(generation)
    honoured = olds.get("honoured_request") or None
    expires_at = _number(olds.get("expires_at"))
    age = at - rotated_at
    reason = None
    if request is not None and request != honoured:
        reason = f"requested: rotation.rotateNow.{policy.get('secret')} = {request!r}"
    elif max_age is not None and age >= max_age:
        reason = f"age {format_duration(max(age, 0))} >= maxAge {format_duration(max_age)}"
    elif expires_at is not None and max_age is not None and lifetime is not None and \
            at * 1000 >= expires_at - (lifetime - max_age) * 1000:
        reason = f"expires in Logto at {iso(expires_at / 1000)}, within the expiryGrace"
    if reason is None:
        kept = {key: olds.get(key) for key in STATE_KEYS}
        kept["generation"] = generation_int
        kept["next_due_at"] = iso(rotated_at + max_age) if max_age is not None else None
        if request is not None:
            kept["honoured_request"] = honoured
        return Decision(False, kept)
    expires = None if lifetime is None else int((at + lifetime) * 1000)
    return Decision(True, _state(generation_int + 1, at, expires, request or honoured, reason, max_age))


def _state(generation: int, at: float, expires_at: int | None, request: str | None, reason: str,
           max_age: float | None) -> dict[str, Any]:
    return {
        "generation": generation,
        "rotated_at": int(at),
        "expires_at": expires_at,
        "honoured_request": request,
        "reason": reason,
        "next_due_at": iso(at + max_age) if max_age is not None else None,
    }


class SecretRotationProvider(ResourceProvider):
    """Keeps one secret's rotation state; decides in ``check`` (so previews show it), stores in the state."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        secret = news.get("secret")
        if not isinstance(secret, str) or not secret:
            failures.append(CheckFailure("secret", "must name the secret (e.g. clientSecret)"))
        for key in ("max_age_seconds", "lifetime_seconds"):
            value = news.get(key)
            if value is not None and (_number(value) is None or _number(value) <= 0):
                failures.append(CheckFailure(key, "must be a positive number of seconds or None"))
        request = news.get("request")
        if request is not None and not isinstance(request, str):
            failures.append(CheckFailure("request", "must be a string or None"))
        policy = {key: news.get(key) for key in POLICY_KEYS}
        if failures:
            return CheckResult({**policy, **{k: olds.get(k) for k in STATE_KEYS}}, failures)
        try:
            at = now()
        except ValueError as exc:
            return CheckResult(policy, [CheckFailure("secret", str(exc))])
        decision = decide(olds, policy, at)
        return CheckResult({**policy, **decision.state}, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in (*POLICY_KEYS, *STATE_KEYS) if _norm(olds.get(k)) != _norm(news.get(k))]
        return DiffResult(changes=bool(changed), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs=dict(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=dict(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing lives outside the state: a refresh keeps the age, generation and requests as stored.
        inputs = {k: props.get(k) for k in (*POLICY_KEYS, *STATE_KEYS)}
        return ReadResult(id_=id_, outs=dict(props), inputs=inputs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


def _norm(value: Any) -> Any:
    if value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class SecretRotation(Resource, module="rotation", name="SecretRotation"):
    """The rotation state of one secret (``generation``, ``rotated_at``, ``expires_at`` in ms, ``reason``).

    Args:
        secret: its name in the policy (``clientSecret``, ``webhookSigningKey``, ``sessionSecret``).
        max_age_seconds: rotate when older (None: only on request).
        request: the current ``rotateNow`` word; a new one rotates once.
        lifetime_seconds: how long a new generation stays valid where the secret has an expiry (None: no expiry).
    """

    generation: pulumi.Output[int]
    rotated_at: pulumi.Output[int]
    expires_at: pulumi.Output[int | None]
    reason: pulumi.Output[str]
    next_due_at: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        *,
        secret: str,
        max_age_seconds: int | None = None,
        request: str | None = None,
        lifetime_seconds: int | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "secret": secret,
            "max_age_seconds": max_age_seconds,
            "request": request,
            "lifetime_seconds": lifetime_seconds,
            **{key: None for key in STATE_KEYS},
        }
        super().__init__(SecretRotationProvider(), resource_name, props, opts)
