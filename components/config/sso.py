"""``ssoProviders``: the sign-in providers in display order, their settings and secret credentials."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pulumi

from components.config.errors import Problems, secret_set_command
from components.config.sources import ConfigSource
from components.config.stage import SsoProvider
from components.sso_providers import PROVIDERS, ProviderSpec, provider_ids

KEYS = frozenset(
    {"ssoProviders"}
    | {spec.secret_key(source) for spec in PROVIDERS.values() for source in ("clientId", "clientSecret") if spec.id != "logto"}
)


def read_sso_providers(source: ConfigSource, problems: Problems, stack: str, gen: int) -> list[SsoProvider]:
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
        providers.append(_provider_env(source, spec, gen, settings, key, problems, stack))
    if providers and "logto" not in seen:
        problems.add("ssoProviders", "must include 'logto': this stack signs users in through the Logto application it creates")
    return providers


def _provider_env(
    source: ConfigSource,
    spec: ProviderSpec, gen: int, settings: dict[str, Any], key: str, problems: Problems, stack: str
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
            value = source.get_secret(config_key)
            if value is None:
                problems.add(
                    config_key,
                    f"is required for SSO provider '{spec.id}' ({f.env_var}): run `{secret_set_command(config_key, stack)}`",
                )
                continue
            env[f.env_var] = value
            continue
        raw = settings.get(f.source)
        if raw is None:
            if f.required:
                problems.add(f"{key}.{f.source}", f"is required for SSO provider '{spec.id}' ({f.env_var})")
            continue
        text = str(raw).strip()
        if f.source in ("issuer", "authorityUrl"):
            parsed = urlsplit(text)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                problems.add(f"{key}.{f.source}", f"must be an http(s) URL (the provider's {f.source})")
                continue
            # Kept exactly as written: the issuer must equal what the provider advertises, and some
            # (Auth0) advertise a trailing slash.
        env[f.env_var] = text
    return SsoProvider(id=spec.id, emitted_id=spec.emitted_id[gen], env=env)


