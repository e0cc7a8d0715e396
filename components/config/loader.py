"""Reading and validating a stage's configuration, before any resource is declared.

Every key lives in the Pulumi config namespace ``lobechat-logto`` (``stacks/Pulumi.<stack>.yaml``).
``load_stage_config`` reads them all, checks them all, and raises one :class:`ConfigError` that lists
every bad value, each naming its full key and saying what to do. Messages never contain a secret value:
secret keys are only ever checked for presence and shape.

Each section's rules live in its own module beside it (``lobechat``, ``logto``, ``postgres``, ``sso``,
``auth``, ``publish``, ``docker_host``, ``docker_engine``, ``extra_env``, ``webhook``, ``storage``; shared checks in
``fields``); this
module only orders them. A new section: a module with ``KEYS`` and a ``read_...`` function, one line in
``SECTION_KEYS`` and one call below.

URL rule (decided here, documented in the README): URL keys take an origin (``scheme://host[:port]``).
A lone trailing ``/`` is removed, except on ``lobechatUrl`` for LobeChat 2.x, where it is an error
because 2.x exits when ``APP_URL`` ends in ``/`` and the config should say what runs. Any other path,
a query, a fragment or credentials in a URL are errors.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace

from components.config import (
    auth,
    docker_engine,
    docker_host,
    extra_env,
    front,
    lobechat,
    logto,
    memory,
    postgres,
    publish,
    sso,
    storage,
    webhook,
)
from components.config import data_safety, logto_database, verification
from components.config import rotation
from components.config.errors import ConfigError, Problems
from components.config.fields import parse_bool, split_image  # noqa: F401  (split_image: public name)
from components.config.sources import ConfigSource
from components.config.stage import LobeChatUrls, StageConfig

_RESOURCE_PREFIX = re.compile(r"[a-z0-9][a-z0-9_.-]{0,40}")

_GENERAL_KEYS = frozenset({"requireHttps", "resourcePrefix", "proxyOnDockerHost"})

SECTION_KEYS = (
    _GENERAL_KEYS,
    lobechat.KEYS,
    logto.KEYS,
    postgres.KEYS,
    sso.KEYS,
    auth.KEYS,
    publish.KEYS,
    docker_host.KEYS,
    docker_engine.KEYS,
    extra_env.KEYS,
    webhook.KEYS,
    front.KEYS,
    memory.KEYS,
    verification.KEYS,
    logto_database.KEYS,
    storage.KEYS,
    data_safety.TOP_LEVEL_KEYS,
    rotation.KEYS,
)

TOP_LEVEL_KEYS = frozenset().union(*SECTION_KEYS)
"""Every key this package reads (without the namespace)."""


def load_stage_config(source: ConfigSource, stack: str) -> StageConfig:
    """Read and validate every key of one stage; raise :class:`ConfigError` listing all bad values."""
    problems = Problems()
    _unknown_keys(source, problems)

    require_https = parse_bool(source.get("requireHttps"), "requireHttps", problems, default=(stack == "prod"))
    if stack == "prod" and not require_https:
        problems.add("requireHttps", "cannot be turned off on the stack 'prod' (sign-in over plain http leaks sessions); remove it")
        require_https = True
    generation = lobechat.read_generation(source, problems)
    gen = generation or 1  # generation-dependent checks still run when the generation is bad

    lobechat_url = lobechat.read_lobechat_url(source, problems, require_https, gen)
    lobechat_image = lobechat.read_lobechat_image(source, problems, gen)
    logto_config = logto.read_logto(source, problems, stack, require_https)
    postgres_config = postgres.read_postgres(source, problems, stack, gen, logto_config)
    safety = data_safety.load_data_safety(source, problems, stack)
    if postgres_config is not None and postgres_config.mode == "container":
        postgres_config = data_safety.apply_major_pin(source, problems, safety, gen, postgres_config)
    sso_providers = sso.read_sso_providers(source, problems, stack, gen, require_https)
    access_code = auth.read_auth(source, problems, stack, gen)
    publish_config = publish.read_publish(source, problems, lobechat_url, logto_config, require_https)
    if logto_config is not None and publish_config is not None:
        logto_config = replace(logto_config, api_endpoint=logto.api_endpoint_for(logto_config, publish_config))
    docker_host_url = docker_host.read_docker_host(source, problems)
    storage_config = storage.read_storage(source, problems, stack, require_https, publish_config)
    extra_plain, extra_secret = extra_env.read_extra_env(source, problems, gen, sso_providers, stack)
    webhook_enabled = webhook.read_webhook(source, problems)
    rotation_config = rotation.read_rotation(source, problems, logto_config, webhook_enabled, postgres_config)
    proxy_on_docker_host = parse_bool(source.get("proxyOnDockerHost"), "proxyOnDockerHost", problems, False)
    health_start_interval = docker_engine.read_health_start_interval(source, problems)
    verification_config = verification.read_verification(source, problems)
    logto_database_config = logto_database.read_logto_database(source, problems)
    resource_prefix = _resource_prefix(source, problems, stack)
    front_config = front.read_front(
        source, problems, stack, lobechat_url=lobechat_url, logto=logto_config, proxy_on_docker_host=proxy_on_docker_host,
        storage=storage_config,
    )
    memory_limits = memory.read_memory_limits(source, problems)

    if problems.count():
        raise ConfigError(stack, problems.items)
    assert generation is not None and lobechat_url is not None and logto_config is not None
    assert postgres_config is not None and publish_config is not None
    return StageConfig(
        stack=stack,
        generation=generation,
        lobechat_image=lobechat_image,
        lobechat_url=lobechat_url,
        urls=LobeChatUrls(lobechat_url.url),
        logto=logto_config,
        postgres=postgres_config,
        sso_providers=tuple(sso_providers),
        access_code=access_code,
        publish=publish_config,
        docker_host=docker_host_url,
        extra_env=extra_plain,
        extra_secret_env=extra_secret,
        webhook_enabled=webhook_enabled,
        require_https=require_https,
        resource_prefix=resource_prefix,
        proxy_on_docker_host=proxy_on_docker_host,
        front=front_config,
        data_safety=safety,
        health_start_interval=health_start_interval,
        memory_limits=memory_limits,
        verification=verification_config,
        logto_database=logto_database_config,
        storage=storage_config,
        rotation=rotation_config,
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


def _resource_prefix(source: ConfigSource, problems: Problems, stack: str) -> str:
    resource_prefix = source.get("resourcePrefix") or f"lobechat-logto-{stack}"
    if not _RESOURCE_PREFIX.fullmatch(resource_prefix):
        problems.add(
            "resourcePrefix",
            "must be lower-case letters, digits, '.', '_' or '-' (at most 41 characters); it prefixes "
            "Docker container, network and volume names",
        )
    return resource_prefix
