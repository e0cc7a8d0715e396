"""Whole Postgres password rotations (rotation.*.postgresPassword) of a deployed stage, with a real
PostgreSQL behind it.

The dev program runs under the engine-like rollout mocks (``tests/rollout_harness.py``: replacements
create-before-delete, replaced objects deleted at the end of the run, a failed run's deletes first in
the next one). What touches Postgres happens for real, against a throwaway PostgreSQL 16
(``tests/real_postgres.py``):

- the Postgres container's creation initialises the server as the image's entrypoint would (the
  superuser ``postgres`` with the generated password, the databases ``lobechat`` and ``logto``);
- the one-shot roles step and the login retirement step run their script through the real ``psql``
  with the environment and files the container gets (host and port pointed at the test server);
- every running LobeChat replica and the running Logto container are "processes holding a URL":
  probes open a new connection with what each holds, from a background thread and after every
  engine step, and query the data (LobeChat's table; a Logto table with row-level security, which
  only its owner sees through); each also keeps one session open from its start to its stop, as a
  connection pool does. Every other container of the run that logs in (Logto's preflight, setup and
  bootstrap) is checked to log in with its login after the run.

Zero failed connections is asserted; secrets are compared, never printed.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from components.config.rotation import POSTGRES_PASSWORD  # noqa: F401 - the key under test
from tests.logto_standin import LogtoStandIn
from tests.prereqs import require_or_skip
from tests.pulumi_mocks import CONTAINER, ProgramRun
from tests.real_postgres import RealPostgres, missing_postgres_prerequisite, running_postgres
from tests.rollout_harness import T0, RolloutMocks, Stage, TestClock
# The module's own S3 server (moto) for the dev stage's bucket: a server started lazily by an earlier
# module stops after its lifetime, possibly before this module runs.
from tests.test_program_against_standin import _plain, failing_run_quietly, s3_for_the_program  # noqa: F401
from tests.test_postgres_roles import pgserver_bin_dir

pytestmark = pytest.mark.realdb

ROTATION_KEY = "pulumi-python:dynamic/rotation:SecretRotation"
LEASE_KEY = "pulumi-python:dynamic/postgres:PostgresLoginLease"
RANDOM_SECRET = "pulumi-python:dynamic/generated:RandomSecret"
SQL_STEPS = ("postgres-roles-psql", "postgres-logins-psql")
PG_30D = {"maxAge": {"postgresPassword": "30d"}}


# --- the database side -----------------------------------------------------------------------------


@dataclass
class Holder:
    """One running process that holds a database URL, with the session it keeps open (a pool)."""

    name: str
    url: str
    session: psycopg.Connection | None = None


@dataclass
class DbCounts:
    connections: int = 0
    failed_connections: int = 0
    session_queries: int = 0
    failed_session_queries: int = 0
    failures: list[str] = field(default_factory=list)


class Database:
    """The stage's Postgres as the program sees it: a real server reached as host ``postgres``."""

    def __init__(self, pg: RealPostgres) -> None:
        self.pg = pg
        self.initialised = False
        self.step_inputs: dict[str, Any] = {}
        self.step_runs: list[str] = []
        self.lobechat: dict[str, Holder] = {}
        self.logto: Holder | None = None
        self.counts = DbCounts()
        self._lock = threading.RLock()

    # -- addresses
    def local(self, url: str) -> str:
        """The URL with the stage network's ``postgres:5432`` replaced by the test server."""
        parts = urlsplit(url)
        assert parts.hostname == "postgres" and (parts.port or 5432) == 5432, "a URL to another host"
        netloc = parts.netloc.rsplit("@", 1)[0] + f"@{self.pg.host}:{self.pg.port}"
        return parts._replace(netloc=netloc).geturl()

    def connect(self, url: str) -> psycopg.Connection:
        return psycopg.connect(self.local(url), autocommit=True, connect_timeout=10, prepare_threshold=None)

    def admin(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.pg.url(database), autocommit=True, connect_timeout=10)

    # -- what the containers do
    def initialise(self, envs: Mapping[str, str]) -> None:
        """The Postgres image's entrypoint on an empty volume: superuser, POSTGRES_DB, the init script."""
        if self.initialised:
            return
        with self.admin() as conn:
            conn.execute(f"CREATE ROLE postgres SUPERUSER LOGIN PASSWORD '{envs['POSTGRES_PASSWORD']}'")
            conn.execute("CREATE DATABASE lobechat OWNER postgres")
            conn.execute("CREATE DATABASE logto OWNER postgres")
        self.initialised = True

    def run_step(self, name: str, inputs: Mapping[str, Any]) -> tuple[int, str]:
        """A one-shot psql container: its uploads as files, its environment pointed at the test server."""
        directory = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        env = dict(item.split("=", 1) for item in inputs.get("envs") or [])
        secret_dir = env.get("POSTGRES_ROLES_SECRET_DIR", "/run/lobechat-logto")
        script = None
        for upload in inputs.get("uploads") or []:
            target = str(upload["file"])
            local = directory / target.lstrip("/").replace("/", "__") if not target.startswith(secret_dir) else \
                directory / "secrets" / target[len(secret_dir):].lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(str(upload["content"]))
            local.chmod(0o600)
            if target.endswith(".sql"):
                script = local
        assert script is not None
        env.update({
            "PGHOST": self.pg.host, "PGPORT": str(self.pg.port), "POSTGRES_ROLES_SECRET_DIR": str(directory / "secrets"),
            "PGPASSFILE": str(directory / "secrets" / "pgpass"), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C.UTF-8",
        })
        result = subprocess.run([str(self.pg.bin_dir / "psql"), "--no-psqlrc", "--file", str(script)], env=env,
                                capture_output=True, text=True, timeout=120, check=False)
        left = [p for p in (directory / "secrets").iterdir()] if (directory / "secrets").exists() else []
        assert left == [], f"{name} left secret files behind"
        self.step_runs.append(name)
        return result.returncode, result.stdout + result.stderr

    # -- holders
    def start_lobechat(self, container_id: str, url: str) -> None:
        holder = Holder(container_id, url)
        holder.session = self._open(holder)
        with self._lock:
            self.lobechat[container_id] = holder

    def stop_lobechat(self, container_id: str) -> None:
        with self._lock:  # not in the middle of a probe's query on that session
            holder = self.lobechat.pop(container_id, None)
            if holder is not None and holder.session is not None:
                holder.session.close()

    def replace_logto(self, url: str | None) -> None:
        with self._lock:
            old, self.logto = self.logto, None
            if old is not None and old.session is not None:
                old.session.close()
        if url is not None:
            holder = Holder("logto", url)
            holder.session = self._open(holder)
            with self._lock:
                self.logto = holder

    def _open(self, holder: Holder) -> psycopg.Connection | None:
        with self._lock:
            self.counts.connections += 1
        try:
            return self.connect(holder.url)
        except psycopg.OperationalError:
            with self._lock:
                self.counts.failed_connections += 1
                self.counts.failures.append(f"{holder.name}: its first connection was refused")
            return None

    def probe(self) -> None:
        """A new connection with each holder's URL (and a query), and a query on its open session."""
        with self._lock:
            holders = list(self.lobechat.values()) + ([self.logto] if self.logto is not None else [])
        for holder in holders:
            query = "SELECT count(*) FROM chats" if holder.name != "logto" else "SELECT count(*) FROM tenants_probe"
            try:
                with self.connect(holder.url) as conn:
                    ok = conn.execute(query).fetchone()[0] >= 1
            except psycopg.Error as error:
                ok, why = False, type(error).__name__
            else:
                why = "query saw no rows (row-level security?)"
            with self._lock:
                self.counts.connections += 1
                if not ok:
                    self.counts.failed_connections += 1
                    self.counts.failures.append(f"{holder.name}: {why}")
            with self._lock:  # the holder may have stopped meanwhile: then its session is closed
                if holder.session is not None and not holder.session.closed:
                    try:
                        ok = holder.session.execute(query).fetchone()[0] >= 1
                    except psycopg.Error:
                        ok = False
                    self.counts.session_queries += 1
                    if not ok:
                        self.counts.failed_session_queries += 1
                        self.counts.failures.append(f"{holder.name}: its open session failed")

    def seed_application_data(self) -> None:
        """What LobeChat's migrations and Logto's seed create, each with its own URL (after the first up)."""
        with self._lock:
            lobechat = next(iter(self.lobechat.values()))
            logto = self.logto
        assert logto is not None
        with self.connect(lobechat.url) as conn:
            conn.execute("CREATE TABLE chats (id serial PRIMARY KEY, body text)")
            conn.execute("INSERT INTO chats (body) VALUES ('a user''s chat')")
        with self.connect(logto.url) as conn:
            conn.execute("CREATE TABLE tenants_probe (id text PRIMARY KEY, db_user text)")
            conn.execute("INSERT INTO tenants_probe VALUES ('default', 'logto_tenant_logto_default')")
            conn.execute("ALTER TABLE tenants_probe ENABLE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY tenants_probe_tenant ON tenants_probe USING (db_user = current_user)")

    def logins(self) -> dict[str, bool]:
        with self.admin() as conn:
            rows = conn.execute(
                "SELECT rolname, rolcanlogin AND rolpassword IS NOT NULL FROM pg_authid "
                "WHERE rolname ~ '^(lobechat|logto)(_g[0-9]+)?$' ORDER BY rolname").fetchall()
        return dict(rows)

    def owners(self) -> dict[str, str]:
        owners: dict[str, str] = {}
        for database in ("lobechat", "logto"):
            with self.admin(database) as conn:
                owners.update(conn.execute("SELECT tablename::text, tableowner::text FROM pg_tables "
                                           "WHERE schemaname = 'public'").fetchall())
        return owners

    def close(self) -> None:
        for container_id in list(self.lobechat):
            self.stop_lobechat(container_id)
        self.replace_logto(None)


# --- the engine side -------------------------------------------------------------------------------


class DbRolloutMocks(RolloutMocks):
    """The rollout mocks with the stage's Postgres, its SQL steps, LobeChat's and Logto's URLs real."""

    def __init__(self, *args: Any, db: Database, **kwargs: Any) -> None:
        self.db = db
        super().__init__(*args, **kwargs)

    def new_resource(self, args: Any) -> tuple[str, dict]:
        if args.typ == CONTAINER and args.name == "postgres" and not self.preview:
            self.db.initialise(dict(item.split("=", 1) for item in _plain(args.inputs.get("envs")) or []))
        if args.typ == CONTAINER and args.name in SQL_STEPS:
            return self._run_sql_step(args)
        if args.typ == CONTAINER and args.name == "logto" and not self.preview:
            self._run_logto(args)
        return super().new_resource(args)

    def _run_sql_step(self, args: Any) -> tuple[str, dict]:
        resource_id, outs = super().new_resource(args)
        inputs = _plain(args.inputs)
        previous = self.db.step_inputs.get(args.name)
        if self.preview or previous == inputs:
            return resource_id, outs  # unchanged: the Docker provider keeps the exited container
        code, logs = self.db.run_step(args.name, inputs)
        outs["exitCode"], outs["containerLogs"] = code, logs
        if code == 0:
            self.db.step_inputs[args.name] = inputs
        self.on_step(f"{args.name} ran")
        return resource_id, outs

    def _run_logto(self, args: Any) -> None:
        env = dict(item.split("=", 1) for item in _plain(args.inputs.get("envs")) or [])
        holder = self.db.logto
        if holder is not None and holder.url == env["DB_URL"]:
            return
        # A fixed-name container, replaced delete-before-create: the old Logto stops first.
        self.db.replace_logto(None)
        self.on_step("logto stopped")
        self.db.replace_logto(env["DB_URL"])
        self.on_step("logto started")

    def _run_lobechat(self, args: Any) -> tuple[str, dict]:
        before = {r.container_id for r in self.fleet.running()}
        resource_id, outs = super()._run_lobechat(args)
        for replica in self.fleet.running():
            if replica.container_id not in before:
                self.db.start_lobechat(replica.container_id, replica.env["DATABASE_URL"])
                self.on_step("lobechat connected")
        return resource_id, outs

    def _stop(self, container_id: str) -> None:
        self.db.stop_lobechat(container_id)
        super()._stop(container_id)


class DbStage(Stage):
    """A stage whose runs go through `DbRolloutMocks`."""

    def __init__(self, standin: LogtoStandIn, clock: TestClock, rotation: Mapping[str, Any], db: Database) -> None:
        super().__init__(standin, clock, rotation)
        self.db = db
        self.run_seconds: list[float] = []

    def up(self, *, preview: bool = False, **overrides: Any) -> tuple[ProgramRun, RolloutMocks]:
        import tests.rollout_harness as harness

        original = harness.RolloutMocks
        harness.RolloutMocks = lambda *a, **kw: DbRolloutMocks(*a, db=self.db, **kw)  # type: ignore[misc]
        started = time.monotonic()
        try:
            return super().up(preview=preview, **overrides)
        finally:
            harness.RolloutMocks = original  # type: ignore[misc]
            if not preview:
                self.run_seconds.append(time.monotonic() - started)


class DbProbes:
    """``db.probe()`` from a background thread and after every engine step (bounded: stops by itself)."""

    def __init__(self, db: Database, max_seconds: float = 180.0) -> None:
        self.db = db
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + max_seconds
        self._thread = threading.Thread(target=self._loop, name="postgres-probes", daemon=True)

    def __enter__(self) -> DbProbes:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            self.probe()
            time.sleep(0.01)  # not Event.wait(timeout): under libfaketime a timed wait never times out

    def probe(self, _label: str = "") -> None:
        with self._lock:
            self.db.probe()


@pytest.fixture
def make_stage() -> Iterator[Any]:
    bin_dir = pgserver_bin_dir()
    require_or_skip(bin_dir is not None, "pgserver not installed: pip install -r requirements-dev.txt")
    problem = missing_postgres_prerequisite(bin_dir)
    require_or_skip(problem is None, problem or "")
    made: list[tuple[DbStage, LogtoStandIn, Database]] = []
    with running_postgres(bin_dir) as pg:

        def make(rotation: Mapping[str, Any]) -> DbStage:
            server = LogtoStandIn().start()
            db = Database(pg)
            stage = DbStage(server, TestClock(T0), rotation, db)
            made.append((stage, server, db))
            return stage

        yield make
        for stage, server, db in made:
            stage.close()
            db.close()
            server.stop()


def up_with_probes(stage: DbStage, probes: DbProbes, **overrides: Any) -> tuple[ProgramRun, RolloutMocks]:
    stage.on_step = probes.probe
    probes.probe()
    try:
        return stage.up(**overrides)
    finally:
        probes.probe()
        stage.on_step = lambda label: None


def generation(stage: Stage) -> int:
    return int(stage.state[(ROTATION_KEY, "rotation-postgres-password")].outputs["generation"])


def assert_one_shots_log_in(stage: DbStage, run: ProgramRun) -> None:
    """Every container of the run that logs in as an application role can still log in now."""
    checked = []
    for resource in run.of_type(CONTAINER):
        env = resource.env()
        url = env.get("DATABASE_URL") or env.get("DB_URL")
        for upload in resource.plain("uploads") or []:
            if str(upload.get("file", "")).endswith("/db-url"):  # the Logto database setup: DB_URL as a file
                url = str(upload["content"])
        if url is None and env.get("PGUSER") not in (None, "postgres"):
            password = env.get("PGPASSWORD")
            for upload in resource.plain("uploads") or []:
                if str(upload.get("file", "")).endswith("/pgpass"):
                    password = str(upload["content"]).strip().split(":", 4)[4]
            url = f"postgresql://{env['PGUSER']}:{password}@postgres:5432/{env.get('PGDATABASE', env['PGUSER'])}"
        if url is None or resource.name.endswith("-ready-wait"):
            continue
        user = unquote(urlsplit(url).username or "")
        with stage.db.connect(url) as conn:
            assert conn.execute("SELECT session_user::text").fetchone()[0] == user
        checked.append(resource.name)
    assert {"logto-database-preflight", "logto-database-setup", "logto-bootstrap-psql"} <= set(checked), checked


# --- the tests --------------------------------------------------------------------------------------


def test_a_stage_without_postgres_rotation_keeps_its_logins_for_good(make_stage):
    stage = make_stage({"maxAge": {"clientSecret": "30d"}})
    stage.up()
    stage.db.seed_application_data()
    secrets_before = {k: v.outputs.get("value") for k, v in stage.state.items() if k[0] == RANDOM_SECRET}
    for _ in range(3):
        stage.clock.advance(200)
        run, _ = stage.up()
    assert generation(stage) == 0
    assert stage.db.logins() == {"lobechat": True, "logto": True}
    same = all(stage.state[k].outputs.get("value") == v for k, v in secrets_before.items())
    assert same
    assert stage.db.step_runs.count("postgres-roles-psql") == 1  # never re-run
    assert_one_shots_log_in(stage, run)


def test_postgres_password_rotation_has_zero_failed_connections_and_keeps_the_data(make_stage):
    stage = make_stage(PG_30D)
    stage.up()
    stage.db.seed_application_data()
    assert stage.db.logins() == {"lobechat": True, "logto": True}
    with DbProbes(stage.db) as probes:
        # Rotation run: new logins, Logto and LobeChat on them, Logto's old login retired.
        stage.clock.advance(31)
        run, mocks = up_with_probes(stage, probes)
        assert generation(stage) == 1
        state = stage.state[(ROTATION_KEY, "rotation-postgres-password")].outputs
        assert state["reason"] == "age 31d >= maxAge 30d"
        assert stage.db.logins() == {"lobechat": True, "lobechat_g1": True, "logto": False, "logto_g1": True}
        assert all(urlsplit(h.url).username == "lobechat_g1" for h in stage.db.lobechat.values())
        assert_one_shots_log_in(stage, run)
        # The next run: the old LobeChat is gone, its login is retired; then nothing changes.
        run, mocks = up_with_probes(stage, probes)
        assert mocks.replacements == [] and stage.db.logins()["lobechat"] is False
        _, quiet = up_with_probes(stage, probes)
        assert quiet.updates == [] and quiet.replacements == []
        # Two more rotations: logins two generations old are dropped.
        for _ in range(2):
            stage.clock.advance(31)
            up_with_probes(stage, probes)
            up_with_probes(stage, probes)
        assert generation(stage) == 3
        assert stage.db.logins() == {"lobechat": False, "lobechat_g2": False, "lobechat_g3": True, "logto": False,
                                     "logto_g2": False, "logto_g3": True}
    counts = stage.db.counts
    assert counts.failed_connections == 0, counts.failures[:5]
    assert counts.failed_session_queries == 0 and counts.session_queries > 0
    assert counts.connections > 50
    assert stage.db.owners() == {"chats": "lobechat", "tenants_probe": "logto"}
    with stage.db.admin("lobechat") as conn:
        assert conn.execute("SELECT count(*) FROM chats").fetchone()[0] == 1


def test_a_lobechat_that_never_gets_healthy_leaves_the_old_login_working_and_the_next_run_converges(make_stage):
    stage = make_stage(PG_30D)
    stage.up()
    stage.db.seed_application_data()
    with DbProbes(stage.db) as probes:
        stage.clock.advance(31)
        stage.fleet.fail_next_start = True
        stage.on_step = probes.probe
        with failing_run_quietly(RuntimeError), pytest.raises(RuntimeError, match="health check never passed"):
            stage.up()
        probes.probe()
        # The old LobeChat runs on, on its login, which still logs in.
        assert [urlsplit(h.url).username for h in stage.db.lobechat.values()] == ["lobechat"]
        assert stage.db.logins()["lobechat"] is True and stage.db.logins()["lobechat_g1"] is True
        up_with_probes(stage, probes)  # converges: LobeChat on generation 1
        assert [urlsplit(h.url).username for h in stage.db.lobechat.values()] == ["lobechat_g1"]
        assert stage.db.logins()["lobechat"] is True  # the old container ran until the end of that run
        up_with_probes(stage, probes)
        assert stage.db.logins() == {"lobechat": False, "lobechat_g1": True, "logto": False, "logto_g1": True}
    assert stage.db.counts.failed_connections == 0, stage.db.counts.failures[:5]
    assert stage.db.counts.failed_session_queries == 0


def test_a_failed_retirement_keeps_the_stage_working_and_the_next_run_retires(make_stage):
    stage = make_stage(PG_30D)
    stage.up()
    stage.db.seed_application_data()
    stage.clock.advance(31)
    # The superuser password fails the retirement step's login once (e.g. a restart racing it).
    original = stage.db.run_step

    def failing_once(name: str, inputs: Mapping[str, Any]) -> tuple[int, str]:
        if name == "postgres-logins-psql" and not getattr(failing_once, "done", False):
            failing_once.done = True  # type: ignore[attr-defined]
            return 2, "psql: error: connection to server failed: Connection refused"
        return original(name, inputs)

    stage.db.run_step = failing_once  # type: ignore[method-assign]
    with DbProbes(stage.db) as probes:
        stage.on_step = probes.probe
        with failing_run_quietly(Exception), pytest.raises(Exception, match="login retirement step"):
            stage.up()
        assert stage.db.logins() == {"lobechat": True, "lobechat_g1": True, "logto": True, "logto_g1": True}
        up_with_probes(stage, probes)
        up_with_probes(stage, probes)
    assert stage.db.logins() == {"lobechat": False, "lobechat_g1": True, "logto": False, "logto_g1": True}
    assert stage.db.counts.failed_connections == 0, stage.db.counts.failures[:5]


def test_preview_shows_the_postgres_rotation_and_changes_nothing(make_stage):
    stage = make_stage(PG_30D)
    stage.up()
    stage.db.seed_application_data()
    state_before, runs_before, logins_before = dict(stage.state), list(stage.db.step_runs), stage.db.logins()
    stage.clock.advance(31)
    _, preview = stage.up(preview=True)
    shown = dict(preview.state[(ROTATION_KEY, "rotation-postgres-password")].inputs)
    assert shown["generation"] == 1 and shown["reason"] == "age 31d >= maxAge 30d"
    assert preview.diffs[(RANDOM_SECRET, "postgres-lobechat-password")] == ["keepers"]
    assert preview.diffs[(RANDOM_SECRET, "postgres-logto-password")] == ["keepers"]
    assert stage.state == state_before and stage.db.step_runs == runs_before and stage.db.logins() == logins_before


def test_rotate_now_rotates_the_postgres_logins_once(make_stage):
    stage = make_stage({})
    stage.up()
    stage.db.seed_application_data()
    stage.rotation = {"rotateNow": {"postgresPassword": "2030-03-18"}}
    with DbProbes(stage.db) as probes:
        up_with_probes(stage, probes)
        up_with_probes(stage, probes)
        assert generation(stage) == 1
        _, quiet = up_with_probes(stage, probes)
        assert generation(stage) == 1 and quiet.replacements == []
    assert stage.db.counts.failed_connections == 0, stage.db.counts.failures[:5]
    assert stage.db.logins() == {"lobechat": False, "lobechat_g1": True, "logto": False, "logto_g1": True}
