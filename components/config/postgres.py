"""The ``postgres`` section and the external databases' secret connection strings."""

from __future__ import annotations

from components.config.errors import Problems, secret_set_command
from components.config.fields import pinned_image, read_object, read_secret, split_image, unknown_fields
from components.config.sources import ConfigSource
from components.config.stage import POSTGRES_IMAGES, LogtoConfig, PostgresConfig
from components.postgres_url import libpq_environment

KEYS = frozenset({"postgres", "postgresLogtoUrl", "postgresLobechatUrl"})

_POSTGRES_FIELDS = {"mode", "image"}


def read_postgres(
    source: ConfigSource, problems: Problems, stack: str, gen: int, logto: LogtoConfig | None
) -> PostgresConfig | None:
    obj = read_object(source, problems, "postgres")
    unknown_fields(problems, "postgres", obj, _POSTGRES_FIELDS)
    mode = str(obj.get("mode", "container"))
    if mode not in ("container", "external"):
        problems.add("postgres.mode", "must be \"container\" (the stack runs Postgres) or \"external\" (connection strings from secret config)")
        return None
    image = POSTGRES_IMAGES[gen]
    if "image" in obj:
        if mode == "external":
            problems.add("postgres.image", "only applies when postgres.mode is \"container\"; remove it")
        else:
            image = pinned_image(problems, "postgres.image", obj["image"]) or image
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
        needed = [("postgresLobechatUrl", "LobeChat's database")]
        if logto is None or logto.mode == "container":
            needed.append(("postgresLogtoUrl", "Logto's database"))
        urls: dict[str, object] = {}
        for key, what in needed:
            present, value = read_secret(source, problems, key, stack)
            if not present:
                problems.add(
                    key,
                    f"is required when postgres.mode is \"external\" ({what}, "
                    f"postgresql://user:password@host:5432/dbname): run `{secret_set_command(key, stack)}`",
                )
                continue
            if value is None:
                continue
            try:
                connection = libpq_environment(source.peek_secret(key) or "")
                if not connection.get("PGHOST"):
                    raise ValueError("has no host (postgresql://user:password@host:5432/dbname)")
            except ValueError as error:
                # The message never quotes the URL: it holds the database password.
                problems.add(
                    key,
                    f"is not a usable PostgreSQL URL ({what}): it {error}; expected "
                    f"postgresql://user:password@host:5432/dbname: run `{secret_set_command(key, stack)}`",
                )
                continue
            urls[key] = value
        lobechat_url = urls.get("postgresLobechatUrl")
        logto_url = urls.get("postgresLogtoUrl")
    return PostgresConfig(mode=mode, image=image, command=command,
                          logto_database_url=logto_url, lobechat_database_url=lobechat_url)


