"""``extraEnv`` / ``extraSecretEnv``: variables added to LobeChat's environment."""

from __future__ import annotations

import re

import pulumi

from components.config.errors import Problems, full_key
from components.config.fields import read_object
from components.config.sources import ConfigSource, scalar_text
from components.config.stage import SsoProvider
from components.lobechat_env_names import forbidden_2x_reason, managed_env_names_any_generation

KEYS = frozenset({"extraEnv", "extraSecretEnv"})

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}")
MAX_VALUE_LENGTH = 32768
"""Longest extra value accepted (characters): far above any real setting, far below Linux's 128 KiB per variable."""
_SECRET_LOOKING_NAME = re.compile(r"(_KEY|_SECRET|_PASSWORD|_TOKEN|_ACCESS_KEY_ID)$|^(ACCESS_CODE|PASSWORD)$")


def read_extra_env(
    source: ConfigSource, problems: Problems, gen: int, sso: list[SsoProvider], stack: str = "<stack>"
) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    managed = managed_env_names_any_generation() | {name for p in sso for name in p.env}
    plain: dict[str, str] = {}
    secret: dict[str, pulumi.Input[str]] = {}

    def check(key: str, name: str) -> bool:
        if not _ENV_NAME.fullmatch(name):
            shown = f"{key}.{name}" if name and name.isprintable() and len(name) <= 256 else key
            problems.add(shown, "must map environment variable names (letters, digits, '_', not starting with a digit) to values")
            return False
        if gen == 2:
            reason = forbidden_2x_reason(name, "")
            if reason:
                problems.add(f"{key}.{name}", f"LobeChat 2.x exits at start when it finds {reason}; remove it")
                return False
        if name in managed:
            problems.add(
                f"{key}.{name}",
                "is set by the stack from its own resources and config (on LobeChat 1.x or 2.x); remove it here",
            )
            return False
        return True

    obj = read_object(source, problems, "extraEnv")
    for name, value in obj.items():
        if not check("extraEnv", str(name)):
            continue
        if isinstance(value, (dict, list)) or value is None:
            problems.add(f"extraEnv.{name}", "must be a plain value (string, number or boolean)")
            continue
        problem = _value_problem(scalar_text(value))
        if problem:
            problems.add(f"extraEnv.{name}", problem)
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
        raw_obj = source.peek_secret_object("extraSecretEnv") if secret_obj is not None else None
    except Exception:
        problems.add("extraSecretEnv", "is not valid structured config (a YAML mapping expected)")
        secret_obj = raw_obj = None
    if secret_obj is not None and not isinstance(raw_obj, dict):
        problems.add("extraSecretEnv", "must be a mapping of environment variable names to secret values")
        return plain, secret
    if secret_obj is not None and not source.is_secret("extraSecretEnv"):
        first = next(iter(secret_obj), "NAME")
        problems.add(
            "extraSecretEnv",
            "is stored in clear text in the stack file (it was set without --secret); set each value again "
            f"as a secret: `pulumi config set --secret --path '{full_key('extraSecretEnv')}.{first}' <value> "
            f"--stack {stack}`",
        )
        return plain, secret
    for name, value in (secret_obj or {}).items():
        if name in plain:
            problems.add(f"extraSecretEnv.{name}", "is also in extraEnv; keep it in one of them")
            continue
        if not check("extraSecretEnv", name):
            continue
        raw = (raw_obj or {}).get(name)
        if not isinstance(raw, str):
            problems.add(f"extraSecretEnv.{name}", "must be a string (quote it in the stack file)")
            continue
        if not raw.strip():
            problems.add(f"extraSecretEnv.{name}", "is empty or only whitespace; set the real value or remove it")
            continue
        problem = _value_problem(raw)
        if problem:
            problems.add(f"extraSecretEnv.{name}", problem)
            continue
        secret[name] = value
    return plain, secret


def _value_problem(text: str) -> str | None:
    # Never quotes the value (an extraSecretEnv value is a secret).
    if "\x00" in text:
        return "contains a NUL character, which no environment variable can hold"
    if len(text) > MAX_VALUE_LENGTH:
        return f"is longer than {MAX_VALUE_LENGTH} characters; put large data in a file or an S3 object instead"
    return None
