"""Logto's database, made ready before the Logto container starts: checked, seeded, altered.

Logto's troubleshooting list, handled here (``../shared/docs/logto.md``):

- **A database user without the right to create roles.** ``logto db seed`` creates the roles
  ``logto_tenant_<db>`` (and ``_default`` / ``_admin``, login roles in it) and the tables in schema
  ``public``. `PREFLIGHT_SQL` runs first (a one-shot ``psql`` of the Postgres image on the stage
  network) and, when the database is not seeded yet, checks that the connecting user may create roles
  (``CREATEROLE`` or superuser) and may create in schema ``public`` (PostgreSQL 15 no longer lets
  everyone), so the failure is one clear message before anything is written.
- **"role … already exists" on a re-seed.** Seeded databases are skipped (``--swe``). A database that
  is not seeded but whose ``logto_tenant_<db>`` roles exist (the database was dropped and created
  again: roles are cluster-wide and outlive it) would fail the seed with ``role "…" already exists``;
  the preflight drops those stale roles first (they own nothing: their database is gone; if something
  still depends on them it stops and names them).
- **``--encrypt-base-role``** on external databases (hosted Postgres such as Neon).
- **Pending alterations after a version bump** are deployed (``alteration deploy latest``, ``CI=true``)
  by `LogtoDatabaseSetup`'s one-shot container of the Logto image, before Logto starts; a failed seed
  or alteration fails ``pulumi up`` with the tail of that container's log (`LogtoDatabaseError`), the
  log's secrets redacted (the seed prints the base role's password with ``--encrypt-base-role``).
- **``--skip-seed``** (``logtoDatabase.skipSeed``): where the stack's database user must not create
  roles, seed once with a privileged user and let the stack only deploy alterations; the messages
  offer it where it is the fix.

Neither one-shot container has a secret in its environment (``docker inspect`` shows it for as long
as the container exists): the preflight's password is a 0600 libpq password file that the script
deletes once psql connected (and its entrypoint deletes after psql, whatever happened); the setup's
``DB_URL`` is a 0600 file that its ``sh`` script reads into the CLI's environment and deletes before
the CLI starts (`setup_script`).

The Logto container keeps its own seed-and-alter start command as a safety net (both steps are no-ops
once this ran), and its environment waits on this step's outcome, so it is not even created after a
failure.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote, urlsplit

import pulumi
import pulumi_docker as docker

from components.one_shot import ROLE_LABEL, one_shot_container, secret_file_uploads
from components.logto_bootstrap import pgpass_line, readable_container_logs
from components.postgres_url import libpq_environment

LOG_TAIL_LINES = 25
PREFLIGHT_SCRIPT_PATH = "/logto-preflight.sql"

PREFLIGHT_SQL = r"""-- lobechat-logto: is Logto's database ready to be seeded? (components/logto_database.py)
\set ON_ERROR_STOP 1
\set ECHO none
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- In the container the password comes as a libpq password file (never in its environment, which
-- `docker inspect` shows): psql has connected with it, so it is deleted before anything can fail.
\getenv secret_dir LOGTO_DATABASE_SECRET_DIR
\if :{?secret_dir}
\set preflight_files_removed `rm -f -- :'secret_dir'/pgpass && echo yes`
\endif
\if :{?skip_seed}
\else
\set skip_seed false
\endif

SELECT to_regclass('public.logto_configs') IS NOT NULL AS preflight_seeded,
       (SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user) AS preflight_createrole,
       has_schema_privilege(current_user, 'public', 'CREATE') AS preflight_schema_create,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'logto_tenant_' || replace(current_database(), '-', '_'))
         AS preflight_stale_roles \gset

\if :preflight_seeded
\echo 'logto preflight: the database is seeded (the seed is skipped; pending alterations are deployed)'
\quit
\endif

\if :skip_seed
DO $$ BEGIN RAISE EXCEPTION 'logto preflight: logtoDatabase.skipSeed is on, but database "%" is not seeded: seed it once with a user that may create roles (DB_URL=<privileged URL> npx @logto/cli db seed), or turn logtoDatabase.skipSeed off', current_database(); END $$;
\endif

\if :preflight_createrole
\else
DO $$ BEGIN RAISE EXCEPTION 'logto preflight: the database user "%" cannot create roles, and seeding database "%" creates the role "logto_tenant_%" ("permission denied to create role"): grant it with ALTER ROLE "%" CREATEROLE as an administrator, or seed the database once with a privileged user and set logtoDatabase.skipSeed: true (the --skip-seed of Logto''s docs)', current_user, current_database(), replace(current_database(), '-', '_'), current_user; END $$;
\endif

\if :preflight_schema_create
\else
DO $$ BEGIN RAISE EXCEPTION 'logto preflight: the database user "%" may not create tables in schema public of database "%" (PostgreSQL 15 and newer grant that to the database owner only): make it the owner (ALTER DATABASE "%" OWNER TO "%") or GRANT CREATE ON SCHEMA public TO "%"', current_user, current_database(), current_database(), current_user, current_user; END $$;
\endif

\if :preflight_stale_roles
-- Roles of an earlier database with this name (roles outlive a dropped database): they would make the
-- seed fail with 'role "..." already exists'. Its login roles are members of the base role.
DO $$
DECLARE
  base text := 'logto_tenant_' || replace(current_database(), '-', '_');
  member record;
BEGIN
  FOR member IN
    SELECT m.rolname FROM pg_auth_members am
    JOIN pg_roles m ON m.oid = am.member JOIN pg_roles b ON b.oid = am.roleid
    WHERE b.rolname = base
  LOOP
    EXECUTE format('DROP ROLE %I', member.rolname);
    RAISE NOTICE 'logto preflight: dropped the stale role % (left by an earlier database of this name)', member.rolname;
  END LOOP;
  EXECUTE format('DROP ROLE %I', base);
  RAISE NOTICE 'logto preflight: dropped the stale role % (left by an earlier database of this name)', base;
EXCEPTION
  WHEN dependent_objects_still_exist OR insufficient_privilege THEN
    RAISE EXCEPTION 'logto preflight: the roles % and its members exist although database "%" is not seeded (an earlier database of this name left them) and cannot be dropped here (%): drop them as an administrator (DROP OWNED BY ...; DROP ROLE ...), then run pulumi up again', base, current_database(), SQLERRM;
END $$;
\endif
\echo 'logto preflight: the database is ready to be seeded'
"""

_PSQL_EXIT = {
    1: "psql itself failed",
    2: "psql could not connect: Postgres is unreachable from the stage network, or the URL/password is wrong",
    3: "the database is not ready for Logto",
}


class LogtoDatabaseError(RuntimeError):
    """Logto's database could not be made ready; the message says why and what to do (no secret)."""


def seed_arguments(*, external_database: bool) -> list[str]:
    """``logto db seed`` arguments: skip a seeded database; encrypt the base role on external ones."""
    return ["db", "seed", "--swe", *(["--encrypt-base-role"] if external_database else [])]


ALTERATION_ARGUMENTS = ["db", "alteration", "deploy", "latest"]
"""``logto db alteration deploy latest`` (wants ``CI=true`` so it does not prompt)."""


def setup_command(*, external_database: bool, skip_seed: bool) -> str:
    """The one-shot container's shell command (the Logto image's npm scripts ``cli`` and ``alteration``)."""
    seed = "npm run cli " + " ".join(seed_arguments(external_database=external_database)[:2]) + " -- " + " ".join(
        seed_arguments(external_database=external_database)[2:]
    )
    alteration = "npm run alteration " + " ".join(ALTERATION_ARGUMENTS[2:])
    return alteration if skip_seed else f"{seed} && {alteration}"


def _secrets_of(database_url: str) -> list[str]:
    parts = urlsplit(database_url)
    values = [database_url]
    if parts.password:
        values += [parts.password, unquote(parts.password)]
    return [v for v in values if v]


_STACK_FRAME = re.compile(r"^\s+at\s")
_CLI_ERROR = re.compile(r"^\s*(error|fatal)\b", re.IGNORECASE)
_BASE_ROLE_PASSWORD = re.compile(r"(base role password:\s*)\S+", re.IGNORECASE)


def redacted_log_tail(logs: str | None, secrets: Iterable[str] = (), lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a container's output, Docker frame headers and secrets removed."""
    text = _BASE_ROLE_PASSWORD.sub(r"\1[redacted]", readable_container_logs(logs))
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    # Node stack frames say nothing to an operator; the CLI's own error/fatal lines say the most.
    kept = [line for line in text.splitlines() if line.strip() and not _STACK_FRAME.match(line)]
    tail = kept[-lines:]
    key = [line for line in kept[: len(kept) - len(tail)] if _CLI_ERROR.match(line)][:5]
    return "\n".join(key + (["..."] if key else []) + tail) or "(no output)"


def _diagnosis(text: str, *, skip_seed: bool) -> str:
    lowered = text.lower()
    if "permission denied to create role" in lowered or "createrole" in lowered:
        return ("the database user may not create roles: grant CREATEROLE, or seed once with a privileged user and set "
                "logtoDatabase.skipSeed: true")
    if "already exists" in lowered and "role" in lowered:
        return ("roles of an earlier Logto database of this name exist: drop the roles logto_tenant_<db>* as an administrator "
                "(the preflight does when it may), then run pulumi up again")
    if "alteration" in lowered:
        return ("a database alteration failed; nothing after it was applied and Logto will not start on a half-upgraded "
                "database: fix the cause shown above (or restore the pre-upgrade backup and pin the previous logto.image), "
                "then run pulumi up again")
    if "econnrefused" in lowered or "enotfound" in lowered or "connection terminated" in lowered:
        return "Postgres is unreachable from the Logto container: check the Postgres container and DB_URL's host"
    if "seed" in lowered and not skip_seed:
        return ("the seed failed (it runs in one transaction: nothing was written); if the database is seeded by other means, "
                "set logtoDatabase.skipSeed: true (the --skip-seed of Logto's docs)")
    return "see the log above"


def check_preflight_exit(exit_code: int | None, logs: str | None, *, secrets: Sequence[str] = (), urn: str = "") -> str:
    """Raise `LogtoDatabaseError` unless the preflight exited 0; return its last line otherwise."""
    tail = redacted_log_tail(logs, secrets)
    if exit_code == 0:
        return tail.splitlines()[-1] if tail else ""
    meaning = _PSQL_EXIT.get(exit_code or -1, f"unexpected exit code {exit_code}")
    target = f" --replace '{urn}'" if urn else ""
    raise LogtoDatabaseError(
        f"Logto's database preflight (psql) exited with code {exit_code}: {meaning}.\n{tail}\n"
        f"Fix the cause, then run: pulumi up{target}"
    )


def check_setup_exit(exit_code: int | None, logs: str | None, *, secrets: Sequence[str] = (), skip_seed: bool = False,
                     urn: str = "") -> None:
    """Raise `LogtoDatabaseError` (with the tail of the log and a diagnosis) unless the setup exited 0."""
    if exit_code == 0:
        return
    tail = redacted_log_tail(logs, secrets)
    target = f" --replace '{urn}'" if urn else ""
    raise LogtoDatabaseError(
        f"Logto's database setup (seed + alteration deploy) exited with code {exit_code}: "
        f"{_diagnosis(tail, skip_seed=skip_seed)}.\nLast lines of its log:\n{tail}\n"
        f"Then run: pulumi up{target}"
    )


def preflight_arguments(*, skip_seed: bool) -> list[str]:
    """``psql`` arguments of the preflight (connection from libpq's PG* variables)."""
    return ["--no-psqlrc", "--set", f"skip_seed={'true' if skip_seed else 'false'}", "--file", PREFLIGHT_SCRIPT_PATH]


def preflight_environment(database_url: str) -> dict[str, str]:
    """libpq's connection variables of the URL, the password among them (the tests' direct runs)."""
    return {"PGCONNECT_TIMEOUT": "15", "PGAPPNAME": "lobechat-logto-preflight", **libpq_environment(database_url)}


SECRET_DIR_IN_CONTAINER = "/run/lobechat-logto"
"""Where both one-shot containers get their secret file (deleted by the step right after it started)."""

SECRET_DIR_ENV_VAR = "LOGTO_DATABASE_SECRET_DIR"
PGPASS_FILE = "pgpass"
DB_URL_FILE = "db-url"


def preflight_secret_files(database_url: str, secret_dir: str = SECRET_DIR_IN_CONTAINER) -> tuple[dict[str, str], dict[str, str]]:
    """``(environment, files)`` of the preflight container: the password in a libpq password file only.

    `PREFLIGHT_SQL` deletes the file once psql has connected, so neither ``docker inspect`` nor the
    stopped container (kept: its exit code is the step's outcome) holds the password.
    """
    environment = preflight_environment(database_url)
    password = environment.pop("PGPASSWORD", "")
    environment["PGPASSFILE"] = f"{secret_dir}/{PGPASS_FILE}"
    environment[SECRET_DIR_ENV_VAR] = secret_dir
    return environment, {f"{secret_dir}/{PGPASS_FILE}": pgpass_line(password)}


PREFLIGHT_ENTRYPOINT = [
    "sh", "-c",
    # psql deletes the password file once connected (PREFLIGHT_SQL); when it never got that far (no
    # connection, a wrong password) the file goes here, so the stopped container never keeps it.
    'psql "$@"; status=$?; rm -f -- "${PGPASSFILE:-}"; exit "$status"',
    "logto-preflight",
]
"""The preflight container's entrypoint; the container's command (`preflight_arguments`) follows."""


def setup_script(command: str) -> str:
    """The setup container's ``sh -c`` script: ``DB_URL`` read from a file that is deleted, then ``command``.

    The Logto CLI reads its database URL from the environment variable ``DB_URL`` only; set by the
    shell, it is in the processes' environment but not in the container's configuration (what
    ``docker inspect`` shows), and the file is gone before the CLI starts.
    """
    return (
        f'url_file="${{{SECRET_DIR_ENV_VAR}:-{SECRET_DIR_IN_CONTAINER}}}/{DB_URL_FILE}"\n'
        'if [ ! -s "$url_file" ]; then\n'
        '  rm -f -- "$url_file"\n'
        '  echo "logto database setup: no database URL in $url_file (the stack uploads it when it creates this container;'
        ' run pulumi up --replace on this container)" >&2\n'
        "  exit 1\n"
        "fi\n"
        'DB_URL=$(cat -- "$url_file")\n'
        "read_status=$?\n"
        'rm -f -- "$url_file" || exit 1\n'
        '[ "$read_status" -eq 0 ] || exit 1\n'
        "export DB_URL\n"
        f"{command}\n"
    )


class LogtoDatabaseSetup(pulumi.ComponentResource):
    """Preflight (psql) then seed + alterations (Logto image), one-shot containers on the stage network.

    ``ready`` resolves once both exited 0 (else the program fails with `LogtoDatabaseError`); the
    Logto container's environment waits on it. Both re-run when the Logto image, the database URL
    or the script changes.
    """

    ready: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        logto_image: pulumi.Input[str],
        psql_image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        database_url: pulumi.Input[str],
        external_database: bool,
        skip_seed: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:logto:LogtoDatabaseSetup", name, None, opts)
        depends_on = opts.depends_on if opts is not None else None
        url = pulumi.Output.secret(database_url)
        script_hash = hashlib.sha256(PREFLIGHT_SQL.encode()).hexdigest()
        prepared = url.apply(preflight_secret_files)
        pgpass_path = f"{SECRET_DIR_IN_CONTAINER}/{PGPASS_FILE}"
        db_url_path = f"{SECRET_DIR_IN_CONTAINER}/{DB_URL_FILE}"
        self.preflight = one_shot_container(
            f"{name}-preflight",
            image=psql_image,
            entrypoints=PREFLIGHT_ENTRYPOINT,
            command=preflight_arguments(skip_seed=skip_seed),
            # Host, user, database (not secret, but of a secret URL) and where the password file is.
            envs=pulumi.Output.secret(prepared.apply(lambda r: [f"{k}={v}" for k, v in r[0].items()])),
            uploads=[
                docker.ContainerUploadArgs(file=PREFLIGHT_SCRIPT_PATH, content=PREFLIGHT_SQL),
                *secret_file_uploads(prepared.apply(lambda r: r[1]), [pgpass_path]),
            ],
            labels={
                ROLE_LABEL: "logto-preflight",
                "lobechat-logto.preflight-sql-sha256": script_hash,
                # A new Logto image re-runs the preflight, and so the setup after it.
                "lobechat-logto.logto-image": logto_image,
            },
            network_name=network_name,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        preflight_ok = pulumi.Output.all(self.preflight.exit_code, self.preflight.container_logs, url, self.preflight.urn).apply(
            lambda v: check_preflight_exit(v[0], v[1], secrets=_secrets_of(v[2]), urn=v[3] or "")
        )
        command = setup_command(external_database=external_database, skip_seed=skip_seed)
        self.setup = one_shot_container(
            f"{name}-setup",
            image=logto_image,
            entrypoints=["sh", "-c", setup_script(command)],
            # The preflight's outcome is part of the environment: no setup after a failed preflight.
            # No secret in it: DB_URL comes from a file the script deletes before the CLI starts.
            envs=pulumi.Output.unsecret(
                preflight_ok.apply(lambda _: ["CI=true", f"{SECRET_DIR_ENV_VAR}={SECRET_DIR_IN_CONTAINER}"])
            ),
            uploads=[docker.ContainerUploadArgs(file=db_url_path, content=url, permissions="0600")],
            labels={ROLE_LABEL: "logto-database-setup"},
            network_name=network_name,
            # The seed runs Logto's CLI (Node): the Logto container's default limit.
            memory_mb=1024,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.preflight]),
        )
        self.ready = pulumi.Output.all(self.setup.exit_code, self.setup.container_logs, url, self.setup.urn).apply(
            lambda v: check_setup_exit(v[0], v[1], secrets=_secrets_of(v[2]), skip_seed=skip_seed, urn=v[3] or "") or "ready"
        )
        self.register_outputs({"ready": self.ready})
