"""Per-application Postgres roles (issue 8, item 4) against a real PostgreSQL 16 with pgvector.

The server is PyPI's ``pgserver`` build (PostgreSQL 16 with ``vector.so``; Debian has no pgvector
package), started by ``tests/real_postgres.py``. The roles script runs through the real ``psql`` with
the environment and secret files its container gets; Logto's seed is the real ``@logto/cli`` at the
pinned version, run as Logto's own role; LobeChat's ``CREATE EXTENSION vector`` runs as LobeChat's role.
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

from components.config import LOGTO_IMAGE
from components.logto_bootstrap import bootstrap_environment, bootstrap_sql, management_link_id, psql_arguments
from components.postgres_roles import roles_environment, roles_secret_files, roles_sql
from tests.prereqs import require_or_skip
from tests.real_postgres import RealPostgres, missing_postgres_prerequisite, running_postgres
from tests.test_logto_bootstrap_sql import _require_cli, run_logto_cli

pytestmark = pytest.mark.realdb

LOBECHAT_PASSWORD = "LobeChatRolePassword0123456789ab"
LOGTO_PASSWORD = "LogtoRolePassword0123456789abcdef"
PINNED_LOGTO_VERSION = LOGTO_IMAGE.rsplit(":", 1)[1]
M2M_SECRET = "BootstrapSecretOfEnoughLength0123"


def pgserver_bin_dir() -> Path | None:
    try:
        import pgserver  # noqa: F401  (PostgreSQL 16 with pgvector, from PyPI)
    except ImportError:
        return None
    return Path(os.path.dirname(pgserver.__file__)) / "pginstall" / "bin"


@pytest.fixture()
def pg16() -> Iterator[RealPostgres]:
    bin_dir = pgserver_bin_dir()
    require_or_skip(bin_dir is not None, "pgserver not installed: pip install -r requirements-dev.txt")
    problem = missing_postgres_prerequisite(bin_dir)
    require_or_skip(problem is None, problem or "")
    with running_postgres(bin_dir) as server:
        yield server


def as_role(pg: RealPostgres, role: str, password: str) -> RealPostgres:
    return dataclasses.replace(pg, user=role, password=password)


def run_roles(pg: RealPostgres, *, superuser: RealPostgres | None = None) -> tuple[subprocess.CompletedProcess[str], list[Path]]:
    """Run the roles script as its container does: environment without secrets, secrets as files."""
    admin = superuser or pg
    directory = Path(tempfile.mkdtemp(prefix="roles-secrets-"))
    files = roles_secret_files(admin.password, LOBECHAT_PASSWORD, LOGTO_PASSWORD, secret_dir=str(directory))
    for path, content in files.items():
        Path(path).write_text(content)
        Path(path).chmod(0o600)
    script = directory / "roles.sql"
    script.write_text(roles_sql())
    env = roles_environment(admin.host, admin.user, secret_dir=str(directory), port=admin.port)
    result = subprocess.run(
        [str(pg.bin_dir / "psql"), "--no-psqlrc", "--file", str(script)],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **env},
        capture_output=True, text=True, timeout=120, check=False,
    )
    return result, [Path(p) for p in files]


def connect(pg: RealPostgres, database: str) -> psycopg.Connection:
    return psycopg.connect(pg.url(database), autocommit=True, connect_timeout=10)


def role_attributes(pg: RealPostgres, role: str) -> tuple:
    with connect(pg, "postgres") as conn:
        return conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = %s",
            (role,),
        ).fetchone()


def database_owner(pg: RealPostgres, database: str) -> str:
    with connect(pg, "postgres") as conn:
        return conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)).fetchone()[0]


def run_bootstrap_as_logto(pg: RealPostgres) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "bootstrap.sql"
        script.write_text(bootstrap_sql())
        args = psql_arguments(app_id="lobechat-logto-m2m", app_name="m2m", link_id=management_link_id("lobechat-logto-m2m"),
                              script_path=str(script))
        env = bootstrap_environment(as_role(pg, "logto", LOGTO_PASSWORD).url("logto"), M2M_SECRET)
        return subprocess.run([str(pg.bin_dir / "psql"), *args], env={"PATH": os.environ.get("PATH", ""), **env},
                              capture_output=True, text=True, timeout=60, check=False)


def assert_lobechat_can_use_its_database_only(pg: RealPostgres) -> None:
    lobechat = as_role(pg, "lobechat", LOBECHAT_PASSWORD)
    with connect(lobechat, "lobechat") as conn:
        # LobeChat's own migration step, as its own role: pgvector is trusted, the role owns the database.
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE IF NOT EXISTS embeddings (id serial PRIMARY KEY, v vector(3))")
        conn.execute("INSERT INTO embeddings (v) VALUES ('[1,2,3]')")
        assert conn.execute("SELECT v <-> '[1,2,4]' FROM embeddings LIMIT 1").fetchone()[0] == 1.0
    with pytest.raises(psycopg.OperationalError):
        connect(lobechat, "logto").close()
    with pytest.raises(psycopg.OperationalError):
        connect(as_role(pg, "logto", LOGTO_PASSWORD), "lobechat").close()


def test_new_volume_gets_two_least_privilege_roles_and_logto_seeds_as_its_own_role(pg16: RealPostgres) -> None:
    _require_cli(PINNED_LOGTO_VERSION)
    result, files = run_roles(pg16)
    assert result.returncode == 0, result.stderr
    assert [f for f in files if f.exists()] == []  # nothing secret left in the container
    assert LOBECHAT_PASSWORD not in result.stdout + result.stderr
    # superuser, createdb, createrole, replication, bypassrls, login
    assert role_attributes(pg16, "lobechat") == (False, False, False, False, False, True)
    assert role_attributes(pg16, "logto") == (False, False, True, False, False, True)
    assert database_owner(pg16, "lobechat") == "lobechat" and database_owner(pg16, "logto") == "logto"
    assert_lobechat_can_use_its_database_only(pg16)

    # Logto's seed with nothing but CREATEROLE, then the first Management API credential as Logto's role.
    run_logto_cli(as_role(pg16, "logto", LOGTO_PASSWORD), "logto", PINNED_LOGTO_VERSION, "db", "seed", "--swe")
    bootstrap = run_bootstrap_as_logto(pg16)
    assert bootstrap.returncode == 0, bootstrap.stderr
    # A second run (every `pulumi up` after a change) succeeds and changes no owner.
    again, _ = run_roles(pg16)
    assert again.returncode == 0, again.stderr


def test_existing_volume_hands_the_superusers_objects_to_each_role(pg16: RealPostgres) -> None:
    _require_cli(PINNED_LOGTO_VERSION)
    # The layout before this change: both databases and everything in them owned by the superuser.
    with connect(pg16, "postgres") as conn:
        conn.execute("CREATE DATABASE lobechat")
        conn.execute("CREATE DATABASE logto")
    with connect(pg16, "lobechat") as conn:
        conn.execute("CREATE EXTENSION vector")
        conn.execute("CREATE SCHEMA drizzle")
        conn.execute("CREATE TABLE drizzle.migrations (id serial PRIMARY KEY, hash text)")
        conn.execute("CREATE TABLE users (id text PRIMARY KEY, n bigint GENERATED ALWAYS AS IDENTITY, v vector(3))")
        conn.execute("CREATE VIEW user_ids AS SELECT id FROM users")
        conn.execute("CREATE FUNCTION one() RETURNS int LANGUAGE sql AS 'SELECT 1'")
        conn.execute("CREATE TYPE mood AS ENUM ('ok', 'not ok')")
        conn.execute("INSERT INTO users (id, v) VALUES ('u1', '[1,1,1]')")
    run_logto_cli(pg16, "logto", PINNED_LOGTO_VERSION, "db", "seed", "--swe")  # seeded as the superuser

    result, files = run_roles(pg16)
    assert result.returncode == 0, result.stderr
    assert [f for f in files if f.exists()] == []
    with connect(pg16, "lobechat") as conn:
        owners = dict(conn.execute(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname IN ('public', 'drizzle') AND c.relkind IN ('r', 'v', 'S')"
        ).fetchall())
        assert set(owners.values()) == {"lobechat"}, owners
        assert conn.execute("SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'drizzle'").fetchone()[0] == "lobechat"
    lobechat = as_role(pg16, "lobechat", LOBECHAT_PASSWORD)
    with connect(lobechat, "lobechat") as conn:  # LobeChat's next migration, as its own role
        conn.execute("ALTER TABLE users ADD COLUMN email text")
        conn.execute("INSERT INTO users (id) VALUES ('u2')")
        conn.execute("INSERT INTO drizzle.migrations (hash) VALUES ('h')")
        assert conn.execute("SELECT one()").fetchone()[0] == 1
    assert_lobechat_can_use_its_database_only(pg16)
    with connect(pg16, "logto") as conn:
        owners = {row[0] for row in conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert owners == {"logto"}
    # What the Logto container does at every start, now as its own role: seed (skipped) and the credential.
    run_logto_cli(as_role(pg16, "logto", LOGTO_PASSWORD), "logto", PINNED_LOGTO_VERSION, "db", "seed", "--swe")
    bootstrap = run_bootstrap_as_logto(pg16)
    assert bootstrap.returncode == 0, bootstrap.stderr


def test_roles_step_refuses_to_run_as_a_non_superuser(pg16: RealPostgres) -> None:
    with connect(pg16, "postgres") as conn:
        conn.execute("CREATE ROLE helper LOGIN CREATEROLE PASSWORD 'helper-password-123456'")
    result, files = run_roles(pg16, superuser=as_role(pg16, "helper", "helper-password-123456"))
    assert result.returncode == 3
    assert "must connect as the superuser" in result.stderr
    assert [f for f in files if f.exists()] == []
