"""Rotated application passwords (rotation.*.postgresPassword) against a real PostgreSQL.

The roles script of generation N and the retirement script run through the real ``psql`` with the
environment and secret files their containers get (``tests/test_postgres_roles.py``'s way), against
PyPI's PostgreSQL 16 with pgvector (the 1.x image is pg16, ParadeDB pg17) and Debian's PostgreSQL 15
for the session behaviour. Logto's database steps are the real ``@logto/cli`` at the pinned version,
logging in as a generation's login.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.logto_bootstrap import bootstrap_environment, bootstrap_sql, management_link_id, psql_arguments
from components.postgres_logins import lobechat_keep, retire_environment, retire_secret_files, retire_sql
from components.postgres_roles import login_role, roles_environment, roles_secret_files, roles_sql, roles_sql_sha256
from tests.prereqs import require_or_skip
from tests.real_postgres import RealPostgres, missing_postgres_prerequisite, running_postgres
from tests.test_logto_bootstrap_sql import _require_cli, run_logto_cli
from tests.test_postgres_roles import PINNED_LOGTO_VERSION, pg16, pgserver_bin_dir  # noqa: F401 - fixture

pytestmark = pytest.mark.realdb

PASSWORDS = {
    0: ("LobeChatRolePassword0123456789ab", "LogtoRolePassword0123456789abcdef"),
    1: ("LobeChatGenerationOnePassword0001", "LogtoGenerationOnePassword000001"),
    2: ("LobeChatGenerationTwoPassword0002", "LogtoGenerationTwoPassword000002"),
    3: ("LobeChatGenerationThreePasswd0003", "LogtoGenerationThreePasswd000003"),
}


@pytest.fixture()
def pg15() -> Iterator[RealPostgres]:
    problem = missing_postgres_prerequisite()
    require_or_skip(problem is None, problem or "")
    with running_postgres() as server:
        yield server


def _psql(pg: RealPostgres, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    directory = Path(env["POSTGRES_ROLES_SECRET_DIR"])
    path = directory / "script.sql"
    path.write_text(script)
    return subprocess.run(
        [str(pg.bin_dir / "psql"), "--no-psqlrc", "--file", str(path)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )


def run_roles(pg: RealPostgres, generation: int, *, passwords: tuple[str, str] | None = None,
              superuser: RealPostgres | None = None) -> subprocess.CompletedProcess[str]:
    """The roles step of ``generation``, as its container runs it; asserts the secret files are gone."""
    admin = superuser or pg
    lobechat_password, logto_password = passwords or PASSWORDS[generation]
    directory = Path(tempfile.mkdtemp(prefix="roles-secrets-"))
    files = roles_secret_files(admin.password, lobechat_password, logto_password, secret_dir=str(directory))
    for path, content in files.items():
        Path(path).write_text(content)
        Path(path).chmod(0o600)
    result = _psql(pg, roles_sql(generation), roles_environment(admin.host, admin.user, secret_dir=str(directory), port=admin.port))
    assert [p for p in files if Path(p).exists()] == []
    for secret in (lobechat_password, logto_password, admin.password):
        assert secret not in result.stdout + result.stderr
    return result


def run_retire(pg: RealPostgres, generation: int, keep_lobechat: int, keep_logto: int, *,
               superuser: RealPostgres | None = None) -> subprocess.CompletedProcess[str]:
    admin = superuser or pg
    directory = Path(tempfile.mkdtemp(prefix="logins-secrets-"))
    files = retire_secret_files(admin.password, secret_dir=str(directory))
    for path, content in files.items():
        Path(path).write_text(content)
        Path(path).chmod(0o600)
    result = _psql(pg, retire_sql(generation, keep_lobechat, keep_logto),
                   retire_environment(admin.host, admin.user, secret_dir=str(directory), port=admin.port))
    assert [p for p in files if Path(p).exists()] == []
    assert admin.password not in result.stdout + result.stderr
    return result


def run_bootstrap_as(pg: RealPostgres, who: RealPostgres) -> subprocess.CompletedProcess[str]:
    """The bootstrap's psql (components/logto_bootstrap.py) with ``who``'s URL of database logto."""
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "bootstrap.sql"
        script.write_text(bootstrap_sql())
        args = psql_arguments(app_id="lobechat-logto-m2m", app_name="m2m", link_id=management_link_id("lobechat-logto-m2m"),
                              script_path=str(script))
        env = bootstrap_environment(who.url("logto"), "BootstrapSecretOfEnoughLength0123")
        return subprocess.run([str(pg.bin_dir / "psql"), *args], env={"PATH": os.environ.get("PATH", ""), **env},
                              capture_output=True, text=True, timeout=60, check=False)


def login(pg: RealPostgres, app: str, generation: int, *, database: str | None = None) -> psycopg.Connection:
    """Connect as ``app``'s login of ``generation`` with that generation's password."""
    password = PASSWORDS[generation][0 if app == "lobechat" else 1]
    who = dataclasses.replace(pg, user=login_role(app, generation), password=password)
    # No prepared statements: DISCARD ALL (tested below) deallocates them.
    return psycopg.connect(who.url(database or app), autocommit=True, connect_timeout=10, prepare_threshold=None)


def cannot_log_in(pg: RealPostgres, app: str, generation: int, *, database: str | None = None) -> bool:
    try:
        login(pg, app, generation, database=database).close()
    except psycopg.OperationalError:
        return True
    return False


def admin(pg: RealPostgres, database: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(pg.url(database), autocommit=True, connect_timeout=10)


def roles(pg: RealPostgres) -> dict[str, bool]:
    """Application role -> can it log in (LOGIN and a password)."""
    with admin(pg) as conn:
        rows = conn.execute(
            "SELECT rolname, rolcanlogin AND rolpassword IS NOT NULL FROM pg_authid "
            "WHERE rolname ~ '^(lobechat|logto)(_g[0-9]+)?$' ORDER BY rolname"
        ).fetchall()
    return dict(rows)


def identity(conn: psycopg.Connection) -> tuple[str, str]:
    return tuple(conn.execute("SELECT current_user::text, session_user::text").fetchone())  # type: ignore[return-value]


def test_generation_zero_script_is_the_script_every_stage_already_ran() -> None:
    # An existing stage without postgresPassword rotation must not re-run (or change) its roles step.
    assert roles_sql(0) == roles_sql()
    assert roles_sql_sha256(0) == "cd57ec4bd6af57056a5028f7ca8eeb56f7b315b87ca8e0079f7f0a04a068d59c"
    assert "lobechat_g" not in roles_sql(0)
    assert roles_sql(2) != roles_sql(3) and "'lobechat_g3'" in roles_sql(3) and "'logto_g3'" in roles_sql(3)


def test_login_names_and_bad_generations() -> None:
    assert login_role("lobechat", 0) == "lobechat" and login_role("logto", 4) == "logto_g4"
    with pytest.raises(ValueError):
        login_role("lobechat", -1)
    for bad in ((1, 2, 0), (1, 0, 2), (-1, 0, 0), (1.5, 0, 0), (True, 0, 0)):
        with pytest.raises(ValueError):
            retire_sql(*bad)  # type: ignore[arg-type]


def test_lease_keeps_the_previous_login_while_the_previous_container_may_run() -> None:
    assert lobechat_keep({}, 0, "c0") == 0
    assert lobechat_keep({}, 3, "c9") == 2  # nothing recorded: keep the previous generation
    assert lobechat_keep({"held_generation": 1, "held_container_id": "c1"}, 2, "c2") == 1  # rotation run
    assert lobechat_keep({"held_generation": 2, "held_container_id": "c2"}, 2, "c2") == 2  # the run after
    # A failed rotation run recorded nothing: the next run's new container replaces the old one at its end.
    assert lobechat_keep({"held_generation": 1, "held_container_id": "c1"}, 2, "c3") == 1
    assert lobechat_keep({"held_generation": 2, "held_container_id": "c2"}, 2, "c4") == 2  # lost and recreated


def test_a_whole_rotation_keeps_every_session_data_and_owner_and_retires_old_logins(pg16: RealPostgres) -> None:
    _require_cli(PINNED_LOGTO_VERSION)
    assert run_roles(pg16, 0).returncode == 0
    run_logto_cli(dataclasses.replace(pg16, user="logto", password=PASSWORDS[0][1]), "logto", PINNED_LOGTO_VERSION,
                  "db", "seed", "--swe")
    with login(pg16, "lobechat", 0) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE chats (id serial PRIMARY KEY, body text, v vector(3))")
        conn.execute("INSERT INTO chats (body, v) VALUES ('kept', '[1,2,3]')")
    with admin(pg16, "logto") as conn:
        logto_rows = conn.execute("SELECT count(*) FROM applications").fetchone()[0]
    assert logto_rows > 0
    old_lobechat = login(pg16, "lobechat", 0)  # a session of the running generation-0 LobeChat

    # --- generation 1: new logins acting as the owners ---------------------------------------
    result = run_roles(pg16, 1)
    assert result.returncode == 0, result.stderr
    assert "LobeChat logs in as lobechat_g1, Logto as logto_g1" in result.stdout
    assert roles(pg16) == {"lobechat": True, "lobechat_g1": True, "logto": True, "logto_g1": True}
    with login(pg16, "lobechat", 1) as conn:
        assert identity(conn) == ("lobechat", "lobechat_g1")
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")  # LobeChat's migration step
        conn.execute("CREATE TABLE files (id serial PRIMARY KEY)")
        conn.execute("INSERT INTO chats (body) VALUES ('by g1')")
        assert conn.execute("SELECT v <-> '[1,2,4]' FROM chats WHERE body = 'kept'").fetchone()[0] == 1.0
        for reset in ("RESET ROLE", "RESET ALL"):
            conn.execute(reset)
            assert identity(conn) == ("lobechat", "lobechat_g1"), reset
        # PostgreSQL 16: DISCARD ALL (SET SESSION AUTHORIZATION DEFAULT) drops the role setting; the
        # login keeps the owner's rights (INHERIT), what it creates is its own until the next roles step.
        conn.execute("DISCARD ALL")
        assert identity(conn) == ("lobechat_g1", "lobechat_g1")
        conn.execute("INSERT INTO chats (body) VALUES ('after discard')")
        conn.execute("ALTER TABLE files ADD COLUMN name text")
        conn.execute("CREATE TABLE made_after_discard (id int)")
    with admin(pg16, "lobechat") as conn:
        owners = dict(conn.execute("SELECT tablename::text, tableowner::text FROM pg_tables WHERE schemaname = 'public'").fetchall())
        assert owners == {"chats": "lobechat", "files": "lobechat", "made_after_discard": "lobechat_g1"}
        assert conn.execute("SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'vector'").fetchone()[0] != "lobechat_g1"
    assert cannot_log_in(pg16, "lobechat", 1, database="logto") and cannot_log_in(pg16, "logto", 1, database="lobechat")

    # Logto's steps as logto_g1: preflight-like checks, seed (skipped), alterations; rows through RLS.
    logto_g1 = dataclasses.replace(pg16, user="logto_g1", password=PASSWORDS[1][1])
    run_logto_cli(logto_g1, "logto", PINNED_LOGTO_VERSION, "db", "seed", "--swe")
    run_logto_cli(logto_g1, "logto", PINNED_LOGTO_VERSION, "db", "alteration", "deploy", "latest")
    bootstrap = run_bootstrap_as(pg16, logto_g1)  # the first Management API credential, as logto_g1
    assert bootstrap.returncode == 0, bootstrap.stderr
    with admin(pg16, "logto") as conn:
        assert conn.execute("SELECT count(*) FROM applications").fetchone()[0] == logto_rows + 1  # the M2M app
        logto_rows += 1
    with login(pg16, "logto", 1) as conn:
        assert identity(conn) == ("logto", "logto_g1")
        assert conn.execute("SELECT count(*) FROM applications").fetchone()[0] == logto_rows  # owner: RLS bypassed
        assert conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()[0] is True
        conn.execute("DISCARD ALL")
        assert conn.execute("SELECT count(*) FROM applications").fetchone()[0] == logto_rows  # member of the owner: still bypassed

    again = run_roles(pg16, 1)  # every later `pulumi up` that re-runs the step
    assert again.returncode == 0, again.stderr
    with admin(pg16, "lobechat") as conn:
        assert conn.execute("SELECT tableowner::text FROM pg_tables WHERE tablename = 'made_after_discard'").fetchone()[0] == "lobechat"
    assert login(pg16, "lobechat", 1) and login(pg16, "logto", 1)

    # --- retirement: Logto's old login in the rotation run, LobeChat's in the next one --------------
    assert run_retire(pg16, 1, 0, 1).returncode == 0
    assert roles(pg16) == {"lobechat": True, "lobechat_g1": True, "logto": False, "logto_g1": True}
    assert cannot_log_in(pg16, "logto", 0) and not cannot_log_in(pg16, "lobechat", 0)
    assert run_retire(pg16, 1, 1, 1).returncode == 0
    assert roles(pg16) == {"lobechat": False, "lobechat_g1": True, "logto": False, "logto_g1": True}
    assert cannot_log_in(pg16, "lobechat", 0)
    # The old container's open session keeps working (NOLOGIN ends no session).
    assert old_lobechat.execute("SELECT count(*) FROM chats").fetchone()[0] == 3
    old_lobechat.execute("INSERT INTO chats (body) VALUES ('old session, still open')")
    old_lobechat.close()
    assert run_retire(pg16, 1, 1, 1).returncode == 0  # idempotent

    # --- generations 2 and 3: two generations old is dropped, data stays with the owners ----------
    assert run_roles(pg16, 2).returncode == 0
    assert run_retire(pg16, 2, 2, 2).returncode == 0
    assert roles(pg16) == {"lobechat": False, "lobechat_g1": False, "lobechat_g2": True, "logto": False,
                           "logto_g1": False, "logto_g2": True}
    assert run_roles(pg16, 3).returncode == 0
    lingering = login(pg16, "lobechat", 2)  # a session of generation 2 still open
    with admin(pg16, "lobechat") as conn:  # something only a generation-1 login owns (after a DISCARD ALL)
        conn.execute("SET ROLE lobechat_g1")
        conn.execute("CREATE TABLE owned_by_g1 (id int)")
        conn.execute("INSERT INTO owned_by_g1 VALUES (1)")
    result = run_retire(pg16, 3, 3, 3)
    assert result.returncode == 0, result.stderr
    assert roles(pg16) == {"lobechat": False, "lobechat_g2": False, "lobechat_g3": True, "logto": False,
                           "logto_g2": False, "logto_g3": True}
    assert lingering.execute("SELECT count(*) FROM chats").fetchone()[0] == 4
    with login(pg16, "lobechat", 3) as conn:
        assert identity(conn) == ("lobechat", "lobechat_g3")
        assert conn.execute("SELECT count(*) FROM chats").fetchone()[0] == 4
        assert conn.execute("SELECT count(*) FROM owned_by_g1").fetchone()[0] == 1  # reassigned, not dropped
        assert conn.execute("SELECT tableowner::text FROM pg_tables WHERE tablename = 'owned_by_g1'").fetchone()[0] == "lobechat"
    with login(pg16, "logto", 3) as conn:
        assert conn.execute("SELECT count(*) FROM applications").fetchone()[0] == logto_rows
    lingering.close()
    with admin(pg16, "logto") as conn:
        assert conn.execute("SELECT count(*) FROM applications").fetchone()[0] == logto_rows


def test_a_login_with_an_open_session_is_disabled_but_not_dropped(pg16: RealPostgres) -> None:
    for generation in (0, 1, 2, 3):
        assert run_roles(pg16, generation).returncode == 0
    open_session = login(pg16, "lobechat", 1)
    assert run_retire(pg16, 3, 3, 3).returncode == 0
    assert roles(pg16) == {"lobechat": False, "lobechat_g1": False, "lobechat_g2": False, "lobechat_g3": True,
                           "logto": False, "logto_g2": False, "logto_g3": True}
    assert open_session.execute("SELECT 1").fetchone()[0] == 1
    open_session.close()
    assert run_retire(pg16, 3, 3, 3).returncode == 0
    assert "lobechat_g1" not in roles(pg16)


def test_a_new_volume_at_a_later_generation_has_owners_that_never_log_in(pg16: RealPostgres) -> None:
    # A rebuild (or restore) onto a new server while the stage is at generation 2.
    result = run_roles(pg16, 2)
    assert result.returncode == 0, result.stderr
    assert roles(pg16) == {"lobechat": False, "lobechat_g2": True, "logto": False, "logto_g2": True}
    with admin(pg16) as conn:
        owners = dict(conn.execute("SELECT datname::text, pg_get_userbyid(datdba)::text FROM pg_database "
                                   "WHERE datname IN ('lobechat', 'logto')").fetchall())
    assert owners == {"lobechat": "lobechat", "logto": "logto"}
    with login(pg16, "lobechat", 2) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE t (v vector(2))")
        assert conn.execute("SELECT tableowner::text FROM pg_tables WHERE tablename = 't'").fetchone()[0] == "lobechat"


def test_bad_input_is_refused_before_anything_changes(pg16: RealPostgres) -> None:
    assert run_roles(pg16, 0).returncode == 0
    short = run_roles(pg16, 1, passwords=("short", PASSWORDS[1][1]))
    assert short.returncode == 3 and "at least 16 characters" in short.stderr
    assert roles(pg16) == {"lobechat": True, "logto": True}
    same = run_roles(pg16, 1, passwords=(PASSWORDS[1][0], PASSWORDS[1][0]))
    assert same.returncode == 3 and "differ" in same.stderr
    with admin(pg16) as conn:
        conn.execute("CREATE ROLE helper LOGIN CREATEROLE PASSWORD 'helper-password-123456'")
    helper = dataclasses.replace(pg16, user="helper", password="helper-password-123456")
    refused = run_retire(pg16, 1, 1, 1, superuser=helper)
    assert refused.returncode == 3 and "must connect as the superuser" in refused.stderr
    assert roles(pg16) == {"lobechat": True, "logto": True}
    refused = run_roles(pg16, 1, superuser=helper)
    assert refused.returncode == 3 and "must connect as the superuser" in refused.stderr
    assert roles(pg16) == {"lobechat": True, "logto": True}


@pytest.mark.parametrize("server", ["pg15", "pg16"])
def test_pool_resets_keep_the_owners_rights(server: str, request: pytest.FixtureRequest) -> None:
    pg = request.getfixturevalue(server)
    assert run_roles(pg, 0).returncode == 0
    assert run_roles(pg, 1).returncode == 0
    with login(pg, "lobechat", 0) as conn:
        conn.execute("CREATE TABLE t (id int)")
        conn.execute("INSERT INTO t VALUES (1)")
    with login(pg, "lobechat", 1) as conn:
        for reset in ("RESET ROLE", "RESET ALL", "DISCARD ALL", "SET ROLE NONE", "RESET SESSION AUTHORIZATION"):
            conn.execute(reset)
            who = identity(conn)
            assert who[1] == "lobechat_g1" and who[0] in ("lobechat", "lobechat_g1"), (reset, who)
            conn.execute("INSERT INTO t VALUES (2)")
            conn.execute("ALTER TABLE t ALTER COLUMN id SET DEFAULT 0")  # an owner's right
        # An explicit RESET ROLE restores the owner role on both (16's DISCARD ALL does not: there the
        # role is left out of RESET ALL, and SET SESSION AUTHORIZATION DEFAULT resets it to none).
        conn.execute("RESET ROLE")
        assert identity(conn) == ("lobechat", "lobechat_g1")
        conn.execute("DISCARD ALL")
        assert identity(conn)[0] == ("lobechat" if server == "pg15" else "lobechat_g1")


def test_a_rebuild_at_generation_zero_disables_the_logins_of_the_earlier_state(pg16: RealPostgres) -> None:
    # The stage rotated twice, then was rebuilt on its kept volume with a new state (generation 0 again).
    for generation in (0, 1, 2):
        assert run_roles(pg16, generation).returncode == 0
    assert run_retire(pg16, 2, 2, 2).returncode == 0
    rebuilt = ("LobeChatRebuiltStagePassword00000", "LogtoRebuiltStagePassword0000000")
    assert run_roles(pg16, 0, passwords=rebuilt).returncode == 0
    assert run_retire(pg16, 0, 0, 0).returncode == 0
    assert roles(pg16) == {"lobechat": True, "lobechat_g1": False, "lobechat_g2": False, "logto": True,
                           "logto_g1": False, "logto_g2": False}
    with psycopg.connect(dataclasses.replace(pg16, user="lobechat", password=rebuilt[0]).url("lobechat"),
                         autocommit=True, connect_timeout=10) as conn:
        assert identity(conn) == ("lobechat", "lobechat")
