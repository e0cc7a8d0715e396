"""Config of everything that keeps users' data: the Postgres major pin, backups, rebuild and downgrades.

Keys (namespace ``lobechat-logto``):

``dataSafety`` (mapping)
    ``postgresMajor``: the PostgreSQL major version of the stage's data (the stack files pin it). The
    default image follows it (``pgvector/pgvector:pg<N>`` for LobeChat 1.x, ParadeDB ``-pg<N>`` for 2.x),
    so a new ``lobechatGeneration`` never moves the data to another major by itself.
    ``dataVolume``: the data volume's name (default ``<resourcePrefix>-postgres-data``); a new name is a
    new, empty volume, used by the major upgrade together with ``restoreFrom``.
    ``restoreFrom``: a snapshot name (in the backup volume) restored into a new, empty data volume
    before Logto and LobeChat start.
    ``adoptVolume``: start on an existing data volume this stack did not create (a rebuild), together
    with the previous secrets below.
    ``allowDowngrade``: ``{logto: <version>, lobechat: <version>}``: allow moving that image to that older
    version for the run that does it (the documented way back is a restore instead).
    ``teardownExported``: the ``rebuildFingerprint`` output, set after saving ``rebuildSecrets``;
    ``pulumi destroy`` refuses until it matches.
``backups`` (mapping)
    ``enabled`` (off on dev, on elsewhere), ``intervalHours`` (24), ``keep`` (14): scheduled snapshots
    into the backup volume ``<resourcePrefix>-backups``.
``rebuildPostgresPassword``, ``rebuildKeyVaultsSecret`` (secret)
    The previous stage's secrets (from its ``rebuildSecrets`` output), used instead of generated ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pulumi

from components.config.errors import Problems, full_key, secret_set_command
from components.config.fields import parse_bool, read_object, unknown_fields
from components.config.sources import ConfigSource

TOP_LEVEL_KEYS = frozenset({"dataSafety", "backups", "rebuildPostgresPassword", "rebuildKeyVaultsSecret"})
DATA_SAFETY_FIELDS = {"postgresMajor", "dataVolume", "restoreFrom", "adoptVolume", "allowDowngrade", "teardownExported"}
BACKUP_FIELDS = {"enabled", "intervalHours", "keep"}
SUPPORTED_MAJORS = (14, 15, 16, 17, 18)
PARADEDB_VERSION = "0.25.5"

DEFAULT_MAJOR = {1: 16, 2: 17}
"""The major a new stage of each generation starts on (the generation's default image)."""

_SNAPSHOT_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-z0-9-]+$")
_VOLUME_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,100}$")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class BackupConfig:
    """Scheduled backups of one stage (``backups``)."""

    enabled: bool
    interval_hours: float
    keep: int

    @property
    def interval_seconds(self) -> int:
        return int(self.interval_hours * 3600)


@dataclass(frozen=True)
class DataSafetyConfig:
    """What protects a stage's data; see the module docstring for each key."""

    postgres_major: int | None
    data_volume: str | None
    restore_from: str | None
    adopt_volume: bool
    allow_downgrade: dict[str, str]
    teardown_exported: str | None
    backups: BackupConfig
    rebuild_postgres_password: pulumi.Input[str] | None = None
    rebuild_key_vaults_secret: pulumi.Input[str] | None = None
    warnings: tuple[str, ...] = field(default=())


def postgres_image_for(generation: int, major: int) -> str:
    """The default Postgres image of a generation at a major version."""
    if generation == 2:
        return f"paradedb/paradedb:{PARADEDB_VERSION}-pg{major}"
    return f"pgvector/pgvector:pg{major}"


def image_major(image: str) -> int | None:
    """The PostgreSQL major an image tag names (``pg16``, ``0.25.5-pg17``, ``postgres:16.4``), or None."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
    found = re.search(r"pg(\d{2})(?!\d)", tag)
    if found:
        return int(found.group(1))
    found = re.match(r"^(\d{2})(?:\.\d+)*(?:-|$)", tag)
    return int(found.group(1)) if found else None


def image_version(image: str) -> tuple[int, ...] | None:
    """The version an image tag names (``svhd/logto:1.43.0`` -> (1, 43, 0)), or None (digest, ``latest``)."""
    tag = image.rsplit("/", 1)[-1].partition(":")[2].partition("@")[0]
    found = _VERSION.match(tag)
    if not found:
        return None
    return tuple(int(part) for part in found.groups() if part is not None)


def _mapping(source: ConfigSource, problems: Problems, key: str, known: set[str]) -> dict[str, Any]:
    obj = read_object(source, problems, key)
    unknown_fields(problems, key, obj, known)
    return obj


def load_data_safety(source: ConfigSource, problems: Problems, stack: str) -> DataSafetyConfig:
    """Read and check ``dataSafety``, ``backups`` and the rebuild secrets."""
    obj = _mapping(source, problems, "dataSafety", DATA_SAFETY_FIELDS)
    major: int | None = None
    if obj.get("postgresMajor") is not None:
        try:
            major = int(str(obj["postgresMajor"]))
        except ValueError:
            major = None
        if major not in SUPPORTED_MAJORS:
            problems.add("dataSafety.postgresMajor", f"must be one of {', '.join(map(str, SUPPORTED_MAJORS))} (the PostgreSQL major version of the stage's data)")
            major = None
    volume = obj.get("dataVolume")
    if volume is not None and not _VOLUME_NAME.match(str(volume)):
        problems.add("dataSafety.dataVolume", "must be a Docker volume name (letters, digits, '_', '.', '-')")
        volume = None
    restore_from = obj.get("restoreFrom")
    if restore_from is not None and not _SNAPSHOT_NAME.match(str(restore_from)):
        problems.add("dataSafety.restoreFrom", "must be a snapshot name such as 20261201T120000Z-pre-change (the preChangeSnapshot output, or ls of the backup volume)")
        restore_from = None
    if restore_from is not None and volume is None:
        problems.add("dataSafety.restoreFrom", "restores only into a new, empty volume: set dataSafety.dataVolume to a new name too")
    allow: dict[str, str] = {}
    raw_allow = obj.get("allowDowngrade") or {}
    if not isinstance(raw_allow, dict) or set(raw_allow) - {"logto", "lobechat"}:
        problems.add("dataSafety.allowDowngrade", "must map logto and/or lobechat to the older version this run moves to, e.g. {logto: 1.37.1}")
    else:
        allow = {k: str(v) for k, v in raw_allow.items()}
    exported = obj.get("teardownExported")

    backups_obj = _mapping(source, problems, "backups", BACKUP_FIELDS)
    enabled = parse_bool(backups_obj.get("enabled"), "backups.enabled", problems, default=(stack != "dev"))
    interval = 24.0
    if backups_obj.get("intervalHours") is not None:
        try:
            interval = float(backups_obj["intervalHours"])
        except (TypeError, ValueError):
            interval = -1
        if not 0.25 <= interval <= 24 * 31:
            problems.add("backups.intervalHours", "must be a number of hours from 0.25 to 744")
            interval = 24.0
    keep = 14
    if backups_obj.get("keep") is not None:
        try:
            keep = int(str(backups_obj["keep"]))
        except ValueError:
            keep = 0
        if not 1 <= keep <= 1000:
            problems.add("backups.keep", "must be a whole number of backups to keep, from 1 to 1000")
            keep = 14

    password = source.get_secret("rebuildPostgresPassword")
    key_vaults = source.get_secret("rebuildKeyVaultsSecret")
    adopt = parse_bool(obj.get("adoptVolume"), "dataSafety.adoptVolume", problems, False)
    if (password is None) != (key_vaults is None):
        missing = "rebuildKeyVaultsSecret" if key_vaults is None else "rebuildPostgresPassword"
        problems.add(missing, f"a rebuild needs both previous secrets (from the old stage's rebuildSecrets output): run `{secret_set_command(missing, stack)}`")
    if adopt and password is None:
        problems.add(
            "dataSafety.adoptVolume",
            "adopting an existing data volume needs the secrets it was created with: run "
            f"`{secret_set_command('rebuildPostgresPassword', stack)}` and `{secret_set_command('rebuildKeyVaultsSecret', stack)}` "
            "with the values from the old stage's rebuildSecrets output",
        )
    return DataSafetyConfig(
        postgres_major=major,
        data_volume=str(volume) if volume is not None else None,
        restore_from=str(restore_from) if restore_from is not None else None,
        adopt_volume=adopt,
        allow_downgrade=allow,
        teardown_exported=str(exported) if exported is not None else None,
        backups=BackupConfig(enabled=enabled, interval_hours=interval, keep=keep),
        rebuild_postgres_password=password,
        rebuild_key_vaults_secret=key_vaults,
    )


def pinned_postgres_image(
    problems: Problems, data_safety: DataSafetyConfig, generation: int, image: str, image_explicit: bool
) -> tuple[str, int | None]:
    """The Postgres image the stage runs and its major, once the pin is applied.

    Without ``postgres.image`` the image follows ``dataSafety.postgresMajor`` (or the generation's
    default major); an explicit image must run the pinned major.
    """
    major = data_safety.postgres_major
    if not image_explicit:
        if major is None:
            return image, image_major(image)
        return postgres_image_for(generation, major), major
    found = image_major(image)
    if major is not None and found is not None and found != major:
        problems.add(
            "postgres.image",
            f"runs PostgreSQL {found} but {full_key('dataSafety.postgresMajor')} pins {major}; a major "
            "upgrade goes through a snapshot and a new volume (README: 'Upgrade the Postgres major version')",
        )
    if found is None and major is None:
        problems.add("postgres.image", f"its tag does not name a PostgreSQL major version: set {full_key('dataSafety.postgresMajor')}")
    return image, major if major is not None else found


def apply_major_pin(source: ConfigSource, problems: Problems, config: DataSafetyConfig, generation: int, postgres: Any) -> Any:
    """``postgres`` (a container PostgresConfig) with the pinned image and its major."""
    from dataclasses import replace

    try:
        raw = source.get_object("postgres") or {}
    except Exception:
        raw = {}
    explicit = isinstance(raw, dict) and "image" in raw
    image, major = pinned_postgres_image(problems, config, generation, postgres.image, explicit)
    return replace(postgres, image=image, major=major)
