"""``extraEnv`` / ``extraSecretEnv``: variables added to LobeChat's environment."""

from __future__ import annotations

import re

import pulumi

from components.config.errors import Problems, full_key
from components.config.fields import read_object
from components.config.sources import ConfigSource, scalar_text
from components.config.stage import SsoProvider
from components.lobechat_env_names import forbidden_2x_reason, managed_env_names

KEYS = frozenset({"extraEnv", "extraSecretEnv"})

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LOOKING_NAME = re.compile(r"(_KEY|_SECRET|_PASSWORD|_TOKEN|_ACCESS_KEY_ID)$|^(ACCESS_CODE|PASSWORD)$")


def read_extra_env(
    source: ConfigSource, problems: Problems, gen: int, sso: list[SsoProvider]
) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    managed = managed_env_names(gen) | {name for p in sso for name in p.env}
    plain: dict[str, str] = {}
    secret: dict[str, pulumi.Input[str]] = {}

    def check(key: str, name: str) -> bool:
        if not _ENV_NAME.match(name):
            problems.add(f"{key}.{name}" if name else key, "must map environment variable names (letters, digits, '_') to values")
            return False
        if name in managed:
            problems.add(f"{key}.{name}", "is set by the stack from its own resources and config; remove it here")
            return False
        if gen == 2:
            reason = forbidden_2x_reason(name, "")
            if reason:
                problems.add(f"{key}.{name}", f"LobeChat 2.x exits at start when it finds {reason}; remove it")
                return False
        return True

    obj = read_object(source, problems, "extraEnv")
    for name, value in obj.items():
        if not check("extraEnv", str(name)):
            continue
        if isinstance(value, (dict, list)) or value is None:
            problems.add(f"extraEnv.{name}", "must be a plain value (string, number or boolean)")
            continue
        if _SECRET_LOOKING_NAME.search(str(name)):
            # extraEnv sits in the stack file in clear text; a key there is a leaked key.
            problems.add(
                f"extraEnv.{name}",
                "looks like a secret, and extraEnv is stored in clear text; move it to extraSecretEnv: "
                f"`pulumi config set --secret --path '{full_key('extraSecretEnv')}.{name}' <value>`",
            )
            continue
        plain[str(name)] = scalar_text(value)

    try:
        secret_obj = source.get_secret_object("extraSecretEnv")
    except Exception:
        problems.add("extraSecretEnv", "is not valid structured config (a YAML mapping expected)")
        secret_obj = None
    for name, value in (secret_obj or {}).items():
        if name in plain:
            problems.add(f"extraSecretEnv.{name}", "is also in extraEnv; keep it in one of them")
            continue
        if check("extraSecretEnv", name):
            secret[name] = value
    return plain, secret


