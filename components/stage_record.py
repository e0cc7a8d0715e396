"""What last ran on a stage's database, kept in the Pulumi state: the guard of every data-changing move.

``StageRecord`` is a dynamic resource whose inputs are the Postgres major and data volume, the Logto
and LobeChat images, and the fingerprint of the secrets the data depends on. The engine calls its
``check`` with the previous inputs (``olds``) before anything is changed, so a refusal there stops
``pulumi up`` (and ``preview``) with one clear message and nothing touched:

- a new Postgres major on the same data volume (the new server cannot open the old data);
- a new major on a new volume without ``dataSafety.restoreFrom`` (the stage would come up empty);
- an older ``logto.image`` or ``lobechatImage`` than the one that last ran (their migrations are
  forward-only), unless ``dataSafety.allowDowngrade`` names that version for this run.

A changed volume name (a ``resourcePrefix`` change, say) leaves the old volume behind: the record keeps
it in ``orphaned_volumes``, and the program warns about every one on each run.

Its ``delete`` is the teardown guard: ``pulumi destroy`` refuses until ``dataSafety.teardownExported``
equals the stage's ``rebuild_fingerprint`` (set after saving the ``rebuildSecrets`` output), because
the destroy forgets the secrets the kept data volume needs. The record depends on those secrets, so
it is deleted before them, and its refusal keeps them in the state.

The provider keeps no state of its own and lives in this importable module (the engine pickles it).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.config.data_safety import image_version

_RECORDED = ("postgres_major", "data_volume", "logto_image", "lobechat_image")
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's placeholder for a value not known yet
_NAME = {"logto": "logto.image", "lobechat": "lobechatImage"}


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _known(value: Any) -> bool:
    return value is not None and value != _UNKNOWN


def major_upgrade_steps(old: Any, new: Any, volume: str, stack: str) -> str:
    """The exact steps of a safe major upgrade (also in the README)."""
    new_volume = f"{volume}-pg{new}"
    return (
        f"the data volume '{volume}' holds PostgreSQL {old} data and this run would start PostgreSQL {new} on "
        f"it, which cannot open it (the stage would stay down). Nothing was changed. To keep the stage on "
        f"{old}: set `pulumi config set --path lobechat-logto:dataSafety.postgresMajor {old} --stack {stack}`. "
        f"To upgrade: (1) docker stop the LobeChat and Logto containers; (2) take a snapshot: run the "
        f"snapshotCommand stack output and note the name it prints; (3) `pulumi config set --path "
        f"lobechat-logto:dataSafety.postgresMajor {new}`, `pulumi config set --path "
        f"lobechat-logto:dataSafety.dataVolume {new_volume}` and `pulumi config set --path "
        f"lobechat-logto:dataSafety.restoreFrom <name>` (all with --stack {stack}); (4) pulumi up: a new "
        f"PostgreSQL {new} starts on the new volume, the snapshot is restored into it, then Logto and LobeChat "
        f"start. The old volume '{volume}' is kept until you remove it (docker volume rm {volume})"
    )


class StageRecordProvider(ResourceProvider):
    """Refuses moves that lose data (``check``) and a teardown before the rebuild secrets were saved (``delete``)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        stack = news.get("stack") or "<stack>"
        if olds and _known(olds.get("postgres_major")) and _known(news.get("postgres_major")):
            old_major, new_major = olds["postgres_major"], news["postgres_major"]
            same_volume = olds.get("data_volume") == news.get("data_volume")
            if old_major != new_major and same_volume:
                failures.append(CheckFailure("postgres_major", major_upgrade_steps(old_major, new_major, olds.get("data_volume"), stack)))
            elif old_major != new_major and not news.get("restore_from"):
                failures.append(CheckFailure(
                    "restore_from",
                    f"PostgreSQL {new_major} on the new volume '{news.get('data_volume')}' would start with an empty "
                    f"database while the data stays in '{olds.get('data_volume')}': set dataSafety.restoreFrom to "
                    "the snapshot taken before the upgrade (README: 'Upgrade the Postgres major version')",
                ))
        allow = news.get("allow_downgrade") or {}
        for component in ("logto", "lobechat"):
            key = f"{component}_image"
            old_image, new_image = olds.get(key), news.get(key)
            if not (_known(old_image) and _known(new_image)) or old_image == new_image:
                continue
            old_version, new_version = image_version(old_image), image_version(new_image)
            if old_version is None or new_version is None or new_version >= old_version:
                continue
            if allow.get(component) == _version_text(new_version):
                continue
            failures.append(CheckFailure(
                key,
                f"{_NAME[component]} '{new_image}' is older than '{old_image}', which last ran on this stage's "
                f"database; its migrations are forward-only, so the older version would run on a schema it does "
                f"not know. The way back is restoring the snapshot taken before the upgrade (README: 'Restore a "
                f"snapshot'). To run the older version anyway, for this run: `pulumi config set --path "
                f"lobechat-logto:dataSafety.allowDowngrade.{component} {_version_text(new_version)} --stack {stack}`",
            ))
        return CheckResult(news, failures)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs={**props, "had_previous": False, "orphaned_volumes": []})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = set(olds) | set(news)
        ignored = {"had_previous", "orphaned_volumes"}
        changed = sorted(k for k in keys - ignored if olds.get(k) != news.get(k))
        # had_previous turns True with the first update: the first run that changes something the
        # data depends on (an unchanged run updates nothing, and needs no snapshot).
        return DiffResult(changes=bool(changed), replaces=[])

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        orphaned = list(olds.get("orphaned_volumes") or [])
        old_volume = olds.get("data_volume")
        if old_volume and old_volume != news.get("data_volume") and old_volume not in orphaned:
            orphaned.append(old_volume)
        orphaned = [v for v in orphaned if v != news.get("data_volume")]
        return UpdateResult(outs={**olds, **news, "had_previous": True, "orphaned_volumes": orphaned})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        fingerprint = props.get("rebuild_fingerprint")
        if fingerprint and props.get("teardown_exported") != fingerprint:
            stack = props.get("stack") or "<stack>"
            raise Exception(
                "refusing to destroy this stage before its rebuild secrets are saved: the data volume "
                f"'{props.get('data_volume')}' is kept, but the Postgres password and KEY_VAULTS_SECRET it needs "
                "would be gone from the state. Save them: `pulumi stack output --show-secrets rebuildSecrets "
                f"--stack {stack} > rebuild-{stack}.json` (keep it somewhere safe), then `pulumi config set --path "
                f"lobechat-logto:dataSafety.teardownExported {fingerprint} --stack {stack}`, `pulumi up`, and "
                "destroy again (README: 'Tear down a stage')"
            )


def orphan_warning(volumes: list[str]) -> str | None:
    """The warning for data volumes this stage no longer uses (None when there is none)."""
    if not volumes:
        return None
    listed = ", ".join(f"'{v}'" for v in volumes)
    return (
        f"data volume(s) {listed} are no longer used by this stage (resourcePrefix or dataSafety.dataVolume "
        "changed) but still hold its old data; they are kept. Move back (set the old name) or, once the data "
        "is restored elsewhere, remove them with docker volume rm"
    )


_SAFE = re.compile(r"[^A-Za-z0-9_.:/@-]")


class StageRecord(Resource, module="datasafety", name="StageRecord"):
    """The record of what last ran on the stage's database (see the module docstring).

    Outputs: ``had_previous`` (False on the stage's first run), ``orphaned_volumes``.
    """

    had_previous: pulumi.Output[bool]
    orphaned_volumes: pulumi.Output[list[str]]

    def __init__(
        self,
        resource_name: str,
        *,
        stack: str,
        postgres_major: int | None,
        postgres_image: str | None,
        data_volume: str | None,
        logto_image: str | None,
        lobechat_image: str,
        restore_from: str | None,
        allow_downgrade: dict[str, str],
        rebuild_fingerprint: pulumi.Input[str] | None,
        teardown_exported: str | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "stack": stack,
            "postgres_major": postgres_major,
            "postgres_image": postgres_image,
            "data_volume": data_volume,
            "logto_image": logto_image,
            "lobechat_image": lobechat_image,
            "restore_from": restore_from,
            "allow_downgrade": dict(allow_downgrade),
            "rebuild_fingerprint": rebuild_fingerprint,
            "teardown_exported": teardown_exported,
            "had_previous": None,
            "orphaned_volumes": None,
        }
        super().__init__(StageRecordProvider(), resource_name, props, opts)
