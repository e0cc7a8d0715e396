"""Rotated Postgres application passwords: which login each generation uses, and when old ones go.

Postgres holds one password per role, and ``ALTER ROLE ... PASSWORD`` would lock out every container
still holding the old one. So a rotation (``rotation.*.postgresPassword``) never changes a password:
generation N is a *new login role* per application (``lobechat_gN``, ``logto_gN``, created by the roles
step with fresh passwords, see ``components/postgres_roles.py``), a member of the owner role
(``lobechat`` / ``logto``) whose sessions act as the owner. Generation 0 is the owner roles themselves
(what every stage had before rotation existed).

A previous generation's login is *retired* (``NOLOGIN``, password removed; its open sessions keep
working, new logins fail) by a one-shot ``psql`` step (`PostgresLoginRetirement`) once nothing that
may still run holds it:

- Logto's: in the rotation run itself, after the new Logto container is ready (the Logto container
  is replaced delete-before-create, and the one-shot steps that log in as Logto ran again with the new
  login before it).
- LobeChat's: the old LobeChat container keeps serving (draining) until the very end of the run
  (create-before-delete, deleted after everything else), so its login is retired by the first run in
  which the ready LobeChat container is the one the previous run recorded (`PostgresLoginLease`): the
  next ``pulumi up`` after the rotation, normally the next scheduled one.

Logins two or more generations old are dropped once retired and without a session: what they own
(only what a session created after a ``DISCARD ALL``, see the roles step) is reassigned to the owner
first (``REASSIGN OWNED``), then their privileges are removed (``DROP OWNED``: no object is left to
drop), then the role. The owner roles are never dropped: they own the data.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_docker as docker
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.logto_bootstrap import pgpass_line, readable_container_logs
from components.one_shot import ROLE_LABEL, one_shot_container, replace_target, secret_file_uploads
from components.postgres_roles import LOBECHAT_ROLE, LOGTO_ROLE, SECRET_DIR_IN_CONTAINER, roles_environment

SCRIPT_PATH_IN_CONTAINER = "/postgres-logins-retire.sql"
SQL_HASH_LABEL = "lobechat-logto.postgres-logins-sql-sha256"
SECRET_FILES = ("superuser-password", "pgpass")

_RETIRE_SQL = r"""-- lobechat-logto: retire the application logins of earlier password generations (superuser; idempotent).
\set ON_ERROR_STOP 1
\set ECHO none
\set VERBOSITY terse
\set SHOW_CONTEXT never

\getenv secret_dir POSTGRES_ROLES_SECRET_DIR
\if :{?secret_dir}
\set superuser_password `cat -- :'secret_dir'/superuser-password`
\set retire_files_removed `rm -f -- :'secret_dir'/superuser-password :'secret_dir'/pgpass && echo yes`
\setenv PGPASSWORD :superuser_password
\endif

SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS retire_superuser_ok,
       :lobechat_keep BETWEEN 0 AND :generation AND :logto_keep BETWEEN 0 AND :generation AS retire_input_ok \gset
\if :retire_superuser_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'postgres logins: this step must connect as the superuser (it changes roles)'; END $$;
\endif
\if :retire_input_ok
\else
DO $$ BEGIN RAISE EXCEPTION 'postgres logins: a login generation to keep is not between 0 and the current generation'; END $$;
\endif

-- Every application login with its generation (the owner itself is generation 0) and what to keep.
CREATE TEMPORARY VIEW app_logins AS
  SELECT a.rolname, o.owner, o.keep,
         CASE WHEN a.rolname = o.owner THEN 0 ELSE substring(a.rolname FROM '_g([0-9]+)$')::int END AS generation,
         a.rolcanlogin OR a.rolpassword IS NOT NULL AS can_log_in
  FROM pg_authid a
  JOIN (VALUES ('lobechat', :lobechat_keep), ('logto', :logto_keep)) AS o(owner, keep)
    ON a.rolname = o.owner OR a.rolname ~ ('^' || o.owner || '_g[0-9]+$');

-- Retire: no new login; sessions already open keep working until they end. Logins of a generation
-- newer than the current one belong to an earlier state of this stage (a rebuild on the kept volume
-- starts again at generation 0): nothing of this state holds them.
SELECT format('ALTER ROLE %I WITH NOLOGIN PASSWORD NULL', rolname) FROM app_logins
 WHERE (generation < keep OR generation > :generation) AND can_log_in ORDER BY rolname \gexec

-- Drop: logins two or more generations old, retired, without a session (never the owners).
SELECT string_agg(quote_ident(rolname), ', ' ORDER BY rolname) FILTER (WHERE owner = 'lobechat') AS retire_drop_lobechat,
       string_agg(quote_ident(rolname), ', ' ORDER BY rolname) FILTER (WHERE owner = 'logto') AS retire_drop_logto
  FROM app_logins
 WHERE generation >= 1 AND generation <= :generation - 2 AND generation < keep
   AND NOT EXISTS (SELECT 1 FROM pg_stat_activity s WHERE s.usename = app_logins.rolname) \gset
-- What they own goes to the owner first, in every database they could reach, so that nothing but
-- their privileges is dropped; then the roles.
\if :{?retire_drop_lobechat}
\connect lobechat
REASSIGN OWNED BY :retire_drop_lobechat TO lobechat;
DROP OWNED BY :retire_drop_lobechat;
\connect logto
REASSIGN OWNED BY :retire_drop_lobechat TO lobechat;
DROP OWNED BY :retire_drop_lobechat;
\connect postgres
REASSIGN OWNED BY :retire_drop_lobechat TO lobechat;
DROP OWNED BY :retire_drop_lobechat;
DROP ROLE :retire_drop_lobechat;
\echo 'postgres logins: dropped' :retire_drop_lobechat
\endif
\if :{?retire_drop_logto}
\connect lobechat
REASSIGN OWNED BY :retire_drop_logto TO logto;
DROP OWNED BY :retire_drop_logto;
\connect logto
REASSIGN OWNED BY :retire_drop_logto TO logto;
DROP OWNED BY :retire_drop_logto;
\connect postgres
REASSIGN OWNED BY :retire_drop_logto TO logto;
DROP OWNED BY :retire_drop_logto;
DROP ROLE :retire_drop_logto;
\echo 'postgres logins: dropped' :retire_drop_logto
\endif
\echo 'postgres logins: earlier generations retired'
"""


class PostgresLoginsError(RuntimeError):
    """The retirement step failed; the message says why (psql's terse errors carry no secret)."""


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0")
    return int(value)


def retire_sql(generation: int, lobechat_keep: int, logto_keep: int) -> str:
    """The retirement script for the current ``generation``: logins older than ``*_keep`` are retired."""
    numbers = [_whole(generation, "generation"), _whole(lobechat_keep, "lobechat_keep"), _whole(logto_keep, "logto_keep")]
    if numbers[1] > numbers[0] or numbers[2] > numbers[0]:
        raise ValueError("a login generation to keep cannot be newer than the current generation")
    head = "".join(f"\\set {n} {v}\n" for n, v in zip(("generation", "lobechat_keep", "logto_keep"), numbers))
    return head + _RETIRE_SQL


def retire_secret_files(superuser_password: str, secret_dir: str = SECRET_DIR_IN_CONTAINER) -> dict[str, str]:
    """The files the container gets (deleted by the script right after reading)."""
    return {f"{secret_dir}/superuser-password": superuser_password, f"{secret_dir}/pgpass": pgpass_line(superuser_password)}


def retire_environment(host: str, superuser: str, secret_dir: str = SECRET_DIR_IN_CONTAINER, port: int = 5432) -> dict[str, str]:
    """Where to connect and where the secret files are; no secret (the roles step's, under its own name)."""
    return roles_environment(host, superuser, secret_dir, port, application_name="lobechat-logto-logins")


def check_retire_exit(exit_code: int | None, logs: str | None, *, urn: str = "") -> None:
    """Raise `PostgresLoginsError` unless the retirement container exited 0."""
    if exit_code == 0:
        return
    target = replace_target(urn, "the logins container")
    output = readable_container_logs(logs) or "(no output)"
    raise PostgresLoginsError(
        f"the Postgres login retirement step (psql) exited with code {exit_code}; the stage keeps working on "
        f"the current logins (the earlier ones stay enabled).\npsql said:\n{output}\n"
        f"Fix the cause, then run the step again with: pulumi up --replace {target}"
    )


class PostgresLoginRetirement(pulumi.ComponentResource):
    """A one-shot ``psql`` container (superuser) running `retire_sql`; re-runs when what to keep changes."""

    def __init__(
        self,
        name: str,
        *,
        image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        host: str,
        superuser: str,
        superuser_password: pulumi.Input[str],
        generation: pulumi.Input[int],
        lobechat_keep: pulumi.Input[int],
        logto_keep: pulumi.Input[int],
        memory_mb: int = 256,
        depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:postgres:PostgresLoginRetirement", name, None, opts)
        script = pulumi.Output.all(generation, lobechat_keep, logto_keep).apply(
            lambda v: retire_sql(int(v[0] or 0), int(v[1] or 0), int(v[2] or 0))
        )
        files = pulumi.Output.from_input(superuser_password).apply(retire_secret_files)
        self.container = one_shot_container(
            f"{name}-psql",
            image=image,
            entrypoints=["psql"],
            command=["--no-psqlrc", "--file", SCRIPT_PATH_IN_CONTAINER],
            envs=[f"{k}={v}" for k, v in retire_environment(host, superuser).items()],
            uploads=[
                docker.ContainerUploadArgs(file=SCRIPT_PATH_IN_CONTAINER, content=script),
                *secret_file_uploads(files, [f"{SECRET_DIR_IN_CONTAINER}/{file_name}" for file_name in SECRET_FILES]),
            ],
            labels={SQL_HASH_LABEL: script.apply(lambda s: hashlib.sha256(s.encode()).hexdigest()), ROLE_LABEL: "postgres-logins"},
            network_name=network_name,
            memory_mb=memory_mb,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )
        self.done = pulumi.Output.all(self.container.exit_code, self.container.container_logs, self.container.urn).apply(
            lambda v: check_retire_exit(v[0], v[1], urn=v[2] or "") or True
        )
        self.register_outputs({"done": self.done})


# --- which LobeChat login generation may still be held -------------------------------------------

LEASE_STATE_KEYS = ("lobechat_keep", "held_generation", "held_container_id")


def lobechat_keep(olds: dict[str, Any], generation: int, container_id: str) -> int:
    """The oldest LobeChat login generation a running container may still hold.

    ``olds`` is what the previous run recorded once its LobeChat was ready (its generation and
    container). The same container ready again: nothing older runs (the containers it replaced were
    deleted at the end of that run, or first thing in a later one) -> only ``generation``. Another
    container: the recorded one may still be serving until the end of this run -> keep its generation.
    Nothing recorded (a stage that just got this): the previous generation, to be safe.
    """
    held, held_id = olds.get("held_generation"), olds.get("held_container_id")
    if held is None or isinstance(held, bool) or not isinstance(held, (int, float)):
        return max(generation - 1, 0)
    if held_id == container_id:
        return generation
    return max(min(int(held), generation), 0)


class PostgresLoginLeaseProvider(ResourceProvider):
    """Records the LobeChat container (and generation) that was ready; decides what to keep in ``check``."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        generation, container_id = news.get("generation"), news.get("container_id")
        failures = []
        if isinstance(generation, bool) or not isinstance(generation, (int, float)) or generation < 0:
            failures.append(CheckFailure("generation", "must be a whole number >= 0"))
        if not isinstance(container_id, str) or not container_id:
            failures.append(CheckFailure("container_id", "must be the LobeChat container's id"))
        if failures:
            return CheckResult(dict(news), failures)
        number = int(generation)
        return CheckResult({
            "generation": number, "container_id": container_id,
            "lobechat_keep": lobechat_keep(olds, number, container_id),
            "held_generation": number, "held_container_id": container_id,
        }, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        keys = ("generation", "container_id", *LEASE_STATE_KEYS)
        return DiffResult(changes=any(olds.get(k) != news.get(k) for k in keys), replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=uuid.uuid4().hex, outs=dict(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=dict(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Nothing lives outside the state: a refresh keeps what was recorded.
        return ReadResult(id_=id_, outs=dict(props), inputs={k: props.get(k) for k in ("generation", "container_id", *LEASE_STATE_KEYS)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class PostgresLoginLease(Resource, module="postgres", name="PostgresLoginLease"):
    """What the ready LobeChat holds (``generation``, ``container_id``) and ``lobechat_keep`` (see `lobechat_keep`)."""

    lobechat_keep: pulumi.Output[int]

    def __init__(self, resource_name: str, *, generation: pulumi.Input[int], container_id: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(PostgresLoginLeaseProvider(), resource_name, {
            "generation": generation, "container_id": container_id, **{k: None for k in LEASE_STATE_KEYS},
        }, opts)


__all__ = [
    "LOBECHAT_ROLE", "LOGTO_ROLE", "PostgresLoginLease", "PostgresLoginRetirement", "PostgresLoginsError",
    "lobechat_keep", "retire_sql",
]
