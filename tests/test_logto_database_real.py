"""Logto's troubleshooting list against a real PostgreSQL 15 and the real Logto CLI.

The preflight runs through the real ``psql`` with exactly the arguments, environment and password file
its container gets (`preflight_arguments`, `preflight_secret_files`); the setup runs the container's own
``sh`` script (`setup_script` of `setup_command`: the database URL read from a file that is deleted
first) with an ``npm`` that runs the real ``@logto/cli`` the way the Logto image's npm scripts do;
failures go through the same `check_*_exit` as in ``pulumi up``, on the CLI's real output.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.config import LOGTO_IMAGE
from components.logto_database import (
    PREFLIGHT_SCRIPT_PATH,
    PREFLIGHT_SQL,
    LogtoDatabaseError,
    check_preflight_exit,
    check_setup_exit,
    DB_URL_FILE,
    PGPASS_FILE,
    PREFLIGHT_ENTRYPOINT,
    SECRET_DIR_ENV_VAR,
    preflight_arguments,
    preflight_secret_files,
    redacted_log_tail,
    setup_command,
    setup_script,
)
from tests.prereqs import require_or_skip
from tests.real_postgres import RealPostgres, missing_postgres_prerequisite, running_postgres
from tests.test_logto_bootstrap_sql import logto_cli_script, node_binary
from tests.ports import closed_port

pytestmark = pytest.mark.realdb

PINNED = LOGTO_IMAGE.rsplit(":", 1)[1]
OLDER = "1.37.1"


@pytest.fixture(scope="module")
def pg() -> Iterator[RealPostgres]:
    problem = missing_postgres_prerequisite()
    require_or_skip(problem is None, problem or "")
    for version in {PINNED, OLDER}:
        require_or_skip(os.access(node_binary(), os.X_OK) and logto_cli_script(version).is_file(),
                        f"Node 22 / @logto/cli {version} missing: run .ci/install-test-deps")
    with running_postgres() as server:
        yield server


def admin(pg: RealPostgres, *statements: str) -> None:
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def user_url(pg: RealPostgres, user: str, password: str, database: str, port: int | None = None) -> str:
    return f"postgresql://{user}:{password}@{pg.host}:{port or pg.port}/{database}"


def new_database(pg: RealPostgres, *, createrole: bool, owner: bool = True) -> tuple[str, str, str]:
    """A fresh database and a login role (``createrole`` or not) that owns it; returns (db, user, url)."""
    suffix = uuid.uuid4().hex[:10]
    user, database, password = f"u_{suffix}", f"logto_{suffix}", f"Pw{suffix}Secret"
    admin(pg, f"CREATE ROLE {user} LOGIN {'CREATEROLE' if createrole else ''} PASSWORD '{password}'",
          f"CREATE DATABASE {database}" + (f" OWNER {user}" if owner else ""))
    return database, user, user_url(pg, user, password, database)


def preflight(url: str, *, skip_seed: bool = False, psql_only: bool = False) -> subprocess.CompletedProcess[str]:
    """The preflight container's run: its entrypoint, arguments, environment, script and password file.

    ``psql_only``: psql without the entrypoint's wrapper (the script itself deletes the file).
    """
    with tempfile.TemporaryDirectory() as workdir:
        script = Path(workdir) / "preflight.sql"
        script.write_text(PREFLIGHT_SQL)
        secret_dir = Path(workdir) / "secrets"
        secret_dir.mkdir(mode=0o700)
        environment, files = preflight_secret_files(url, str(secret_dir))
        for path, content in files.items():
            Path(path).write_text(content)
            Path(path).chmod(0o600)
        args = [str(script) if a == PREFLIGHT_SCRIPT_PATH else a for a in preflight_arguments(skip_seed=skip_seed)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **environment}
        env["PATH"] = f"/usr/lib/postgresql/15/bin:{env['PATH']}"
        entrypoint = ["psql"] if psql_only else PREFLIGHT_ENTRYPOINT
        result = subprocess.run([*entrypoint, *args], env=env, capture_output=True, text=True, timeout=60)
        # Whatever the outcome, once psql has run the password file is gone.
        assert not (secret_dir / PGPASS_FILE).exists(), "the preflight left its password file behind"
        return result


def logs(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


# `npm run cli ARGS [-- ARGS]` and `npm run alteration ARGS` as the Logto image's root package.json
# defines them ("cli": "logto", "alteration": "logto db alteration"), with the real CLI. It records
# whether the URL file still existed and whether DB_URL was set when the CLI started.
_NPM_SHIM = r"""#!/bin/sh
[ "$1" = run ] || { echo "npm shim: only 'npm run' is supported" >&2; exit 64; }
script=$2; shift 2
case "$script" in
  cli) ;;
  alteration) set -- db alteration "$@" ;;
  *) echo "npm shim: no script $script" >&2; exit 64 ;;
esac
for arg do shift; [ "$arg" = "--" ] || set -- "$@" "$arg"; done
if [ -e "$SHIM_URL_FILE" ]; then echo url-file-present >> "$SHIM_RECORD"; fi
if [ -n "${DB_URL:-}" ]; then echo db-url-set >> "$SHIM_RECORD"; fi
exec "$SHIM_NODE" "$SHIM_CLI" "$@"
"""


def setup(url: str, version: str = PINNED, *, external: bool = False, skip_seed: bool = False) -> subprocess.CompletedProcess[str]:
    """The setup container's run: its sh script, CI=true and the URL file, the real CLI behind npm."""
    node = node_binary()
    with tempfile.TemporaryDirectory(prefix="logto-setup-") as workdir:
        work = Path(workdir)
        (work / "bin").mkdir()
        (work / "bin" / "npm").write_text(_NPM_SHIM)
        (work / "bin" / "npm").chmod(0o755)
        secret_dir = work / "secrets"
        secret_dir.mkdir(mode=0o700)
        url_file = secret_dir / DB_URL_FILE
        url_file.write_text(url)
        url_file.chmod(0o600)
        record = work / "record"
        record.write_text("")
        env = {"PATH": f"{work / 'bin'}:{node.parent}:/usr/bin:/bin", "HOME": "/tmp", "CI": "true",
               SECRET_DIR_ENV_VAR: str(secret_dir), "SHIM_NODE": str(node), "SHIM_CLI": str(logto_cli_script(version)),
               "SHIM_URL_FILE": str(url_file), "SHIM_RECORD": str(record)}
        script = setup_script(setup_command(external_database=external, skip_seed=skip_seed))
        result = subprocess.run(["sh", "-c", script], cwd=workdir, env=env, capture_output=True, text=True, timeout=360)
        calls = record.read_text().split()
        # Every CLI run had the URL, none saw the file: it was deleted before the first one started.
        assert "url-file-present" not in calls and not url_file.exists()
        assert calls.count("db-url-set") == (1 if skip_seed else 2) or result.returncode != 0
        return result


def password_of(url: str) -> str:
    return url.split(":")[2].split("@")[0]


# --- a user without the right to create roles -------------------------------------------------------


def test_a_user_that_cannot_create_roles_is_stopped_before_the_seed(pg):
    database, user, url = new_database(pg, createrole=False)
    result = preflight(url)
    assert result.returncode == 3
    with pytest.raises(LogtoDatabaseError) as error:
        check_preflight_exit(result.returncode, logs(result), secrets=[url, password_of(url)])
    message = str(error.value)
    assert f'"{user}" cannot create roles' in message and "CREATEROLE" in message
    assert "logtoDatabase.skipSeed" in message and password_of(url) not in message


def test_that_user_really_cannot_seed_and_the_failed_seed_is_reported_with_its_log(pg):
    # What the preflight prevents: the real seed fails with permission denied; reported with the log's tail.
    _, _, url = new_database(pg, createrole=False)
    result = setup(url)
    assert result.returncode != 0 and "permission denied to create role" in logs(result)
    with pytest.raises(LogtoDatabaseError) as error:
        check_setup_exit(result.returncode, logs(result), secrets=[url, password_of(url)])
    message = str(error.value)
    assert "may not create roles" in message and "permission denied to create role" in message
    assert password_of(url) not in message


def test_a_user_that_may_not_create_in_schema_public_is_stopped(pg):
    _, user, url = new_database(pg, createrole=True, owner=False)
    result = preflight(url)
    assert result.returncode == 3 and "schema public" in logs(result)


def test_a_user_with_createrole_owning_the_database_passes_and_seeds(pg):
    _, _, url = new_database(pg, createrole=True)
    result = preflight(url)
    assert result.returncode == 0
    assert check_preflight_exit(0, logs(result)) == "logto preflight: the database is ready to be seeded"
    assert setup(url).returncode == 0
    seeded = preflight(url)
    assert seeded.returncode == 0 and "the database is seeded" in logs(seeded)
    # A re-seed ("role already exists" without --swe) is skipped: harmless.
    again = setup(url)
    assert again.returncode == 0 and "Seeding skipped" in logs(again)


# --- external databases: --encrypt-base-role ----------------------------------------------------------


def test_external_databases_seed_with_an_encrypted_base_role_whose_password_never_shows(pg):
    database, _, url = new_database(pg, createrole=True)
    result = setup(url, external=True)
    assert result.returncode == 0 and "base role password:" in logs(result)
    with psycopg.connect(pg.url(database), autocommit=True) as conn:
        has_password = conn.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (f"logto_tenant_{database}",)
        ).fetchone()[0]
    assert has_password
    printed = logs(result).split("base role password:")[1].split()[0]
    tail = redacted_log_tail(logs(result), [url], lines=1000)
    assert "base role password: [redacted]" in tail and printed not in tail


def test_without_encrypt_base_role_the_base_role_has_no_password(pg):
    database, _, url = new_database(pg, createrole=True)
    assert setup(url, external=False).returncode == 0
    with psycopg.connect(pg.url(database), autocommit=True) as conn:
        has_password = conn.execute(
            "SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (f"logto_tenant_{database}",)
        ).fetchone()[0]
    assert not has_password


# --- "role already exists" ------------------------------------------------------------------------------


def test_roles_left_by_a_dropped_database_are_dropped_so_the_seed_succeeds(pg):
    database, user, url = new_database(pg, createrole=True)
    assert setup(url).returncode == 0
    admin(pg, f"DROP DATABASE {database}", f"CREATE DATABASE {database} OWNER {user}")
    # The problem, for real: the roles outlive the database and the seed trips over them.
    failed = setup(url)
    assert failed.returncode != 0 and "already exists" in logs(failed)
    fixed = preflight(url)
    assert fixed.returncode == 0 and "dropped the stale role" in logs(fixed)
    assert setup(url).returncode == 0


def test_stale_roles_still_in_use_elsewhere_are_named_not_dropped(pg):
    database, user, url = new_database(pg, createrole=True)
    assert setup(url).returncode == 0
    other = "other_" + uuid.uuid4().hex[:8]
    admin(pg, f"CREATE DATABASE {other}")
    with psycopg.connect(pg.url(other), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE keep (id int); GRANT SELECT ON keep TO logto_tenant_{database}")
    admin(pg, f"DROP DATABASE {database}", f"CREATE DATABASE {database} OWNER {user}")
    result = preflight(url)
    assert result.returncode == 3
    with pytest.raises(LogtoDatabaseError) as error:
        check_preflight_exit(result.returncode, logs(result), secrets=[url])
    assert f"logto_tenant_{database}" in str(error.value) and "DROP OWNED BY" in str(error.value)


# --- version bumps -------------------------------------------------------------------------------------------


def test_pending_alterations_after_a_version_bump_are_deployed(pg):
    database, _, url = new_database(pg, createrole=True)
    assert setup(url, OLDER).returncode == 0
    upgraded = setup(url, PINNED)
    assert upgraded.returncode == 0 and "Seeding skipped" in logs(upgraded)
    with psycopg.connect(pg.url(database), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('public.trusted_devices') IS NOT NULL").fetchone()[0]


def test_a_failed_alteration_is_reported_with_the_tail_of_the_log(pg):
    database, _, url = new_database(pg, createrole=True)
    assert setup(url, OLDER).returncode == 0
    with psycopg.connect(pg.url(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE trusted_devices (id int)")  # what a 1.43.0 alteration creates
    result = setup(url, PINNED)
    assert result.returncode != 0
    with pytest.raises(LogtoDatabaseError) as error:
        check_setup_exit(result.returncode, logs(result), secrets=[url, password_of(url)], urn="urn:setup")
    message = str(error.value)
    assert "a database alteration failed" in message and "trusted_devices" in message
    assert "pulumi up --replace 'urn:setup'" in message and password_of(url) not in message
    assert len(message.split("Last lines of its log:\n")[1].splitlines()) <= 26


# --- --skip-seed -----------------------------------------------------------------------------------------------


def test_skip_seed_on_an_unseeded_database_is_refused_with_how_to_seed(pg):
    _, _, url = new_database(pg, createrole=False)
    result = preflight(url, skip_seed=True)
    assert result.returncode == 3 and "skipSeed is on" in logs(result)


def test_skip_seed_lets_a_user_without_createrole_run_a_database_seeded_by_an_admin(pg):
    database, user, url = new_database(pg, createrole=False)
    assert setup(pg.url(database)).returncode == 0  # seeded once by the administrator
    admin(pg, f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {user}", f"ALTER DATABASE {database} OWNER TO {user}")
    result = preflight(url, skip_seed=True)
    assert result.returncode == 0 and "the database is seeded" in logs(result)


# --- Postgres unreachable ----------------------------------------------------------------------------------------


def test_an_unreachable_postgres_is_one_clear_error(pg):
    port = closed_port()
    url = user_url(pg, "nobody", "NoSuchPassword1", "logto", port=port)
    result = preflight(url)
    assert result.returncode == 2
    with pytest.raises(LogtoDatabaseError) as error:
        check_preflight_exit(result.returncode, logs(result), secrets=[url, "NoSuchPassword1"])
    assert "Postgres is unreachable" in str(error.value) and "NoSuchPassword1" not in str(error.value)


# --- no secret left in the containers ---------------------------------------------------------------------------


def test_the_setup_script_without_its_url_file_stops_with_one_clear_message(tmp_path):
    env = {"PATH": "/usr/bin:/bin", SECRET_DIR_ENV_VAR: str(tmp_path)}
    result = subprocess.run(["sh", "-c", setup_script("echo the-cli-ran")], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "the-cli-ran" not in result.stdout
    assert f"no database URL in {tmp_path}/{DB_URL_FILE}" in result.stderr


def test_the_setup_script_deletes_the_url_file_even_when_the_cli_fails(tmp_path):
    (tmp_path / DB_URL_FILE).write_text("postgresql://logto:NotShownAnywhere1@db:5432/logto")
    env = {"PATH": "/usr/bin:/bin", SECRET_DIR_ENV_VAR: str(tmp_path)}
    command = f'test ! -e "{tmp_path}/{DB_URL_FILE}" && test "$DB_URL" = postgresql://logto:NotShownAnywhere1@db:5432/logto && exit 7'
    result = subprocess.run(["sh", "-c", setup_script(command)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 7 and not (tmp_path / DB_URL_FILE).exists()
    assert "NotShownAnywhere1" not in result.stdout + result.stderr


def test_skip_seed_runs_only_the_alterations_through_the_script(pg):
    _, _, url = new_database(pg, createrole=True)
    assert setup(url).returncode == 0
    result = setup(url, skip_seed=True)
    assert result.returncode == 0 and "Seeding" not in logs(result)


def test_the_preflight_script_itself_deletes_the_password_file_once_connected(pg):
    # Without the entrypoint's wrapper: the file is gone as soon as psql connected (preflight() checks).
    _, _, url = new_database(pg, createrole=True)
    assert preflight(url, psql_only=True).returncode == 0
