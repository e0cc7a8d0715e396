"""The data safety steps in the resource graph of each stack file (under Pulumi mocks)."""

from __future__ import annotations

import pytest

from components.data_safety import SNAPSHOT_TRIGGER_LABEL, DataSafetyError, check_step_exit
from tests.pulumi_mocks import CONTAINER, RANDOM_SECRET, REMOTE_IMAGE, VOLUME, run_program, stack_config, stack_names

NS = "lobechat-logto"
STACKS = stack_names()


@pytest.fixture(scope="module", params=STACKS)
def run(request):
    return run_program(request.param, stack_config(request.param))


def labels(resource) -> dict[str, str]:
    return {item["label"]: item["value"] for item in resource.plain("labels", [])}


def trigger(stack: str, **changes) -> str:
    config = stack_config(stack)
    config.update({f"{NS}:{k}": v for k, v in changes.items()})
    result = run_program(stack, config)
    return labels(result.one(CONTAINER, "data-safety-snapshot"))[SNAPSHOT_TRIGGER_LABEL]


def test_the_snapshot_runs_before_postgres_logto_and_lobechat(run):
    snapshot = run.one(CONTAINER, "data-safety-snapshot")
    for name in ("postgres", "logto", "lobechat"):
        assert run.depends_on(run.one(CONTAINER, name), snapshot), name
    assert not run.depends_on(snapshot, run.one(CONTAINER, "postgres"))


def test_the_volume_check_runs_before_postgres_with_the_new_image_and_the_data_volume(run):
    check = run.one(CONTAINER, "postgres-volume-check")
    postgres = run.one(CONTAINER, "postgres")
    assert run.depends_on(postgres, check)
    assert check.plain("image") == postgres.plain("image")
    assert check.plain("volumes")[0]["volumeName"] == run.one(VOLUME, "postgres-data").plain("name")
    assert check.plain("entrypoints")[-1] == "check-volume"
    assert check.plain("attach") is True and check.plain("mustRun") is False
    assert check.is_secret("envs")


@pytest.mark.parametrize(
    "change",
    [
        {"lobechatImage": "lobehub/lobe-chat-database:1.143.4"},
        {"logto": {"mode": "container", "endpoint": "http://auth.localhost:3001",
                   "adminEndpoint": "http://auth-admin.localhost:3002", "image": "svhd/logto:1.44.0"}},
        {"postgres": {"mode": "container", "image": "pgvector/pgvector:0.8.0-pg16"}},
    ],
    ids=["lobechat-image", "logto-image", "postgres-image"],
)
def test_a_risky_change_changes_the_snapshot_so_it_runs_again(change):
    assert trigger("dev", **change) != trigger("dev")


def test_an_unrelated_change_does_not_take_a_snapshot():
    assert trigger("dev", extraEnv={"FEATURE_FLAGS": "-welcome"}) == trigger("dev")


def test_the_snapshot_goes_to_the_protected_backup_volume_and_is_named_in_the_outputs(run):
    backups = run.one(VOLUME, "data-safety-backups")
    assert backups.protect and backups.retain_on_delete
    assert backups.plain("name") == run.outputs["backupVolume"] == f"lobechat-logto-{run.stack}-backups"
    snapshot = run.one(CONTAINER, "data-safety-snapshot")
    assert snapshot.plain("volumes") == [{"volumeName": backups.plain("name"), "containerPath": "/backups"}]
    # The password travels in the (secret) 0600 password file, not in the environment.
    assert snapshot.is_secret("uploads") and "PGPASSWORD" not in snapshot.env()
    assert "preChangeSnapshot" in run.outputs
    assert "restore <snapshot>" in run.outputs["restoreCommand"]
    assert "FORCE=1" in run.outputs["restoreCommand"]


def test_postgres_and_logto_stop_gracefully(run):
    postgres = run.one(CONTAINER, "postgres")
    assert postgres.plain("stopSignal") == "SIGINT"
    assert postgres.plain("stopTimeout") >= 30 and postgres.plain("destroyGraceSeconds") >= 30
    logto = run.one(CONTAINER, "logto")
    assert logto.plain("stopTimeout") >= 10 and logto.plain("destroyGraceSeconds") >= 10


def test_scheduled_backups_are_off_on_dev_and_on_for_prod(run):
    scheduled = [r for r in run.of_type(CONTAINER) if r.name == "data-safety-scheduled-backups"]
    if run.stack == "dev":
        assert scheduled == []
        return
    assert len(scheduled) == 1
    env = scheduled[0].env()
    assert env["KEEP"] == "14" and env["INTERVAL_SECONDS"] == str(24 * 3600)
    assert scheduled[0].plain("restart") == "unless-stopped"
    assert run.depends_on(scheduled[0], run.one(CONTAINER, "postgres"))


def test_a_new_volume_claims_itself_with_the_stacks_secrets(run):
    postgres = run.one(CONTAINER, "postgres")
    uploads = {u["file"]: u["content"] for u in postgres.plain("uploads")}
    assert "claim" in uploads["/docker-entrypoint-initdb.d/20-lobechat-logto-claim.sh"]
    claim = postgres.env()["EXPECTED_CLAIM"]
    # Two digests (password : KEY_VAULTS_SECRET); the one-digest fingerprint is what older volumes hold.
    password_part, kvs_part = claim.split(":")
    assert len(password_part) == len(kvs_part) == 24 and len(run.outputs["rebuildFingerprint"]) == 24
    check_env = dict(item.split("=", 1) for item in run.one(CONTAINER, "postgres-volume-check").plain("envs"))
    assert claim == check_env["EXPECTED_CLAIM"]
    assert check_env["LEGACY_CLAIM"] == run.outputs["rebuildFingerprint"]


def test_rebuild_secrets_replace_the_generated_ones_and_are_exported():
    config = stack_config("dev")
    config[f"{NS}:dataSafety"] = {"postgresMajor": 16, "adoptVolume": True}
    result = run_program(
        "dev", config,
        {f"{NS}:rebuildPostgresPassword": "OldPassword0123456789abcdefghijkl",
         f"{NS}:rebuildKeyVaultsSecret": "OldKeyVaultsSecret0123456789abcdefghijklmno"},
    )
    assert {r.name for r in result.of_type(RANDOM_SECRET)}.isdisjoint({"postgres-password", "lobechat-key-vaults-secret"})
    assert "POSTGRES_PASSWORD=OldPassword0123456789abcdefghijkl" in result.one(CONTAINER, "postgres").plain("envs")
    assert result.one(CONTAINER, "lobechat").env()["KEY_VAULTS_SECRET"] == "OldKeyVaultsSecret0123456789abcdefghijklmno"
    assert "ALLOW_UNCLAIMED=1" in result.one(CONTAINER, "postgres-volume-check").plain("envs")
    assert result.outputs["rebuildSecrets"]["rebuildPostgresPassword"] == "OldPassword0123456789abcdefghijkl"
    assert "rebuildSecrets" in result.secret_outputs


def test_generation_2_on_a_stage_pinned_to_16_keeps_postgres_16():
    config = stack_config("dev")
    config[f"{NS}:lobechatGeneration"] = "2"
    config[f"{NS}:lobechatUrl"] = "http://lobe.localhost:3210"
    result = run_program("dev", config)
    assert result.one(REMOTE_IMAGE, "postgres-image").plain("name") == "paradedb/paradedb:0.25.5-pg16"
    assert result.outputs["postgresMajor"] == 16


def test_a_new_data_volume_is_a_new_resource_and_restore_runs_before_the_apps():
    config = stack_config("dev")
    config[f"{NS}:dataSafety"] = {
        "postgresMajor": 17, "dataVolume": "lobechat-logto-dev-postgres-data-pg17", "restoreFrom": "20261201T120000Z-manual",
    }
    result = run_program("dev", config)
    volume = result.one(VOLUME, "postgres-data-lobechat-logto-dev-postgres-data-pg17")
    assert volume.protect and volume.retain_on_delete
    restore = result.one(CONTAINER, "data-safety-restore")
    assert restore.plain("entrypoints")[-1].endswith("restore 20261201T120000Z-manual")
    assert result.depends_on(restore, result.one(CONTAINER, "postgres"))
    for app in ("logto", "lobechat"):
        assert result.depends_on(result.one(CONTAINER, app), restore), app


def test_a_failed_step_stops_the_run_with_its_output_and_how_to_rerun():
    assert check_step_exit("pre-change snapshot", 0, "snapshot: x") == "snapshot: x"
    with pytest.raises(DataSafetyError) as error:
        check_step_exit("pre-change snapshot", 3, "\x01\x00\x00\x00\x00\x00\x00\x10FAILED: pg_dump of lobechat failed", "urn:x")
    message = str(error.value)
    assert "exited with code 3 (a tool failed)" in message and "FAILED: pg_dump of lobechat failed" in message
    assert "pulumi up --replace 'urn:x'" in message and "\x01" not in message


def test_lobechat_and_logto_carry_stage_and_role_labels(run):
    prefix = f"lobechat-logto-{run.stack}"
    for role in ("lobechat", "logto"):
        assert {"lobechat-logto.stage": prefix, "lobechat-logto.role": role}.items() <= labels(run.one(CONTAINER, role)).items(), role


def test_the_restore_command_selects_the_containers_by_label_not_by_name(run):
    prefix = f"lobechat-logto-{run.stack}"
    command = run.outputs["restoreCommand"]
    for role in ("lobechat", "logto"):
        assert f"docker ps -q --filter label=lobechat-logto.stage={prefix} --filter label=lobechat-logto.role={role})" in command
        assert f"docker ps -aq --filter label=lobechat-logto.stage={prefix} --filter label=lobechat-logto.role={role})" in command
        assert f"{prefix}-{role}" not in command, role
    if run.stack in ("staging", "prod"):  # behind Caddy: LobeChat has a generated name
        assert not run.one(CONTAINER, "lobechat").plain("name")


_FAKE_DOCKER = r'''
import json, os, sys
table = json.loads(os.environ["FAKE_CONTAINERS"])
log = open(os.environ["FAKE_LOG"], "a")
args = sys.argv[1:]
if args[0] == "ps":
    wanted = [a.split("=", 1)[1] for a in args[args.index("--filter"):] if a.startswith("label=")]
    running_only = "-aq" not in args
    for c in table:
        if all(c["labels"].get(k) == v for k, v in (w.split("=", 1) for w in wanted)) and (c["running"] or not running_only):
            print(c["id"])
    sys.exit(0)
log.write(json.dumps(args) + "\n")
if args[0] in ("stop", "start"):
    known = {c["id"] for c in table} | {c["name"] for c in table}
    missing = [a for a in args[1:] if a not in known]
    if missing or len(args) == 1:
        print(f"Error response from daemon: No such container: {missing}", file=sys.stderr)
        sys.exit(1)
sys.exit(0)
'''


def test_the_restore_command_runs_with_a_generated_lobechat_name(run, tmp_path):
    """Run the exported command in sh against a fake docker that knows containers only by id and name."""
    import json
    import os
    import subprocess
    import sys

    prefix = f"lobechat-logto-{run.stack}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!{sys.executable}\n{_FAKE_DOCKER}")
    (bin_dir / "pulumi").write_text("#!/bin/sh\necho not-a-real-password\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    table = [
        {"id": "aaa111", "name": "lobechat-3f2a9c1", "running": True,
         "labels": {"lobechat-logto.stage": prefix, "lobechat-logto.role": "lobechat"}},
        {"id": "bbb222", "name": f"{prefix}-logto", "running": True,
         "labels": {"lobechat-logto.stage": prefix, "lobechat-logto.role": "logto"}},
        {"id": "ccc333", "name": "other-stage-lobechat", "running": True,
         "labels": {"lobechat-logto.stage": "other", "lobechat-logto.role": "lobechat"}},
    ]
    log = tmp_path / "docker.log"
    command = run.outputs["restoreCommand"].replace("<snapshot>", "20261201T120000Z-manual")
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CONTAINERS": json.dumps(table), "FAKE_LOG": str(log)},
    )
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c[0] for c in calls] == ["stop", "run", "start"]
    assert sorted(calls[0][1:]) == ["aaa111", "bbb222"]
    assert calls[2][1:] == ["bbb222", "aaa111"]
    assert "restore" in calls[1] and "20261201T120000Z-manual" in calls[1]
