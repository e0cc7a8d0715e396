"""The dependency graph of a first `pulumi up`: nothing waits for what it does not need.

Asserted on the dependencies the program sends the engine (recorded by ``tests/pulumi_mocks.py``),
and on the whole-`up` benchmark's schedule of that graph (``benchmarks/first_up.py``: a model in
virtual time, no wall clock).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.pulumi_mocks import (
    CONTAINER,
    LOGTO_APPLICATION,
    LOGTO_WEBHOOK,
    REMOTE_IMAGE,
    ProgramRun,
    run_program,
    stack_config,
    stack_names,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location("first_up_benchmark", REPO_ROOT / "benchmarks/first_up.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", params=stack_names())
def run(request) -> ProgramRun:
    return run_program(request.param, stack_config(request.param))


def container(run: ProgramRun, name: str):
    return run.one(CONTAINER, name)


def direct(run: ProgramRun, resource) -> set[str]:
    urns = set(resource.dependencies)
    for deps in resource.property_dependencies.values():
        urns.update(deps)
    return {run.by_urn(urn).name for urn in urns if any(r.urn == urn for r in run.resources)}


def test_images_are_pulled_at_once_waiting_for_nothing(run):
    images = run.of_type(REMOTE_IMAGE)
    assert len(images) >= 3
    waiting = {image.name: image.dependencies for image in images if image.dependencies}
    assert waiting == {}


def test_application_and_webhook_are_created_side_by_side(run):
    application = run.one(LOGTO_APPLICATION, "lobechat-application")
    webhook = run.one(LOGTO_WEBHOOK, "lobechat-webhook")
    assert not run.depends_on(application, webhook) and not run.depends_on(webhook, application)


def test_lobechat_waits_for_its_environment_and_a_ready_postgres_only(run):
    lobechat = container(run, "lobechat")
    needs = direct(run, lobechat)
    # Logto itself is reached at runtime only (discovery at sign-in): no direct wait for it.
    assert not {"logto", "logto-ready-wait", "logto-bootstrap-psql"} & needs
    # A ready Postgres is one whose roles step ran (LobeChat connects as its own role).
    assert {"lobechat-application", "lobechat-webhook", "postgres-roles-psql", "lobechat-image"} <= needs


def test_lobechat_environment_is_what_makes_it_wait_for_the_logto_objects(run):
    lobechat = container(run, "lobechat")
    env_deps = {run.by_urn(urn).name for urn in lobechat.property_dependencies.get("envs", [])}
    assert {"lobechat-application", "lobechat-webhook"} <= env_deps


def test_postgres_waits_for_nothing_of_logto_or_lobechat(run):
    postgres = container(run, "postgres")
    # ...only for its image, volume, password, network and the data safety steps just before it
    # (the pre-change snapshot and the volume check, which run side by side).
    assert direct(run, postgres) <= {
        "postgres-image", "postgres-data", "postgres-password", "network-bridge",
        "data-safety-snapshot", "postgres-volume-check",
        # the volume's claim digests KEY_VAULTS_SECRET with the password (a generated value: no wait)
        "lobechat-key-vaults-secret",
    }


def test_readiness_waits_start_right_after_their_container(run):
    for name in ("postgres", "logto", "lobechat"):
        wait = container(run, f"{name}-ready-wait")
        assert direct(run, wait) <= {name, f"{name}-image", "network-bridge"}, name


def test_the_critical_path_is_the_chain_of_what_each_step_needs():
    benchmark = load_benchmark()
    figures = benchmark.run(0.0, "20.10", REPO_ROOT)
    chain = [s.name for s in figures["path"] if s.type in (CONTAINER, LOGTO_APPLICATION, LOGTO_WEBHOOK)]
    # One data safety step comes first (the pre-change snapshot or the volume check: side by side).
    assert chain[0] in {"data-safety-snapshot", "postgres-volume-check"}
    chain = chain[1:]
    # Logto's database: roles (superuser step), checked (preflight), seeded/altered (setup), then Logto.
    assert chain[:8] == ["postgres", "postgres-ready-wait", "postgres-roles-psql", "logto-database-preflight",
                         "logto-database-setup", "logto", "logto-ready-wait", "logto-bootstrap-psql"]
    assert chain[8] in {"lobechat-application", "lobechat-webhook"}
    # Last, once LobeChat is ready: the retirement of earlier Postgres logins (a psql one-shot; on a
    # first deployment it has nothing to retire, later it runs only when a generation changes).
    assert chain[9:] == ["lobechat", "lobechat-ready-wait", "postgres-logins-psql"]
    total = figures["path"][-1].finish
    bound = sum(s.ideal for s in figures["path"])
    assert total <= bound * 1.10, (total, bound)


@pytest.mark.parametrize(
    ("inputs", "engine", "seen_at"),
    [
        ({"healthcheck": {"interval": "5s"}}, "20.10", 6.0),  # ready 1.5 s, check at 5 s, polled at 6 s
        ({"healthcheck": {"interval": "10s", "startInterval": "1s", "startPeriod": "60s"}}, "25", 3.0),
        ({"healthcheck": {"interval": "10s", "startInterval": "1s", "startPeriod": "60s"}}, "20.10", 11.0),
    ],
)
def test_benchmark_models_when_the_provider_sees_a_container_healthy(inputs, engine, seen_at):
    benchmark = load_benchmark()
    noticed, _ = benchmark.time_to_noticed_healthy("postgres", inputs, engine)
    assert noticed == seen_at
