"""The data safety guards in a whole program run, with the engine-like mocks of the end-to-end test:
the real StageRecord provider (unpickled from its ``__provider`` input, ``check`` with the previous
inputs, then ``diff``/``update``), the real Logto providers against the stand-in, and one-shot
containers that report how they ended."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pulumi
import pytest

from components.data_safety import DataSafetyError
from tests.logto_standin import LogtoStandIn
from tests.pulumi_mocks import CONTAINER
from tests.test_program_against_standin import (
    CheckFailed,
    EngineLikeMocks,
    StoredResource,
    dev_config,
    failing_run_quietly,
    run_against,
)

RECORD = ("pulumi-python:dynamic/datasafety:StageRecord", "data-safety-record")


class StepMocks(EngineLikeMocks):
    """Engine-like mocks whose one-shot data safety steps end with the given exit code and output."""

    def __init__(self, standin: LogtoStandIn, *, steps: Mapping[str, tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(standin, **kwargs)
        self.steps = dict(steps or {})
        self.containers: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        resource_id, outs = super().new_resource(args)
        if args.typ == CONTAINER:
            self.containers.append(args.name)
            if args.name in self.steps:
                outs["exitCode"], outs["containerLogs"] = self.steps[args.name]
            elif args.name == "data-safety-snapshot":
                outs["containerLogs"] = "snapshot: 20261201T120000Z-pre-change\n"
        return resource_id, outs


@pytest.fixture
def logto() -> Iterator[LogtoStandIn]:
    with LogtoStandIn() as server:
        yield server


def first_run(logto: LogtoStandIn, **overrides: Any) -> dict[tuple[str, str], StoredResource]:
    mocks = StepMocks(logto)
    run_against(logto, dev_config(logto, **overrides), mocks)
    return mocks.state


def test_a_run_records_the_stage_and_names_its_snapshot(logto):
    mocks = StepMocks(logto)
    run = run_against(logto, dev_config(logto), mocks)
    record = mocks.state[RECORD].outputs
    assert record["postgres_major"] == 16 and record["lobechat_image"] == "lobehub/lobe-chat-database:1.143.3"
    assert record["had_previous"] is False
    assert run.outputs["preChangeSnapshot"] == "20261201T120000Z-pre-change"


def test_moving_lobechat_to_an_older_image_is_refused_before_any_container_changes(logto):
    state = first_run(logto)
    mocks = StepMocks(logto, prior_state=state)
    with failing_run_quietly(CheckFailed), pytest.raises(CheckFailed) as failure:
        run_against(logto, dev_config(logto, lobechatImage="lobehub/lobe-chat-database:1.140.0"), mocks)
    assert "data-safety-record: check failed on lobechat_image" in str(failure.value)
    assert not {"postgres", "logto", "lobechat", "data-safety-snapshot"} & set(mocks.containers)


def test_the_opt_in_lets_that_one_downgrade_through(logto):
    state = first_run(logto)
    mocks = StepMocks(logto, prior_state=state)
    run_against(
        logto,
        dev_config(logto, lobechatImage="lobehub/lobe-chat-database:1.140.0",
                   dataSafety={"postgresMajor": 16, "allowDowngrade": {"lobechat": "1.140.0"}}),
        mocks,
    )
    assert mocks.state[RECORD].outputs["lobechat_image"] == "lobehub/lobe-chat-database:1.140.0"
    assert mocks.state[RECORD].outputs["had_previous"] is True


def test_generation_2_keeps_the_stages_postgres_major(logto):
    state = first_run(logto)
    mocks = StepMocks(logto, prior_state=state)
    run = run_against(logto, dev_config(logto, lobechatGeneration="2", lobechatImage="lobehub/lobehub:2.2.10"), mocks)
    assert run.outputs["postgresMajor"] == 16
    assert mocks.state[RECORD].outputs["postgres_major"] == 16


def test_a_new_major_on_the_same_volume_is_refused_with_the_steps(logto):
    state = first_run(logto)
    mocks = StepMocks(logto, prior_state=state)
    with failing_run_quietly(CheckFailed), pytest.raises(CheckFailed) as failure:
        run_against(logto, dev_config(logto, dataSafety={"postgresMajor": 17}), mocks)
    assert "check failed on postgres_major" in str(failure.value)
    assert "postgres" not in mocks.containers


def test_the_upgrade_path_new_volume_and_restore_goes_through(logto):
    state = first_run(logto)
    mocks = StepMocks(logto, prior_state=state)
    run = run_against(
        logto,
        dev_config(logto, dataSafety={"postgresMajor": 17, "dataVolume": "lobechat-logto-dev-postgres-data-pg17",
                                      "restoreFrom": "20261201T120000Z-pre-change"}),
        mocks,
    )
    assert run.outputs["dataVolume"] == "lobechat-logto-dev-postgres-data-pg17"
    assert mocks.state[RECORD].outputs["orphaned_volumes"] == ["lobechat-logto-dev-postgres-data"]
    order = mocks.containers
    assert order.index("data-safety-snapshot") < order.index("postgres") < order.index("data-safety-restore") < order.index("logto")


@pytest.mark.parametrize(
    ("step", "code", "said", "never"),
    [
        ("data-safety-snapshot", 3, "FAILED: pg_dump of lobechat failed", {"postgres", "logto", "lobechat"}),
        ("postgres-volume-check", 2, "REFUSED: the data volume holds PostgreSQL 16 data", {"postgres", "logto", "lobechat"}),
    ],
)
def test_a_failed_step_stops_the_run_before_what_it_guards(logto, step, code, said, never):
    mocks = StepMocks(logto, steps={step: (code, said)})
    with failing_run_quietly(DataSafetyError), pytest.raises(DataSafetyError) as failure:
        run_against(logto, dev_config(logto), mocks)
    assert said in str(failure.value)
    assert not never & set(mocks.containers), mocks.containers
