"""``ssoProviders``: the sign-in providers in display order, their settings and secret credentials."""

from __future__ import annotations

import re
from typing import Any

import pulumi

from components.config.errors import Problems, secret_set_command
from components.config.fields import check_url, is_dns_name, read_secret
from components.config.sources import ConfigSource
from components.config.stage import SsoProvider
from components.sso_providers import PROVIDERS, ProviderSpec, provider_ids

_SETTING_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

KEYS = frozenset(
    {"ssoProviders"}
    | {spec.secret_key(source) for spec in PROVIDERS.values() for source in ("clientId", "clientSecret") if spec.id != "logto"}
)


def read_sso_providers(
    source: ConfigSource, problems: Problems, stack: str, gen: int, require_https: bool = False
) -> list[SsoProvider]:
    try:
        raw = source.get_object("ssoProviders")
    except Exception:
        problems.add("ssoProviders", "is not valid structured config (a YAML list expected)")
        return []
    if raw is None:
        raw = ["logto"]
    if not isinstance(raw, list) or not raw:
        problems.add("ssoProviders", "must be a non-empty list of provider ids (or {id: ..., issuer: ...} entries), in display order, e.g. [logto, github]")
        return []
    seen: set[str] = set()
    emitted: set[str] = set()
    providers: list[SsoProvider] = []
    for index, entry in enumerate(raw):
        key = f"ssoProviders[{index}]"
        settings: dict[str, Any] = {}
        if isinstance(entry, str):
            provider_id = entry.strip()
        elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
            provider_id = entry["id"].strip()
            settings = {k: v for k, v in entry.items() if k != "id"}
        else:
            problems.add(key, "must be a provider id or a mapping with an 'id'")
            continue
        spec = PROVIDERS.get(provider_id)
        if spec is None:
            problems.add(key, f"unknown provider id '{provider_id}'; known ids: {', '.join(provider_ids())}")
            continue
        if provider_id in seen:
            problems.add(key, f"provider '{provider_id}' is listed twice; list each provider once")
            continue
        seen.add(provider_id)
        if not spec.supports(gen):
            suggestion = spec.instead.get(gen)
            hint = f"; use '{suggestion}' instead" if suggestion else ""
            problems.add(key, f"LobeChat {gen}.x does not know the provider id '{provider_id}'{hint}")
            continue
        emitted_id = spec.emitted_id[gen]
        if emitted_id in emitted:
            problems.add(key, f"'{provider_id}' is the same provider as an earlier entry ('{emitted_id}' in LobeChat {gen}.x); keep one")
            continue
        emitted.add(emitted_id)
        providers.append(_provider_env(source, spec, gen, settings, key, problems, stack, require_https))
    if providers and "logto" not in seen:
        problems.add("ssoProviders", "must include 'logto': this stack signs users in through the Logto application it creates")
    return providers


def _provider_env(
    source: ConfigSource,
    spec: ProviderSpec, gen: int, settings: dict[str, Any], key: str, problems: Problems, stack: str,
    require_https: bool = False,
) -> SsoProvider:
    fields = spec.fields[gen]
    allowed = {f.source for f in fields if not f.from_secret_key}
    for name in settings:
        if name not in allowed:
            hint = f"; '{spec.id}' takes: {', '.join(sorted(allowed))}" if allowed else f"; '{spec.id}' takes no settings"
            if name in ("clientId", "clientSecret"):
                hint = f"; credentials go into secret config: `{secret_set_command(spec.secret_key(name), stack)}`"
            problems.add(f"{key}.{name}", f"not a setting of provider '{spec.id}' in LobeChat {gen}.x{hint}")
    env: dict[str, pulumi.Input[str]] = {}
    for f in fields:
        if f.from_secret_key:
            config_key = spec.secret_key(f.source)
            if f.source == "clientSecret":
                present, value = read_secret(source, problems, config_key, stack)
            else:  # a client id is an identifier, not a credential: it may be set plain
                value = source.get_secret(config_key)
                present = value is not None
                if present and not str(source.peek_secret(config_key) or "").strip():
                    problems.add(config_key, f"is empty; run `{secret_set_command(config_key, stack)}`")
                    continue
            if not present:
                problems.add(
                    config_key,
                    f"is required for SSO provider '{spec.id}' ({f.env_var}): run `{secret_set_command(config_key, stack)}`",
                )
                continue
            if value is not None:
                env[f.env_var] = value
            continue
        raw = settings.get(f.source)
        setting = f"{key}.{f.source}"
        if raw is None:
            if f.required:
                problems.add(setting, f"is required for SSO provider '{spec.id}' ({f.env_var})")
            continue
        if f.source in ("issuer", "authorityUrl"):
            # Kept exactly as written: the issuer must equal what the provider advertises, and some
            # (Auth0) advertise a trailing slash.
            text = check_url(raw, setting, problems, require_https, what=f.source)
            if text is None:
                continue
        elif f.source == "domain":
            if not isinstance(raw, str) or not is_dns_name(raw.lower()):
                problems.add(setting, "must be a host name (letters, digits, '-' and '.'), without https://")
                continue
            text = raw
        else:
            if not isinstance(raw, str) or not _SETTING_TEXT.fullmatch(raw):
                problems.add(setting, "must be a string of letters, digits, '.', '_' or '-' (at most 128)")
                continue
            text = raw
        env[f.env_var] = text
    return SsoProvider(id=spec.id, emitted_id=spec.emitted_id[gen], env=env)


