"""`LogtoDatabaseSetup` in the program: the preflight and setup containers, their order, and a failure
stopping ``pulumi up`` before the Logto container exists (under mocks, as the engine would run it)."""

from __future__ import annotations

import pulumi
import pytest

from components.logto_database import LogtoDatabaseError, setup_command
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
    assert setup.plain("entrypoints") == ["sh", "-c", setup_command(external_database=False, skip_seed=False)]
    assert preflight.plain("entrypoints") == ["psql"] and preflight.is_secret("envs") and setup.is_secret("envs")
    assert setup.plain("image") == logto.plain("image")


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
