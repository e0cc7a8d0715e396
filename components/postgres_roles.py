"""Least privilege in the stack's Postgres: LobeChat and Logto each connect as their own role.

- ``lobechat``: LOGIN only (no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS); owns the
  database ``lobechat``. pgvector's control file does not mark it trusted (0.6.2 in the test server,
  0.7.x upstream), so a non-superuser owner may *not* create it: this step creates ``vector`` (and
  ``pg_search`` where the image has it) as the superuser, and LobeChat's own
  ``CREATE EXTENSION IF NOT EXISTS vector`` then succeeds as its role.
- ``logto``: LOGIN and CREATEROLE, nothing else; owns the database ``logto``. CREATEROLE is the least
  Logto's seed needs: ``logto db seed`` creates its tenant roles (``logto_tenant_<db>...``) and fails
  without it ("permission denied to create role"); it needs no superuser (checked with the real
  ``@logto/cli`` against PostgreSQL 15 and 16).
- Neither role may connect to the other's database (CONNECT revoked from PUBLIC).

The superuser is used by this one step only: a one-shot ``psql`` container (the Postgres image's own)
runs `roles_sql()` after Postgres is ready, on every volume, new or existing. The script is
idempotent: it creates what is missing, sets both passwords (each a separate generated secret, so
they can be rotated on their own), makes each role the owner of its database and, on a volume from
before this change, of every object the superuser created there (tables, sequences, views,
functions, types, schemas; extension members stay with the extension), and lets ``logto`` administer
the tenant roles an earlier seed created as the superuser. Like the Logto bootstrap, every password
reaches the container as a file the script deletes right after reading (none in its environment),
and the component checks the exit code itself (see ``components/logto_bootstrap.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pulumi
import pulumi_docker as docker

from components.logto_bootstrap import pgpass_line, readable_container_logs
from components.one_shot import ROLE_LABEL, one_shot_container, replace_target, secret_file_uploads

LOBECHAT_ROLE = "lobechat"
LOGTO_ROLE = "logto"
SCRIPT_PATH_IN_CONTAINER = "/postgres-roles.sql"
SECRET_DIR_IN_CONTAINER = "/run/lobechat-logto"
SECRET_DIR_ENV_VAR = "POSTGRES_ROLES_SECRET_DIR"
SQL_HASH_LABEL = "lobechat-logto.postgres-roles-sql-sha256"
SECRET_FILES = ("superuser-password", "lobechat-password", "logto-password", "pgpass")

# Constant text: values arrive as psql variables, quoted by psql (:'name'), never formatted in Python.
_ROLES_SQL = r"""-- lobechat-logto: per-application Postgres roles (run as the superuser; idempotent).
\set ON_ERROR_STOP 1
\set ECHO none
\set VERBOSITY terse
\set SHOW_CONTEXT never

\getenv secret_dir POSTGRES_ROLES_SECRET_DIR
\if :{?secret_dir}
\set superuser_password `cat -- :'secret_dir'/superuser-password`
\set lobechat_password `cat -- :'secret_dir'/lobechat-password`
\set logto_password `cat -- :'secret_dir'/logto-password`
\set roles_files_removed `rm -f -- :'secret_dir'/superuser-password :'secret_dir'/lobechat-password :'secret_dir'/logto-password :'secret_dir'/pgpass && echo yes`
-- \connect below opens new connections; the password file is gone, so libpq takes it from here.
\setenv PGPASSWORD :superuser_password
\else
\getenv lobechat_password POSTGRES_LOBECHAT_PASSWORD
\getenv logto_password POSTGRES_LOGTO_PASSWORD
\endif

SELECT length(coalesce(:'lobechat_password', '')) >= 16 AND length(coalesce(:'logto_password', '')) >= 16
       AND :'lobechat_password' <> :'logto_password' AS roles_passwords_ok,
       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS roles_superuser_ok \gset
\if :roles_passwords_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'postgres roles: the lobechat and logto passwords must be set, differ, and have at least 16 characters'; END $$;
\endif
\if :roles_superuser_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'postgres roles: this step must connect as the superuser (it creates roles and changes owners)'; END $$;
\endif

SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lobechat') AS roles_create_lobechat,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'logto') AS roles_create_logto \gset
\if :roles_create_lobechat
CREATE ROLE lobechat LOGIN;
\endif
\if :roles_create_logto
CREATE ROLE logto LOGIN;
\endif
ALTER ROLE lobechat WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'lobechat_password';
-- CREATEROLE: Logto's seed creates its tenant roles; nothing more.
ALTER ROLE logto WITH LOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'logto_password';

SELECT 'CREATE DATABASE lobechat OWNER lobechat' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'lobechat') \gexec
SELECT 'CREATE DATABASE logto OWNER logto' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'logto') \gexec
ALTER DATABASE lobechat OWNER TO lobechat;
ALTER DATABASE logto OWNER TO logto;
REVOKE ALL ON DATABASE lobechat FROM PUBLIC;
REVOKE ALL ON DATABASE logto FROM PUBLIC;

-- In each database: what the superuser created there before this step existed goes to the owner.
\set roles_adopt 'DO $adopt$ DECLARE r record; owner_role text := current_database(); su oid := (SELECT oid FROM pg_roles WHERE rolname = current_user); BEGIN FOR r IN SELECT n.nspname FROM pg_namespace n WHERE n.nspowner = su AND n.nspname NOT LIKE ''pg\\_%'' AND n.nspname <> ''information_schema'' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = ''pg_namespace''::regclass AND d.objid = n.oid AND d.deptype = ''e'') LOOP EXECUTE format(''ALTER SCHEMA %I OWNER TO %I'', r.nspname, owner_role); END LOOP; FOR r IN SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relowner = su AND c.relkind IN (''r'', ''p'', ''v'', ''m'', ''f'', ''S'') AND n.nspname NOT LIKE ''pg\\_%'' AND n.nspname <> ''information_schema'' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = ''pg_class''::regclass AND d.objid = c.oid AND d.deptype IN (''e'', ''a'', ''i'')) LOOP EXECUTE format(CASE r.relkind WHEN ''S'' THEN ''ALTER SEQUENCE %I.%I OWNER TO %I'' WHEN ''v'' THEN ''ALTER VIEW %I.%I OWNER TO %I'' WHEN ''m'' THEN ''ALTER MATERIALIZED VIEW %I.%I OWNER TO %I'' WHEN ''f'' THEN ''ALTER FOREIGN TABLE %I.%I OWNER TO %I'' ELSE ''ALTER TABLE %I.%I OWNER TO %I'' END, r.nspname, r.relname, owner_role); END LOOP; FOR r IN SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.proowner = su AND n.nspname NOT LIKE ''pg\\_%'' AND n.nspname <> ''information_schema'' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = ''pg_proc''::regclass AND d.objid = p.oid AND d.deptype = ''e'') LOOP EXECUTE format(''ALTER ROUTINE %s OWNER TO %I'', r.oid::regprocedure, owner_role); END LOOP; FOR r IN SELECT t.oid FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typowner = su AND t.typtype IN (''e'', ''d'', ''r'', ''m'') AND n.nspname NOT LIKE ''pg\\_%'' AND n.nspname <> ''information_schema'' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = ''pg_type''::regclass AND d.objid = t.oid AND d.deptype IN (''e'', ''i'')) LOOP EXECUTE format(''ALTER TYPE %s OWNER TO %I'', r.oid::regtype, owner_role); END LOOP; END $adopt$;'

\connect lobechat
-- pgvector up to at least 0.7 is not marked trusted: only a superuser may create it, so it is created
-- here and LobeChat's own `CREATE EXTENSION IF NOT EXISTS vector` finds it. Likewise pg_search (2.x).
SELECT 'CREATE EXTENSION IF NOT EXISTS vector' WHERE EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') \gexec
SELECT 'CREATE EXTENSION IF NOT EXISTS pg_search' WHERE EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_search') \gexec
:roles_adopt
\connect logto
:roles_adopt
-- Tenant roles an earlier seed created as the superuser: logto must be able to grant them
-- (PostgreSQL 16 lets a CREATEROLE role manage only roles it administers).
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'logto\_tenant\_%' AND NOT pg_has_role('logto', oid, 'USAGE WITH ADMIN OPTION') LOOP
    EXECUTE format('GRANT %I TO logto WITH ADMIN OPTION', r.rolname);
  END LOOP;
END $$;
\echo 'postgres roles: lobechat and logto own their databases'
"""


# Generation N >= 1 of the application passwords (rotation.*.postgresPassword): the owner roles keep
# owning everything; LobeChat and Logto log in as a login role of that generation, a member of the
# owner whose every session acts as the owner (``SET role``). Only this part of the script differs.
_ROLES_PART_START = "SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lobechat') AS roles_create_lobechat,"
_ROLES_PART_END = "ALTER ROLE logto WITH LOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'logto_password';\n"
_GENERATION_ROLES_PART = r"""SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lobechat') AS roles_create_lobechat,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'logto') AS roles_create_logto,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'lobechat_login') AS roles_create_lobechat_login,
       NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'logto_login') AS roles_create_logto_login \gset
-- A new volume at a later generation (a rebuild): the owner roles exist but never log in themselves.
\if :roles_create_lobechat
CREATE ROLE lobechat NOLOGIN;
\endif
\if :roles_create_logto
CREATE ROLE logto NOLOGIN;
\endif
-- The owners' LOGIN and password are left as they are: the previous generation's containers may still
-- log in with them; the retirement step takes them away once nothing holds them.
ALTER ROLE lobechat WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE logto WITH NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS;
\if :roles_create_lobechat_login
CREATE ROLE :"lobechat_login" LOGIN;
\endif
\if :roles_create_logto_login
CREATE ROLE :"logto_login" LOGIN;
\endif
ALTER ROLE :"lobechat_login" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'lobechat_password';
ALTER ROLE :"logto_login" WITH LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'logto_password';
-- Members of the owners (INHERIT: CONNECT, and the owner's rights even after a DISCARD ALL) whose
-- sessions start as the owner: what they create belongs to it, Logto's CREATEROLE and its
-- row-level-security bypass (the table owner's) apply.
SELECT format('GRANT %I TO %I', 'lobechat', :'lobechat_login')
 WHERE NOT pg_has_role(:'lobechat_login', 'lobechat', 'MEMBER') \gexec
SELECT format('GRANT %I TO %I', 'logto', :'logto_login')
 WHERE NOT pg_has_role(:'logto_login', 'logto', 'MEMBER') \gexec
ALTER ROLE :"lobechat_login" SET role = 'lobechat';
ALTER ROLE :"logto_login" SET role = 'logto';
"""
# After a DISCARD ALL (PostgreSQL 16+: SET SESSION AUTHORIZATION DEFAULT resets the role) a login's
# session acts as itself; what it creates then is handed back to the owner at every run.
_REASSIGN_LOGINS = r"""SELECT format('REASSIGN OWNED BY %I TO %I', rolname, current_database()) FROM pg_roles
 WHERE rolname ~ ('^' || current_database() || '_g[0-9]+$') \gexec
"""
_ADOPT_LINE = ":roles_adopt\n"
_LAST_ECHO = "\\echo 'postgres roles: lobechat and logto own their databases'\n"


def login_role(owner: str, generation: int) -> str:
    """The role LobeChat or Logto logs in as: the owner itself at generation 0, ``<owner>_g<N>`` after."""
    number = int(generation or 0)
    if number < 0:
        raise ValueError("a password generation is a whole number >= 0")
    return owner if number == 0 else f"{owner}_g{number}"


def _generation_sql(generation: int) -> str:
    text = _ROLES_SQL
    start, end = text.index(_ROLES_PART_START), text.index(_ROLES_PART_END) + len(_ROLES_PART_END)
    head = (
        f"\\set lobechat_login '{login_role(LOBECHAT_ROLE, generation)}'\n"
        f"\\set logto_login '{login_role(LOGTO_ROLE, generation)}'\n"
    )
    text = text[:start] + head + _GENERATION_ROLES_PART + text[end:]
    assert text.count(_ADOPT_LINE) == 2 and text.count(_LAST_ECHO) == 1
    text = text.replace(_ADOPT_LINE, _ADOPT_LINE + _REASSIGN_LOGINS)
    return text.replace(
        _LAST_ECHO,
        f"\\echo 'postgres roles: lobechat and logto own their databases; LobeChat logs in as "
        f"{login_role(LOBECHAT_ROLE, generation)}, Logto as {login_role(LOGTO_ROLE, generation)}'\n",
    )


class PostgresRolesError(RuntimeError):
    """The roles step failed; the message says why (psql's terse errors carry no secret)."""


def roles_sql(generation: int = 0) -> str:
    """The psql script that creates / updates the roles (run as the superuser).

    Generation 0 is the script as it was before password rotation (an existing stage sees no change);
    generation N also creates the login roles ``lobechat_gN`` / ``logto_gN`` with the given passwords.
    """
    number = int(generation or 0)
    return _ROLES_SQL if number == 0 else _generation_sql(number)


def roles_sql_sha256(generation: int = 0) -> str:
    """Hex SHA-256 of `roles_sql()`: a label, so a new script re-runs the step."""
    return hashlib.sha256(roles_sql(generation).encode()).hexdigest()


def roles_secret_files(
    superuser_password: str, lobechat_password: str, logto_password: str, secret_dir: str = SECRET_DIR_IN_CONTAINER
) -> dict[str, str]:
    """The files the container gets (deleted by the script right after reading)."""
    return {
        f"{secret_dir}/superuser-password": superuser_password,
        f"{secret_dir}/lobechat-password": lobechat_password,
        f"{secret_dir}/logto-password": logto_password,
        f"{secret_dir}/pgpass": pgpass_line(superuser_password),
    }


def roles_environment(
    host: str, superuser: str, secret_dir: str = SECRET_DIR_IN_CONTAINER, port: int = 5432,
    *, application_name: str = "lobechat-logto-roles",
) -> dict[str, str]:
    """A superuser psql step's environment: where to connect, where the secret files are; no secret.

    The roles step's, and (with its own ``application_name``) the login retirement's."""
    return {
        "PGHOST": host,
        "PGPORT": str(port),
        "PGUSER": superuser,
        "PGDATABASE": "postgres",
        "PGPASSFILE": f"{secret_dir}/pgpass",
        "PGCONNECT_TIMEOUT": "15",
        "PGAPPNAME": application_name,
        SECRET_DIR_ENV_VAR: secret_dir,
    }


def check_roles_exit(exit_code: int | None, logs: str | None, *, urn: str = "") -> None:
    """Raise `PostgresRolesError` unless the roles container exited 0."""
    if exit_code == 0:
        return
    target = replace_target(urn, "the roles container")
    output = readable_container_logs(logs) or "(no output)"
    raise PostgresRolesError(
        f"the Postgres roles step (psql) exited with code {exit_code}.\npsql said:\n{output}\n"
        f"Fix the cause, then run the step again with: pulumi up --replace {target}"
    )


def role_database_url(role: str, password: pulumi.Input[str], database: str, host: str) -> pulumi.Output[str]:
    """``postgresql://<role>:<password>@<host>:5432/<database>`` (alphanumeric passwords: no escaping)."""
    return pulumi.Output.secret(pulumi.Output.concat("postgresql://", role, ":", password, f"@{host}:5432/{database}"))


class PostgresRoles(pulumi.ComponentResource):
    """Runs `roles_sql()` once per change from a one-shot container; ``ready`` resolves after exit 0."""

    ready: pulumi.Output[pulumi.Resource]

    def __init__(
        self,
        name: str,
        *,
        image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        host: str,
        superuser: str,
        superuser_password: pulumi.Input[str],
        lobechat_password: pulumi.Input[str],
        logto_password: pulumi.Input[str],
        generation: pulumi.Input[int] = 0,
        memory_mb: int = 256,
        depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:postgres:PostgresRoles", name, None, opts)
        files = pulumi.Output.all(superuser_password, lobechat_password, logto_password).apply(
            lambda values: roles_secret_files(values[0], values[1], values[2])
        )
        # Generation 0: the script every stage ran before rotation (no change); N: also the logins of N.
        number = pulumi.Output.from_input(generation).apply(lambda g: int(g or 0))
        self.container = one_shot_container(
            f"{name}-psql",
            image=image,
            entrypoints=["psql"],
            command=["--no-psqlrc", "--file", SCRIPT_PATH_IN_CONTAINER],
            envs=[f"{k}={v}" for k, v in roles_environment(host, superuser).items()],
            uploads=[
                docker.ContainerUploadArgs(file=SCRIPT_PATH_IN_CONTAINER, content=number.apply(roles_sql)),
                *secret_file_uploads(files, [f"{SECRET_DIR_IN_CONTAINER}/{file_name}" for file_name in SECRET_FILES]),
            ],
            labels={SQL_HASH_LABEL: number.apply(roles_sql_sha256), ROLE_LABEL: "postgres-roles"},
            network_name=network_name,
            memory_mb=memory_mb,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        outcome = pulumi.Output.all(self.container.exit_code, self.container.container_logs, self.container.urn).apply(
            lambda values: check_roles_exit(values[0], values[1], urn=values[2] or "")
        )
        self.ready = outcome.apply(lambda _: self.container)
        self.register_outputs({"done": outcome.apply(lambda _: True)})
