"""Reading and validating a stage's configuration, before any resource is declared.

Every key lives in the Pulumi config namespace ``lobechat-logto`` (``stacks/Pulumi.<stack>.yaml``).
``load_stage_config`` reads them all, checks them all, and raises one :class:`ConfigError` that lists
every bad value, each naming its full key and saying what to do. Messages never contain a secret value:
secret keys are only ever checked for presence.

The one LobeChat URL (``lobechatUrl``) is the source of every URL the stack derives: the Logto
application's redirect, sign-out and CORS URIs, the webhook URL, ``APP_URL`` and ``NEXTAUTH_URL``; so
they cannot disagree.

URL rule (decided here, documented in the README): URL keys take an origin (``scheme://host[:port]``).
A lone trailing ``/`` is removed, except on ``lobechatUrl`` for LobeChat 2.x, where it is an error
because 2.x exits when ``APP_URL`` ends in ``/`` and the config should say what runs. Any other path,
a query, a fragment or credentials in a URL are errors.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import pulumi

from components.config.data_safety import TOP_LEVEL_KEYS as DATA_SAFETY_KEYS
from components.config.data_safety import load_data_safety, pinned_postgres_image
from components.config.errors import ConfigError, Problems, full_key, secret_set_command
from components.config.sources import ConfigSource, scalar_text
from components.config.stage import (
    LOBECHAT_CONTAINER_PORT,
    LOBECHAT_IMAGES,
    LOGTO_DEFAULT_ADMIN_PORT,
    LOGTO_DEFAULT_PORT,
    LOGTO_IMAGE,
    POSTGRES_IMAGES,
    LobeChatUrls,
    LogtoConfig,
    Origin,
    PostgresConfig,
    PublishConfig,
    SsoProvider,
    StageConfig,
)
from components.postgres_url import libpq_environment
from components.sso_providers import PROVIDERS, ProviderSpec, provider_ids

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_LOOKING_NAME = re.compile(r"(_KEY|_SECRET|_PASSWORD|_TOKEN|_ACCESS_KEY_ID)$|^(ACCESS_CODE|PASSWORD)$")
_RESOURCE_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")


TOP_LEVEL_KEYS = frozenset(
    {
        "lobechatUrl", "lobechatGeneration", "lobechatImage", "requireHttps", "resourcePrefix",
        "logto", "logtoM2mClientId", "logtoM2mClientSecret",
        "postgres", "postgresLogtoUrl", "postgresLobechatUrl",
        "ssoProviders", "auth", "accessCode", "publish", "dockerHost",
        "extraEnv", "extraSecretEnv", "webhook", "proxyOnDockerHost",
    }
    | {spec.secret_key(source) for spec in PROVIDERS.values() for source in ("clientId", "clientSecret") if spec.id != "logto"}
    | DATA_SAFETY_KEYS
)
"""Every key this package reads (without the namespace)."""


def load_stage_config(source: ConfigSource, stack: str) -> StageConfig:
    """Read and validate every key of one stage; raise :class:`ConfigError` listing all bad values."""
    problems = Problems()
    _unknown_keys(source, problems)

    require_https = _parse_bool(source.get("requireHttps"), "requireHttps", problems, default=(stack == "prod"))
    if stack == "prod" and not require_https:
        problems.add("requireHttps", "cannot be turned off on the stack 'prod' (sign-in over plain http leaks sessions); remove it")
        require_https = True
    generation = _generation(source, problems)
    gen = generation or 1  # generation-dependent checks still run when the generation is bad

    lobechat_url = _origin(
        source.get("lobechatUrl"), "lobechatUrl", problems, require_https, required=True,
        example="https://chat.example.com", trailing_slash_error=(gen == 2),
    )
    if lobechat_url is not None and lobechat_url.is_localhost and lobechat_url.port != LOBECHAT_CONTAINER_PORT:
        problems.add(
            "lobechatUrl",
            f"a *.localhost URL is reached directly on the LobeChat container's port "
            f"{LOBECHAT_CONTAINER_PORT} (from the browser and from Logto's webhooks); use "
            f"'{lobechat_url.scheme}://{lobechat_url.host}:{LOBECHAT_CONTAINER_PORT}'",
        )

    lobechat_image = _lobechat_image(source, problems, gen)
    logto = _logto(source, problems, stack, require_https)
    postgres = _postgres(source, problems, stack, gen, logto)
    data_safety = load_data_safety(source, problems, stack)
    if postgres is not None and postgres.mode == "container":
        image, major = pinned_postgres_image(problems, data_safety, gen, postgres.image, "image" in _object(source, Problems(), "postgres"))
        postgres = replace(postgres, image=image, major=major)
    sso = _sso_providers(source, problems, stack, gen)
    access_code = _auth(source, problems, stack, gen)
    publish = _publish(source, problems, lobechat_url, logto)
    if logto is not None and publish is not None:
        logto = replace(logto, api_endpoint=_api_endpoint(logto, publish))
    docker_host = _docker_host(source, problems)
    extra_env, extra_secret_env = _extra_env(source, problems, gen, sso)
    webhook_enabled = _webhook(source, problems)
    proxy_on_docker_host = _parse_bool(source.get("proxyOnDockerHost"), "proxyOnDockerHost", problems, False)
    resource_prefix = source.get("resourcePrefix") or f"lobechat-logto-{stack}"
    if not _RESOURCE_PREFIX.match(resource_prefix):
        problems.add(
            "resourcePrefix",
            "must be lower-case letters, digits, '.', '_' or '-' (at most 41 characters); it prefixes "
            "Docker container, network and volume names",
        )

    if problems.count():
        raise ConfigError(stack, problems.items)
    assert generation is not None and lobechat_url is not None and logto is not None
    assert postgres is not None and publish is not None
    return StageConfig(
        stack=stack,
        generation=generation,
        lobechat_image=lobechat_image,
        lobechat_url=lobechat_url,
        urls=LobeChatUrls(lobechat_url.url),
        logto=logto,
        postgres=postgres,
        sso_providers=tuple(sso),
        access_code=access_code,
        publish=publish,
        docker_host=docker_host,
        extra_env=extra_env,
        extra_secret_env=extra_secret_env,
        webhook_enabled=webhook_enabled,
        require_https=require_https,
        resource_prefix=resource_prefix,
        proxy_on_docker_host=proxy_on_docker_host,
        data_safety=data_safety,
    )


def _unknown_keys(source: ConfigSource, problems: Problems) -> None:
    # A misspelled key would otherwise be ignored silently and its default used instead.
    keys = getattr(source, "keys", None)
    if keys is None:
        return
    for name in sorted(keys() - TOP_LEVEL_KEYS):
        close = difflib.get_close_matches(name, TOP_LEVEL_KEYS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; see the README's config reference"
        problems.add(name, f"is not a setting of this project{hint}")


def _api_endpoint(logto: LogtoConfig, publish: PublishConfig) -> str:
    # The program's own calls come from the operator's machine, where a *.localhost name may not
    # resolve (that is up to the OS resolver, unlike browsers); the published port on 127.0.0.1 is the
    # same Logto. Logto serves its default tenant on any host name that is not its admin endpoint, and
    # issues tokens with its configured issuer, so the API answers the same there.
    if logto.api_endpoint_explicit or logto.mode != "container" or not logto.endpoint.is_localhost:
        return logto.api_endpoint
    if not publish.enabled:
        return logto.api_endpoint
    address = "127.0.0.1" if publish.bind_address in ("0.0.0.0", "127.0.0.1") else publish.bind_address
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    return f"http://{address}:{publish.logto_port}"


def _parse_bool(value: Any, key: str, problems: Problems, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    problems.add(key, "must be true or false")
    return default


def _object(source: ConfigSource, problems: Problems, key: str) -> dict[str, Any]:
    try:
        value = source.get_object(key)
    except Exception:  # pulumi raises on malformed JSON; say which key, not the parser's text
        problems.add(key, "is not valid structured config (YAML mapping expected)")
        return {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, "must be a mapping (YAML object) of settings")
        return {}
    return value


def _unknown_fields(problems: Problems, key: str, obj: Mapping[str, Any], known: set[str]) -> None:
    for name in obj:
        if name not in known:
            problems.add(f"{key}.{name}", f"unknown setting; the settings of {key} are: {', '.join(sorted(known))}")


def _generation(source: ConfigSource, problems: Problems) -> int | None:
    raw = source.get("lobechatGeneration")
    if raw is None:
        return 1
    text = str(raw).strip()
    if text in ("1", "1.x"):
        return 1
    if text in ("2", "2.x"):
        return 2
    problems.add("lobechatGeneration", "must be \"1\" (LobeChat 1.x, Auth.js) or \"2\" (LobeChat 2.x, Better Auth)")
    return None


def _origin(
    raw: Any,
    key: str,
    problems: Problems,
    require_https: bool,
    *,
    required: bool,
    example: str,
    trailing_slash_error: bool = False,
) -> Origin | None:
    if raw is None or str(raw).strip() == "":
        if required:
            path = " --path" if "." in key else ""
            problems.add(key, f"is required: set it with `pulumi config set{path} {full_key(key)} {example}`")
        return None
    text = str(raw).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        problems.add(key, f"is not a valid URL; expected an origin like {example}")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "://" not in text:
        problems.add(key, f"must be an http:// or https:// URL with a host name, like {example}")
        return None
    if parts.username is not None or parts.password is not None:
        problems.add(key, "must not contain credentials (user:password@)")
        return None
    if parts.query or parts.fragment or "?" in text or "#" in text:
        problems.add(key, f"must not have a query or fragment; expected an origin like {example}")
        return None
    if parts.path == "/":
        if trailing_slash_error:
            problems.add(
                key,
                "must not end with '/': LobeChat 2.x exits at start when APP_URL ends with a slash; "
                f"set it to '{text.rstrip('/')}'",
            )
            return None
    elif parts.path:
        problems.add(
            key,
            f"must be an origin without a path (got path '{parts.path}'); the stack appends the paths it "
            f"needs; use '{parts.scheme}://{parts.netloc}'",
        )
        return None
    if require_https and parts.scheme != "https":
        problems.add(
            key,
            f"must use https:// on this stage (requireHttps is on; the stack 'prod' always requires it); "
            f"use 'https://{parts.netloc}' behind your TLS proxy",
        )
        return None
    host = parts.hostname.lower()
    if parts.scheme == "https" and (host == "localhost" or host.endswith(".localhost")):
        problems.add(
            key,
            "a *.localhost name is served directly by the container over plain http; use http:// for "
            "*.localhost names, or a real host name behind a TLS proxy",
        )
        return None
    default_port = 443 if parts.scheme == "https" else 80
    bracketed = f"[{host}]" if ":" in host else host
    netloc = bracketed if port is None else f"{bracketed}:{port}"
    return Origin(
        url=f"{parts.scheme}://{netloc}",
        scheme=parts.scheme,
        host=host,
        port=port if port is not None else default_port,
        explicit_port=port is not None,
    )


def split_image(image: str) -> tuple[str, str]:
    """``repo:tag@digest`` -> (``repo``, ``tag``); the tag is "" when absent."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
    else:
        tag = ""
    return (f"{head}/{last}" if head else last), tag


def _pinned_image(problems: Problems, key: str, image: Any) -> str | None:
    if not isinstance(image, str) or not image.strip():
        problems.add(key, "must be an image reference like 'repository:tag'")
        return None
    image = image.strip()
    _, tag = split_image(image)
    if "@" not in image and tag in ("", "latest"):
        problems.add(
            key,
            f"must pin a version (a tag other than 'latest', or a digest): an unpinned image changes under "
            f"you on the next pull (got '{image}')",
        )
        return None
    return image


def _lobechat_image(source: ConfigSource, problems: Problems, gen: int) -> str:
    raw = source.get("lobechatImage")
    if raw is None:
        return LOBECHAT_IMAGES[gen]
    image = _pinned_image(problems, "lobechatImage", raw)
    if image is None:
        return LOBECHAT_IMAGES[gen]
    repo, tag = split_image(image)
    if repo in ("lobehub/lobe-chat", "docker.io/lobehub/lobe-chat"):
        problems.add(
            "lobechatImage",
            "is the client-side edition; this stack needs the database edition "
            f"('{LOBECHAT_IMAGES[1]}' for 1.x, '{LOBECHAT_IMAGES[2]}' for 2.x)",
        )
    elif gen == 2 and repo == "lobehub/lobe-chat-database":
        problems.add(
            "lobechatImage",
            f"is a LobeChat 1.x image but lobechatGeneration is \"2\"; use e.g. '{LOBECHAT_IMAGES[2]}' or set "
            "lobechatGeneration to \"1\"",
        )
    elif repo == "lobehub/lobehub" and tag[:1].isdigit():
        major = tag.split(".", 1)[0]
        if major != str(gen):
            problems.add(
                "lobechatImage",
                f"is a LobeChat {major}.x image but lobechatGeneration is \"{gen}\"; make them agree "
                "(the two generations need different environments)",
            )
    return image


_LOGTO_FIELDS = {"mode", "endpoint", "adminEndpoint", "image", "trustProxyHeader", "tenantId", "apiEndpoint"}


def _logto(source: ConfigSource, problems: Problems, stack: str, require_https: bool) -> LogtoConfig | None:
    obj = _object(source, problems, "logto")
    _unknown_fields(problems, "logto", obj, _LOGTO_FIELDS)
    mode = str(obj.get("mode", "container"))
    if mode not in ("container", "external"):
        problems.add("logto.mode", "must be \"container\" (the stack runs Logto) or \"external\" (Logto Cloud or an existing Logto)")
        return None
    tenant_id = obj.get("tenantId")
    if tenant_id is not None:
        tenant_id = str(tenant_id)
        if not re.match(r"^[a-z0-9-]{1,64}$", tenant_id):
            problems.add("logto.tenantId", "must be the Logto tenant id (lower-case letters, digits, '-')")
            tenant_id = None
    raw_endpoint = obj.get("endpoint")
    if raw_endpoint is None and tenant_id and mode == "external":
        raw_endpoint = f"https://{tenant_id}.logto.app"
    endpoint = _origin(
        raw_endpoint, "logto.endpoint", problems, require_https, required=True,
        example="https://auth.example.com",
    )
    admin_endpoint = _origin(
        obj.get("adminEndpoint"), "logto.adminEndpoint", problems, require_https,
        required=(mode == "container"), example="https://auth-admin.example.com",
    )
    if endpoint and admin_endpoint and endpoint.url == admin_endpoint.url:
        problems.add("logto.adminEndpoint", "must differ from logto.endpoint (Logto serves the admin console on its own port)")
    api_raw = obj.get("apiEndpoint")
    api_endpoint = _origin(api_raw, "logto.apiEndpoint", problems, False, required=False, example="http://127.0.0.1:3001")
    image = LOGTO_IMAGE
    if "image" in obj:
        image = _pinned_image(problems, "logto.image", obj["image"]) or LOGTO_IMAGE
    default_trust = endpoint is not None and endpoint.scheme == "https"
    trust = _parse_bool(obj.get("trustProxyHeader"), "logto.trustProxyHeader", problems, default_trust)

    m2m_id = m2m_secret = None
    if mode == "external":
        m2m_id = source.get_secret("logtoM2mClientId")
        m2m_secret = source.get_secret("logtoM2mClientSecret")
        for key, value in (("logtoM2mClientId", m2m_id), ("logtoM2mClientSecret", m2m_secret)):
            if value is None:
                problems.add(
                    key,
                    "is required when logto.mode is \"external\" (an M2M application with the role "
                    f"'Logto Management API access'): run `{secret_set_command(key, stack)}`",
                )
    else:
        if tenant_id not in (None, "default"):
            problems.add("logto.tenantId", "only applies to an external Logto (Logto Cloud); remove it or set logto.mode to \"external\"")
        for origin, key in ((endpoint, "logto.endpoint"), (admin_endpoint, "logto.adminEndpoint")):
            if origin is not None and origin.is_localhost and not origin.explicit_port:
                problems.add(key, f"a *.localhost URL needs an explicit port, e.g. 'http://{origin.host}:3001'")
                return None
        if endpoint and admin_endpoint and endpoint.is_localhost and admin_endpoint.is_localhost:
            if endpoint.port == admin_endpoint.port:
                problems.add("logto.adminEndpoint", "must use a different port from logto.endpoint")
    if endpoint is None:
        return None
    return LogtoConfig(
        mode=mode,
        endpoint=endpoint,
        admin_endpoint=admin_endpoint,
        image=image,
        trust_proxy_header=trust,
        tenant_id=tenant_id,
        api_endpoint=api_endpoint.url if api_endpoint else endpoint.url,
        api_endpoint_explicit=api_endpoint is not None,
        m2m_client_id=m2m_id,
        m2m_client_secret=m2m_secret,
    )


_POSTGRES_FIELDS = {"mode", "image"}


def _postgres(
    source: ConfigSource, problems: Problems, stack: str, gen: int, logto: LogtoConfig | None
) -> PostgresConfig | None:
    obj = _object(source, problems, "postgres")
    _unknown_fields(problems, "postgres", obj, _POSTGRES_FIELDS)
    mode = str(obj.get("mode", "container"))
    if mode not in ("container", "external"):
        problems.add("postgres.mode", "must be \"container\" (the stack runs Postgres) or \"external\" (connection strings from secret config)")
        return None
    image = POSTGRES_IMAGES[gen]
    if "image" in obj:
        if mode == "external":
            problems.add("postgres.image", "only applies when postgres.mode is \"container\"; remove it")
        else:
            image = _pinned_image(problems, "postgres.image", obj["image"]) or image
    command: tuple[str, ...] = ()
    if mode == "container" and "paradedb" in split_image(image)[0]:
        # The same list as the image's own postgresql.conf: its init script runs CREATE EXTENSION pg_cron,
        # which fails on a new volume unless pg_cron is preloaded (LobeChat's compose, which preloads
        # pg_search alone, drops it).
        command = ("postgres", "-c", "shared_preload_libraries=pg_search,pg_cron,pg_stat_statements")
    elif mode == "container" and gen == 2:
        problems.add(
            "postgres.image",
            f"LobeChat 2.x needs the pg_search extension (from 2.1.40): use a ParadeDB image such as "
            f"'{POSTGRES_IMAGES[2]}', or remove the setting",
        )
    logto_url = lobechat_url = None
    if mode == "external":
        lobechat_url = source.get_secret("postgresLobechatUrl")
        needed = [("postgresLobechatUrl", lobechat_url, "LobeChat's database")]
        if logto is None or logto.mode == "container":
            logto_url = source.get_secret("postgresLogtoUrl")
            needed.append(("postgresLogtoUrl", logto_url, "Logto's database"))
        for key, value, what in needed:
            if value is None:
                problems.add(
                    key,
                    f"is required when postgres.mode is \"external\" ({what}, "
                    f"postgresql://user:password@host:5432/dbname): run `{secret_set_command(key, stack)}`",
                )
                continue
            try:
                libpq_environment(source.peek_secret(key) or "")
            except ValueError as error:
                # The message never quotes the URL: it holds the database password.
                problems.add(
                    key,
                    f"is not a usable PostgreSQL URL ({what}): it {error}; expected "
                    f"postgresql://user:password@host:5432/dbname: run `{secret_set_command(key, stack)}`",
                )
    return PostgresConfig(mode=mode, image=image, command=command,
                          logto_database_url=logto_url, lobechat_database_url=lobechat_url)


def _sso_providers(source: ConfigSource, problems: Problems, stack: str, gen: int) -> list[SsoProvider]:
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


def _auth(source: ConfigSource, problems: Problems, stack: str, gen: int) -> pulumi.Input[str] | None:
    obj = _object(source, problems, "auth")
    _unknown_fields(problems, "auth", obj, {"mode", "accessCode"})
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
    if not _parse_bool(obj.get("accessCode"), "auth.accessCode", problems, False):
        return None
    if gen == 2:
        problems.add("auth.accessCode", "LobeChat 2.x refuses ACCESS_CODE (the container exits); remove it")
        return None
    value = source.get_secret("accessCode")
    if value is None:
        problems.add("accessCode", f"is required when auth.accessCode is true: run `{secret_set_command('accessCode', stack)}`")
        return None
    pulumi.log.warn(
        f"{full_key('auth.accessCode')}: LobeChat 1.x ignores ACCESS_CODE for users signed in through SSO; "
        "it only guards use without signing in"
    )
    return value


_PUBLISH_FIELDS = {"enabled", "bindAddress", "lobechatPort", "logtoPort", "logtoAdminPort"}


def _publish(
    source: ConfigSource, problems: Problems, lobechat_url: Origin | None, logto: LogtoConfig | None
) -> PublishConfig | None:
    obj = _object(source, problems, "publish")
    _unknown_fields(problems, "publish", obj, _PUBLISH_FIELDS)
    enabled = _parse_bool(obj.get("enabled"), "publish.enabled", problems, True)
    bind = str(obj.get("bindAddress", "127.0.0.1"))
    if not re.match(r"^(\d{1,3}(\.\d{1,3}){3}|::1?|\[::1?\])$", bind):
        problems.add("publish.bindAddress", "must be an IP address such as 127.0.0.1 (only the local proxy) or 0.0.0.0 (every interface)")

    def port(name: str, origin: Origin | None, default: int) -> int:
        # For *.localhost URLs the browser connects to the URL's port, so the published port must be it.
        wanted = origin.port if origin is not None and origin.is_localhost else default
        raw = obj.get(name)
        if raw is None:
            return wanted
        try:
            value = int(raw)
        except (TypeError, ValueError):
            problems.add(f"publish.{name}", "must be a port number (1-65535)")
            return wanted
        if not 1 <= value <= 65535:
            problems.add(f"publish.{name}", "must be a port number (1-65535)")
            return wanted
        if origin is not None and origin.is_localhost and value != origin.port:
            problems.add(f"publish.{name}", f"must equal the port of the *.localhost URL it serves ({origin.port}); remove it")
        return value

    lobechat_port = port("lobechatPort", lobechat_url, LOBECHAT_CONTAINER_PORT)
    logto_port = port("logtoPort", logto.endpoint if logto else None, LOGTO_DEFAULT_PORT)
    admin_port = port("logtoAdminPort", logto.admin_endpoint if logto else None, LOGTO_DEFAULT_ADMIN_PORT)
    # Equal *.localhost ports of Logto's two URLs are already reported on logto.adminEndpoint.
    same_logto_urls = logto is not None and logto.endpoint.is_localhost and logto.admin_endpoint is not None \
        and logto.admin_endpoint.is_localhost and logto.endpoint.port == logto.admin_endpoint.port
    if enabled and not same_logto_urls:
        used = [lobechat_port] + ([logto_port, admin_port] if logto is not None and logto.mode == "container" else [])
        if len(set(used)) != len(used):
            problems.add("publish", "the published ports of LobeChat, Logto and the Logto admin console must differ")
    return PublishConfig(enabled, bind, lobechat_port, logto_port, admin_port)


def _docker_host(source: ConfigSource, problems: Problems) -> str | None:
    raw = source.get("dockerHost")
    if raw is None or not raw.strip():
        return None
    host = raw.strip()
    if not re.match(r"^(ssh|tcp|unix|npipe)://\S+$", host):
        problems.add("dockerHost", "must be a Docker host URL such as ssh://deploy@docker.example.com or unix:///var/run/docker.sock")
        return None
    return host


def _extra_env(
    source: ConfigSource, problems: Problems, gen: int, sso: list[SsoProvider]
) -> tuple[dict[str, str], dict[str, pulumi.Input[str]]]:
    # Imported here: lobechat_env imports this module for the types.
    from components.lobechat_env import forbidden_2x_reason, managed_env_names

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

    obj = _object(source, problems, "extraEnv")
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


def _webhook(source: ConfigSource, problems: Problems) -> bool:
    obj = _object(source, problems, "webhook")
    _unknown_fields(problems, "webhook", obj, {"enabled"})
    return _parse_bool(obj.get("enabled"), "webhook.enabled", problems, True)
