"""`LogtoDatabaseSetup` in the program: the preflight and setup containers, their order, and a failure
stopping ``pulumi up`` before the Logto container exists (under mocks, as the engine would run it)."""

from __future__ import annotations

import pulumi
import pytest

from components.logto_database import PREFLIGHT_ENTRYPOINT, LogtoDatabaseError, setup_command, setup_script
from tests.pulumi_mocks import CONTAINER, RecordingMocks, run_program, stack_config
from tests.test_program_against_standin import failing_run_quietly


class OneShotMocks(RecordingMocks):
    """Containers report what their one-shot runs printed; records every container name registered."""

    def __init__(self, results: dict[str, tuple[int, str]]) -> None:
        super().__init__()
        self.results = results
        self.containers: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        resource_id, outs = super().new_resource(args)
        if args.typ == CONTAINER:
            self.containers.append(args.name)
            if args.name in self.results:
                outs["exitCode"], outs["containerLogs"] = self.results[args.name]
        return resource_id, outs


def test_preflight_then_setup_then_logto():
    run = run_program("dev", stack_config("dev"))
    preflight = run.one(CONTAINER, "logto-database-preflight")
    setup = run.one(CONTAINER, "logto-database-setup")
    logto = run.one(CONTAINER, "logto")
    postgres = run.one(CONTAINER, "postgres")
    assert run.depends_on(preflight, postgres) and run.depends_on(setup, preflight)
    assert setup.plain("entrypoints") == ["sh", "-c", setup_script(setup_command(external_database=False, skip_seed=False))]
    assert preflight.plain("entrypoints") == PREFLIGHT_ENTRYPOINT and preflight.is_secret("envs")
    assert setup.plain("image") == logto.plain("image")


def _no_secret_in(container, secrets: list[str]) -> None:
    """Nothing ``docker inspect`` shows (environment, entrypoint, command, labels) holds a secret."""
    shown = " ".join(str(container.plain(key)) for key in ("envs", "entrypoints", "command", "labels"))
    leaked = [i for i, secret in enumerate(secrets) if secret in shown]  # indexes: never print a secret
    assert leaked == [], container.name


def test_preflight_and_setup_get_the_password_as_files_not_in_their_environment():
    run = run_program("dev", stack_config("dev"))
    url = run.one(CONTAINER, "logto").env()["DB_URL"]
    password = url.split(":")[2].split("@")[0]
    preflight = run.one(CONTAINER, "logto-database-preflight")
    setup = run.one(CONTAINER, "logto-database-setup")
    for container in (preflight, setup):
        _no_secret_in(container, [url, password])
        assert container.is_secret("uploads"), container.name
    env = preflight.env()
    assert "PGPASSWORD" not in env and env["PGPASSFILE"] == "/run/lobechat-logto/pgpass"
    assert env["PGUSER"] == "logto" and env["PGHOST"] == "postgres"
    uploads = {u["file"]: u for u in preflight.plain("uploads")}
    pgpass_ok = uploads["/run/lobechat-logto/pgpass"]["content"] == f"*:*:*:*:{password}\n"
    assert pgpass_ok and uploads["/run/lobechat-logto/pgpass"]["permissions"] == "0600"
    assert "DB_URL" not in setup.env() and setup.env()["CI"] == "true"
    uploads = {u["file"]: u for u in setup.plain("uploads")}
    url_ok = uploads["/run/lobechat-logto/db-url"]["content"] == url
    assert url_ok
    assert uploads["/run/lobechat-logto/db-url"]["permissions"] == "0600"


def test_external_database_password_is_in_no_one_shot_environment():
    config = {**stack_config("dev"), "lobechat-logto:postgres": {"mode": "external"}}
    url = "postgresql://logto:Ext%3APassw0rdValue@db.example.com:5432/logto?sslmode=require"
    secrets = {"lobechat-logto:postgresLogtoUrl": url,
               "lobechat-logto:postgresLobechatUrl": "postgresql://lobe:pw@db.example.com:5432/lobechat"}
    run = run_program("dev", config, secrets)
    for name in ("logto-database-preflight", "logto-database-setup"):
        _no_secret_in(run.one(CONTAINER, name), [url, "Ext%3APassw0rdValue", "Ext:Passw0rdValue"])
    pgpass = {u["file"]: u for u in run.one(CONTAINER, "logto-database-preflight").plain("uploads")}["/run/lobechat-logto/pgpass"]
    escaped_ok = pgpass["content"] == "*:*:*:*:Ext\\:Passw0rdValue\n"
    assert escaped_ok
    assert run.one(CONTAINER, "logto-database-preflight").env()["PGSSLMODE"] == "require"


def test_skip_seed_leaves_the_seed_out_of_both_commands():
    config = {**stack_config("dev"), "lobechat-logto:logtoDatabase": {"skipSeed": True}}
    run = run_program("dev", config)
    setup = run.one(CONTAINER, "logto-database-setup").plain("entrypoints")[2]
    start = run.one(CONTAINER, "logto").plain("entrypoints")[2]
    assert "seed" not in setup and "seed" not in start and "alteration deploy latest" in start
    assert "skip_seed=true" in run.one(CONTAINER, "logto-database-preflight").plain("command")


def test_external_postgres_seeds_with_encrypt_base_role():
    config = {**stack_config("dev"), "lobechat-logto:postgres": {"mode": "external"}}
    secrets = {"lobechat-logto:postgresLogtoUrl": "postgresql://logto:pw@db.example.com:5432/logto",
               "lobechat-logto:postgresLobechatUrl": "postgresql://lobe:pw@db.example.com:5432/lobechat"}
    run = run_program("dev", config, secrets)
    assert "--encrypt-base-role" in run.one(CONTAINER, "logto-database-setup").plain("entrypoints")[2]


def test_a_failed_alteration_fails_up_with_the_log_tail_and_no_logto_container():
    log = "info Seeding skipped\nerror error: relation \"trusted_devices\" already exists\nfatal Error occurred while running alteration 1.43.0-x.js.\n"
    mocks = OneShotMocks({"logto-database-setup": (1, log)})
    with failing_run_quietly(LogtoDatabaseError), pytest.raises(LogtoDatabaseError) as error:
        run_program("dev", stack_config("dev"), mocks=mocks)
    message = str(error.value)
    assert "a database alteration failed" in message and 'relation "trusted_devices" already exists' in message
    assert "logto-database-setup" in mocks.containers and "logto" not in mocks.containers


def test_a_failed_preflight_runs_no_setup():
    mocks = OneShotMocks({"logto-database-preflight": (3, 'ERROR:  logto preflight: the database user "logto" cannot create roles')})
    with failing_run_quietly(LogtoDatabaseError), pytest.raises(LogtoDatabaseError) as error:
        run_program("dev", stack_config("dev"), mocks=mocks)
    assert "cannot create roles" in str(error.value)
    assert "logto-database-setup" not in mocks.containers and "logto" not in mocks.containers
