"""The ``auth`` section and the ``accessCode`` secret."""

from __future__ import annotations

import pulumi

from components.config.errors import Problems, full_key, secret_set_command
from components.config.fields import parse_bool, read_object, read_secret, unknown_fields
from components.config.sources import ConfigSource
from components.config.stage import LOBECHAT_IMAGES

KEYS = frozenset({"auth", "accessCode"})


def read_auth(source: ConfigSource, problems: Problems, stack: str, gen: int) -> pulumi.Input[str] | None:
    obj = read_object(source, problems, "auth")
    unknown_fields(problems, "auth", obj, {"mode", "accessCode"})
    mode = str(obj.get("mode", "sso"))
    if mode == "clerk":
        if gen == 2:
            problems.add("auth.mode", "LobeChat 2.x refuses Clerk (the container exits); use \"sso\" (Logto and the providers in ssoProviders)")
        else:
            problems.add(
                "auth.mode",
                "Clerk cannot work with this stack: its publishable key is baked into the LobeChat image at build "
                f"time, so the public image '{LOBECHAT_IMAGES[1]}' cannot use it, and Clerk would replace the Logto "
                "sign-in this stack provisions; use \"sso\"",
            )
        return None
    if mode != "sso":
        problems.add("auth.mode", "must be \"sso\" (Logto plus the providers in ssoProviders)")
        return None
    if not parse_bool(obj.get("accessCode"), "auth.accessCode", problems, False):
        return None
    if gen == 2:
        problems.add("auth.accessCode", "LobeChat 2.x refuses ACCESS_CODE (the container exits); remove it")
        return None
    present, value = read_secret(source, problems, "accessCode", stack)
    if not present:
        problems.add("accessCode", f"is required when auth.accessCode is true: run `{secret_set_command('accessCode', stack)}`")
        return None
    if value is None:
        return None
    pulumi.log.warn(
        f"{full_key('auth.accessCode')}: LobeChat 1.x ignores ACCESS_CODE for users signed in through SSO; "
        "it only guards use without signing in"
    )
    return value


