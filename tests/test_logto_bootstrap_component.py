"""`ManagementCredentialBootstrap` under Pulumi mocks: the one-shot container it asks Docker for.

The mocks echo each resource's inputs as outputs, like the engine would for a created container,
and report the container's ``exitCode`` and ``containerLogs`` as the attached run ended (configurable
per test). A recording monitor keeps each registration's inputs (secret markers intact) and
dependencies.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_docker as docker
import pytest
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

from components.logto_bootstrap import (
    COMPONENT_TYPE,
    SCRIPT_PATH_IN_CONTAINER,
    SECRET_ENV_VAR,
    SQL_HASH_LABEL,
    LogtoBootstrapError,
    ManagementCredentialBootstrap,
    bootstrap_sql,
    bootstrap_sql_sha256,
    management_link_id,
)

CONTAINER = "docker:index/container:Container"
IMAGE = "sha256:" + "ab" * 32
NETWORK = "lobechat-dev"
DATABASE_URL = "postgresql://logto:db%40pass@postgres:5432/logto"
APP_ID = "lobechat-logto-m2m"
APP_SECRET = "m2mSecretValue0123456789abcdefXYZ"


class BootstrapMocks(pulumi.runtime.Mocks):
    """Echo inputs; containers report ``exit_code`` / ``logs`` as an attached run would."""

    def __init__(self) -> None:
        self.exit_code: int | None = 0
        self.logs = "COMMIT\n"

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        outputs = dict(args.inputs)
        if args.typ == CONTAINER:
            outputs.setdefault("name", f"{args.name}-1234567")
            if self.exit_code is not None:
                outputs["exitCode"] = self.exit_code
            outputs["containerLogs"] = self.logs
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


@dataclass
class Registration:
    """One RegisterResource request."""

    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)


class RecordingMonitor(MockMonitor):
    """Keeps every registration's inputs (secrets still marked) and dependencies."""

    def __init__(self, mocks: BootstrapMocks) -> None:
        super().__init__(mocks)
        self.mocks = mocks
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        self.registrations.append(
            Registration(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                inputs=rpc.deserialize_properties(request.object, keep_unknowns=True),
                dependencies=list(request.dependencies),
            )
        )
        return response

    def one(self, typ: str) -> Registration:
        found = [r for r in self.registrations if r.type == typ]
        assert len(found) == 1, f"expected one {typ}, found {len(found)}"
        return found[0]

    def named(self, name: str) -> Registration:
        return next(r for r in self.registrations if r.name == name)


@pytest.fixture()
def monitor() -> Iterator[RecordingMonitor]:
    """Mocks installed for this test only (they are process-global)."""
    mocks = BootstrapMocks()
    recording = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="lobechat-logto", stack="test", preview=False, monitor=recording)
    yield recording


def _unwrap(value: Any) -> Any:
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def build(opts: pulumi.ResourceOptions | None = None) -> ManagementCredentialBootstrap:
    return ManagementCredentialBootstrap(
        "logto-bootstrap",
        image=IMAGE,
        network_name=NETWORK,
        database_url=pulumi.Output.secret(DATABASE_URL),
        app_id=APP_ID,
        app_secret=pulumi.Output.secret(APP_SECRET),
        opts=opts,
    )


def psql_container(monitor: RecordingMonitor) -> Registration:
    return monitor.named("logto-bootstrap-psql")


@pulumi.runtime.test
def test_component_has_its_type_token(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    def check(_: Any) -> None:
        component = monitor.named("logto-bootstrap")
        assert component.type == COMPONENT_TYPE
        assert psql_container(monitor).parent == component.urn

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_container_runs_psql_from_the_given_image_on_the_stack_network(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    def check(_: Any) -> None:
        inputs = _unwrap(psql_container(monitor).inputs)
        assert inputs["image"] == IMAGE
        assert inputs["networksAdvanced"] == [{"name": NETWORK}]
        assert inputs["entrypoints"] == ["psql"]

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_container_is_one_shot_attached_and_never_restarted(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    def check(_: Any) -> None:
        inputs = _unwrap(psql_container(monitor).inputs)
        assert inputs["mustRun"] is False
        assert inputs["attach"] is True
        assert inputs["logs"] is True
        assert inputs["restart"] == "no"

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_command_passes_ids_as_psql_variables_and_runs_the_uploaded_script(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    def check(_: Any) -> None:
        inputs = _unwrap(psql_container(monitor).inputs)
        assert inputs["command"] == [
            "--no-psqlrc",
            "--set",
            f"app_id={APP_ID}",
            "--set",
            "app_name=lobechat-logto management",
            "--set",
            f"link_id={management_link_id(APP_ID)}",
            "--file",
            SCRIPT_PATH_IN_CONTAINER,
        ]
        assert inputs["uploads"][0] == {"file": SCRIPT_PATH_IN_CONTAINER, "content": bootstrap_sql()}
        assert [u["file"] for u in inputs["uploads"][1:]] == [
            "/run/lobechat-logto/pgpass", "/run/lobechat-logto/app-secret"]
        assert all(u["permissions"] == "0600" for u in inputs["uploads"][1:])

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_no_secret_appears_in_the_command(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    def check(_: Any) -> None:
        command = " ".join(_unwrap(psql_container(monitor).inputs)["command"])
        assert APP_SECRET not in command
        assert "db@pass" not in command and "db%40pass" not in command

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_envs_carry_the_connection_and_the_secrets_come_as_files(monitor: RecordingMonitor) -> Any:
    # `docker inspect` shows a container's environment for as long as the container exists: the
    # passwords go into files the script deletes right after connecting.
    bootstrap = build()

    def check(_: Any) -> None:
        container = psql_container(monitor)
        assert rpc.is_rpc_secret(container.inputs["envs"])
        envs = dict(entry.split("=", 1) for entry in _unwrap(container.inputs["envs"]))
        assert envs["PGHOST"] == "postgres"
        assert envs["PGPORT"] == "5432"
        assert envs["PGUSER"] == "logto"
        assert envs["PGDATABASE"] == "logto"
        assert "PGPASSWORD" not in envs and SECRET_ENV_VAR not in envs
        assert envs["PGPASSFILE"] == "/run/lobechat-logto/pgpass"
        assert "db@pass" not in str(envs) and APP_SECRET not in str(envs)
        uploads = {u["file"]: u["content"] for u in _unwrap(container.inputs["uploads"])}
        assert uploads["/run/lobechat-logto/pgpass"] == "*:*:*:*:db@pass\n"
        assert uploads["/run/lobechat-logto/app-secret"] == APP_SECRET
        assert rpc.is_rpc_secret(container.inputs["uploads"])

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_script_hash_label_makes_a_new_script_replace_the_container(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    def check(_: Any) -> None:
        labels = _unwrap(psql_container(monitor).inputs)["labels"]
        assert {"label": SQL_HASH_LABEL, "value": bootstrap_sql_sha256()} in labels

    return bootstrap.app_id.apply(check)


@pulumi.runtime.test
def test_depends_on_given_to_the_component_holds_back_the_container(monitor: RecordingMonitor) -> Any:
    logto = docker.Container("logto", image="svhd/logto:1.43.0")
    bootstrap = build(pulumi.ResourceOptions(depends_on=[logto]))

    def check(args: list[Any]) -> None:
        logto_urn = args[0]
        assert logto_urn in psql_container(monitor).dependencies

    return pulumi.Output.all(logto.urn, bootstrap.app_id).apply(check)


@pulumi.runtime.test
def test_app_id_output_is_plain_and_app_secret_output_is_secret(monitor: RecordingMonitor) -> Any:
    bootstrap = build()

    async def check() -> None:
        assert await bootstrap.app_id.future() == APP_ID
        assert not await bootstrap.app_id.is_secret()
        assert await bootstrap.app_secret.future() == APP_SECRET
        assert await bootstrap.app_secret.is_secret()

    return pulumi.Output.from_input(check())


def test_non_zero_exit_fails_the_program_with_psql_message(monitor: RecordingMonitor) -> None:
    monitor.mocks.exit_code = 3
    monitor.mocks.logs = 'psql:/logto-bootstrap.sql:73: ERROR:  logto bootstrap: the role "Logto Management API access" does not exist'

    @pulumi.runtime.test
    def program() -> Any:
        return build().app_id

    with pytest.raises(LogtoBootstrapError) as raised:
        program()
    message = str(raised.value)
    assert "exited with code 3" in message
    assert "does not exist" in message
    assert "pulumi up --replace 'urn:pulumi:test::lobechat-logto::" in message


def test_missing_exit_code_fails_the_program(monitor: RecordingMonitor) -> None:
    monitor.mocks.exit_code = None

    @pulumi.runtime.test
    def program() -> Any:
        return build().app_id

    with pytest.raises(LogtoBootstrapError, match="reported no exit code"):
        program()


def test_invalid_app_id_is_refused_before_any_resource(monitor: RecordingMonitor) -> None:
    @pulumi.runtime.test
    def program() -> None:
        ManagementCredentialBootstrap(
            "logto-bootstrap",
            image=IMAGE,
            network_name=NETWORK,
            database_url=pulumi.Output.secret(DATABASE_URL),
            app_id="an id that is far too long for logto",
            app_secret=pulumi.Output.secret(APP_SECRET),
        )

    with pytest.raises(ValueError, match="app_id must be 1 to 21 characters"):
        program()
    assert not [r for r in monitor.registrations if r.type == CONTAINER]
