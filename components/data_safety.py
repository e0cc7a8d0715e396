"""The stage's data safety steps: the record, the backup volume, pre-change snapshots, scheduled backups,
restore into a new volume.

Order (every arrow is a dependency the engine honours):

    StageRecord ──> pre-change snapshot ──> volume check ──> Postgres ──> restore (restoreFrom) ──> Logto, LobeChat
                                          (components/postgres.py)

The snapshot is a one-shot container whose labels carry the Postgres, Logto and LobeChat images (and
the Postgres command): any change to one of them replaces it, so it runs again, and Postgres, Logto and
LobeChat take its outcome as a dependency, so the old containers still run (and are dumped) when it
does. Its outcome resolves only when the dump succeeded: a failed dump stops ``pulumi up`` before any
of them changes. The dump goes to the backup volume ``<prefix>-backups`` (protected, kept on delete);
the destination is one mount, so another (S3, issue 13) can take its place.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from components.backup_script import (
    BACKUP_MOUNT,
    SCRIPT_NAME,
    SCRIPT_PATH_IN_CONTAINER,
    backup_script,
    backup_script_sha256,
    claim_fingerprint,
    claim_parts,
    snapshot_name,
)
from components.config.data_safety import DataSafetyConfig
from components.container_labels import select_ids
from components.hardening import SECURITY_OPTS
from components.logto_bootstrap import SECRET_DIR_IN_CONTAINER, pgpass_line, readable_container_logs
from components.one_shot import ROLE_LABEL, one_shot_container, replace_target
from components.stage_record import StageRecord, orphan_warning

SNAPSHOT_TRIGGER_LABEL = "lobechat-logto.snapshot-trigger"
SCRIPT_HASH_LABEL = "lobechat-logto.backup-script-sha256"
STOP_GRACE_SECONDS = 60
"""How long Postgres (and Logto) get to stop cleanly before Docker kills them."""
_SCRIPT_COPY = f"{BACKUP_MOUNT}/.bin/{SCRIPT_NAME}"


class DataSafetyError(RuntimeError):
    """A data safety step failed; the message says why and what to do (never a secret)."""


def check_step_exit(step: str, exit_code: int | None, logs: str | None, urn: str = "") -> str:
    """Return the step's readable output when it exited 0; raise `DataSafetyError` otherwise."""
    output = readable_container_logs(logs)
    if exit_code == 0:
        return output
    meaning = {2: "it refused", 3: "a tool failed"}.get(exit_code or -1, "unexpected exit code")
    target = replace_target(urn, f"the {step} step")
    raise DataSafetyError(
        f"the {step} step exited with code {exit_code} ({meaning}); nothing after it was changed.\n"
        f"It said:\n{output or '(no output)'}\n"
        f"Fix the cause, then run the step again with: pulumi up --replace {target}"
    )


def snapshot_trigger(*parts: str) -> str:
    """The label that makes the snapshot run again whenever one of ``parts`` (images, command) changes."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


PGPASS_PATH = f"{SECRET_DIR_IN_CONTAINER}/pgpass"
"""The superuser's libpq password file in each backup step's container (uploaded, mode 0600)."""


def connection_env(host: str = "postgres", *, remove_passfile: bool = True) -> list[str]:
    """Where to connect and the password file: no secret (the password is in `pgpass_upload`'s file).

    One-shot steps remove the file when they end (``REMOVE_PGPASSFILE=1``), so their stopped
    containers hold no password; the long-running scheduled backups keep it (0600, not in its env).
    """
    env = [f"PGHOST={host}", "PGPORT=5432", "PGUSER=postgres", f"PGPASSFILE={PGPASS_PATH}", f"BACKUP_DIR={BACKUP_MOUNT}"]
    return [*env, "REMOVE_PGPASSFILE=1"] if remove_passfile else env


def pgpass_upload(password: pulumi.Input[str]) -> docker.ContainerUploadArgs:
    """The superuser password as a 0600 libpq password file at `PGPASS_PATH` (a Pulumi secret)."""
    content = pulumi.Output.secret(pulumi.Output.from_input(password).apply(pgpass_line))
    return docker.ContainerUploadArgs(file=PGPASS_PATH, content=content, permissions="0600")


def _one_shot(
    name: str,
    *,
    image: pulumi.Input[str],
    mode_args: list[str],
    envs: pulumi.Input[list[str]],
    password: pulumi.Input[str],
    labels: dict[str, pulumi.Input[str]],
    network_name: pulumi.Input[str],
    volumes: list[docker.ContainerVolumeArgs],
    copy_script: bool = False,
    memory_mb: int = 256,
    opts: pulumi.ResourceOptions,
) -> docker.Container:
    run = " ".join(["sh", SCRIPT_PATH_IN_CONTAINER, *mode_args])
    if copy_script:
        # A copy on the backup volume: the README's snapshot and restore commands run it from there.
        run = f"mkdir -p {BACKUP_MOUNT}/.bin && cp {SCRIPT_PATH_IN_CONTAINER} {_SCRIPT_COPY} && {run}"
    return one_shot_container(
        name,
        image=image,
        entrypoints=["sh", "-c", run],
        envs=envs,
        uploads=[docker.ContainerUploadArgs(file=SCRIPT_PATH_IN_CONTAINER, content=backup_script()), pgpass_upload(password)],
        labels={SCRIPT_HASH_LABEL: backup_script_sha256(), **labels},
        network_name=network_name,
        volumes=volumes,
        memory_mb=memory_mb,
        opts=opts,
    )


class DataSafety(pulumi.ComponentResource):
    """The record, backup volume and pre-change snapshot of one stage (before its Postgres).

    Outputs: ``before_postgres`` and ``before_apps`` (depend on them: they resolve only once the
    snapshot is safely written), ``snapshot_name``, ``had_previous``, ``claim``, ``fingerprint``,
    ``backup_volume``.
    """

    def __init__(
        self,
        resource_name: str,
        *,
        stack: str,
        name_prefix: str,
        config: DataSafetyConfig,
        postgres_image: str,
        postgres_command: Sequence[str],
        postgres_major: int | None,
        data_volume: str,
        logto_image: str | None,
        lobechat_image: str,
        network_name: pulumi.Input[str],
        password: pulumi.Input[str],
        key_vaults_secret: pulumi.Input[str],
        one_shot_memory_mb: int = 256,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:datasafety:DataSafety", resource_name, None, opts)
        self._config = config
        self._memory_mb = one_shot_memory_mb
        self._network_name = network_name
        self._password = password
        self._name_prefix = name_prefix
        child = pulumi.ResourceOptions(parent=self)

        # The claim: one digest per secret, so the volume check can tell a rotated password from a
        # changed KEY_VAULTS_SECRET (components/backup_script.py).
        self.claim = pulumi.Output.secret(
            pulumi.Output.all(password, key_vaults_secret).apply(lambda v: claim_parts(v[0], v[1]))
        )
        # A one-way digest of 190 random bits: safe to show, and the destroy guard asks for it. It is
        # also what volumes claimed before the two-part claims hold (the check's LEGACY_CLAIM).
        self.fingerprint = pulumi.Output.unsecret(
            pulumi.Output.all(password, key_vaults_secret).apply(lambda v: claim_fingerprint(v[0], v[1]))
        )
        self.record = StageRecord(
            f"{resource_name}-record",
            stack=stack,
            postgres_major=postgres_major,
            postgres_image=postgres_image,
            data_volume=data_volume,
            logto_image=logto_image,
            lobechat_image=lobechat_image,
            restore_from=config.restore_from,
            allow_downgrade=config.allow_downgrade,
            rebuild_fingerprint=self.fingerprint,
            teardown_exported=config.teardown_exported,
            opts=child,
        )
        self.had_previous = self.record.had_previous
        self.record.orphaned_volumes.apply(lambda v: _warn(orphan_warning(list(v or []))))

        self.tools_image = docker.RemoteImage(f"{resource_name}-tools-image", name=postgres_image, keep_locally=True, opts=child)
        self.backup_volume = docker.Volume(
            f"{resource_name}-backups",
            name=f"{name_prefix}-backups",
            labels=[docker.VolumeLabelArgs(label="lobechat-logto.volume", value="backups")],
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        self._backup_mount = docker.ContainerVolumeArgs(volume_name=self.backup_volume.name, container_path=BACKUP_MOUNT)
        envs = pulumi.Output.from_input(self.had_previous).apply(
            lambda had: [*connection_env(), f"EXPECT_SERVER={'1' if had else '0'}"]
        )
        trigger = snapshot_trigger(postgres_image, " ".join(postgres_command), logto_image or "", lobechat_image, data_volume)
        self.snapshot = _one_shot(
            f"{resource_name}-snapshot",
            image=self.tools_image.image_id,
            mode_args=["snapshot", "pre-change"],
            envs=envs,
            password=password,
            labels={SNAPSHOT_TRIGGER_LABEL: trigger, ROLE_LABEL: "pre-change-snapshot"},
            network_name=network_name,
            volumes=[self._backup_mount],
            copy_script=True,
            memory_mb=one_shot_memory_mb,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.record]),
        )
        outcome = pulumi.Output.all(self.snapshot.exit_code, self.snapshot.container_logs, self.snapshot.urn).apply(
            lambda v: check_step_exit("pre-change snapshot", v[0], v[1], v[2] or "")
        )
        self.snapshot_name = outcome.apply(lambda text: snapshot_name(text) or "none")
        self.before_postgres = outcome.apply(lambda _: self.snapshot)
        self.before_apps: list[pulumi.Input[pulumi.Resource]] = [self.before_postgres]
        self.register_outputs({"snapshot_name": self.snapshot_name, "fingerprint": self.fingerprint})

    def add_restore(self, postgres_ready: pulumi.Input[pulumi.Resource], image: pulumi.Input[str]) -> None:
        """With ``dataSafety.restoreFrom``: restore that snapshot into the new volume before the apps start."""
        name = self._config.restore_from
        if name is None:
            return
        self.restore = _one_shot(
            "data-safety-restore",
            image=image,
            mode_args=["restore", name],
            envs=connection_env(),
            password=self._password,
            labels={"lobechat-logto.restore-from": name, ROLE_LABEL: "restore"},
            network_name=self._network_name,
            volumes=[self._backup_mount],
            memory_mb=self._memory_mb,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres_ready]),
        )
        outcome = pulumi.Output.all(self.restore.exit_code, self.restore.container_logs, self.restore.urn).apply(
            lambda v: check_step_exit(f"restore of snapshot {name}", v[0], v[1], v[2] or "")
        )
        self.before_apps.append(outcome.apply(lambda _: self.restore))

    def add_schedule(self, postgres_ready: pulumi.Input[pulumi.Resource], image: pulumi.Input[str]) -> docker.Container | None:
        """The scheduled backup container (``backups.enabled``): a snapshot every interval, the newest ``keep`` kept."""
        backups = self._config.backups
        if not backups.enabled:
            return None
        envs = [*connection_env(remove_passfile=False), f"KEEP={backups.keep}", f"INTERVAL_SECONDS={backups.interval_seconds}"]
        self.schedule = docker.Container(
            "data-safety-scheduled-backups",
            name=f"{self._name_prefix}-backups",
            image=image,
            entrypoints=["sh", SCRIPT_PATH_IN_CONTAINER, "schedule"],
            envs=envs,
            # The password file stays (every interval connects again): 0600, and not in `docker inspect`'s env.
            uploads=[docker.ContainerUploadArgs(file=SCRIPT_PATH_IN_CONTAINER, content=backup_script()), pgpass_upload(self._password)],
            labels=[docker.ContainerLabelArgs(label=SCRIPT_HASH_LABEL, value=backup_script_sha256())],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self._network_name)],
            volumes=[self._backup_mount],
            security_opts=SECURITY_OPTS,
            memory=self._memory_mb,
            restart="unless-stopped",
            # A backup under way finishes its current dump before the container goes.
            stop_timeout=STOP_GRACE_SECONDS,
            destroy_grace_seconds=STOP_GRACE_SECONDS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[postgres_ready], delete_before_replace=True),
        )
        return self.schedule


def _warn(message: str | None) -> None:
    if message:
        pulumi.log.warn(message)


def operator_commands(
    *, name_prefix: str, image: str, docker_host: str | None, stack: str
) -> dict[str, Any]:
    """The snapshot and restore commands an operator runs by hand (also in the README)."""
    env = f"DOCKER_HOST={docker_host} " if docker_host else ""
    # The password is piped into the container (`docker run -i`; the script's PASSWORD_ON_STDIN): on no
    # command line, in no environment variable of the docker CLI or the container (`docker inspect`).
    password = f"pulumi stack output --show-secrets postgresPassword --stack {stack} | "
    base = (
        f"{password}{env}docker run -i --rm --network {name_prefix}-net -v {name_prefix}-backups:{BACKUP_MOUNT} "
        f"-e PGHOST=postgres -e PGUSER=postgres -e PASSWORD_ON_STDIN=1 -e BACKUP_DIR={BACKUP_MOUNT}"
    )
    return {
        "snapshotCommand": f"{base} --entrypoint sh {image} {_SCRIPT_COPY} snapshot manual",
        "restoreCommand": (
            f"{env}docker stop {select_ids(name_prefix, 'lobechat', env=env)} {select_ids(name_prefix, 'logto', env=env)} "
            f"&& {base} -e FORCE=1 --entrypoint sh {image} {_SCRIPT_COPY} restore <snapshot> && "
            f"{env}docker start {select_ids(name_prefix, 'logto', include_stopped=True, env=env)} "
            f"{select_ids(name_prefix, 'lobechat', include_stopped=True, env=env)}"
        ),
        "listSnapshotsCommand": f"{env}docker run --rm -v {name_prefix}-backups:{BACKUP_MOUNT} --entrypoint ls {image} -1 {BACKUP_MOUNT}",
    }
