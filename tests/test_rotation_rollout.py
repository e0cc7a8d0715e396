"""Whole rotations of a deployed stage against the Logto stand-in, with LobeChat replicas running.

Every run is the real dev program under engine-like mocks (``tests/rollout_harness.py``): the
rotation state decides in ``check``, the client secret and the hook are replaced create-before-delete,
the LobeChat container is rolled out (new replica healthy before the old one stops), replaced
objects are deleted at the end of the run. Meanwhile probes authenticate at the token endpoint with
what each running LobeChat holds and emit user updates; the figures are asserted to be zero.
The clock is the test's own (2030), for the rotation decisions and for the stand-in alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.logto_api import LogtoError
from tests.logto_standin import LogtoStandIn
from tests.logto_standin.models import DEFAULT_SECRET_NAME
from tests.pulumi_mocks import LOGTO_APPLICATION_SECRET, LOGTO_WEBHOOK
from tests.rollout_harness import DAY, T0, Probes, Requests, Stage, TestClock, by_marker
from tests.test_program_against_standin import failing_run_quietly, same_secret

ROTATION_KEY = "pulumi-python:dynamic/rotation:SecretRotation"


@pytest.fixture
def make_stage() -> Iterator[Any]:
    stages: list[Stage] = []
    servers: list[LogtoStandIn] = []

    def make(rotation: dict[str, Any]) -> Stage:
        server = LogtoStandIn().start()
        servers.append(server)
        stage = Stage(server, TestClock(T0), rotation)
        stages.append(stage)
        return stage

    yield make
    for stage in stages:
        stage.close()
    for server in servers:
        violations = list(server.openapi_violations)
        server.stop()
        assert violations == []


def app_secrets(stage: Stage) -> list[dict[str, Any]]:
    """The LobeChat application's named secrets in the stand-in (values included: never print them)."""
    apps = [a for a in stage.standin.state.applications.values() if a["type"] == "Traditional"]
    assert len(apps) == 1
    return stage.standin.state.secrets[apps[0]["id"]]


def secret_names(stage: Stage) -> list[str]:
    return sorted(s["name"] for s in app_secrets(stage))


def running_holds_secret(stage: Stage, name: str) -> bool:
    value = next(s["value"] for s in app_secrets(stage) if s["name"] == name)
    return all(same_secret(r.env.get("AUTH_LOGTO_SECRET"), value) for r in stage.fleet.running())


def rotation_state(stage: Stage, secret: str) -> dict[str, Any]:
    stored = stage.state[(ROTATION_KEY, f"rotation-{secret}")]
    return dict(stored.outputs)


def rotate_with_probes(stage: Stage, **overrides: Any) -> tuple[Probes, Requests]:
    """One `pulumi up` with the probes running throughout and at every engine step."""
    with Probes(stage.standin, stage.fleet) as probes:
        stage.on_step = lambda label: probes.probe()
        start = len(stage.standin.requests_log)
        probes.probe()
        stage.up(**overrides)
        probes.probe()
        requests = Requests.since(stage.standin, start)
    stage.on_step = lambda label: None
    return probes, requests


# --- client secret ------------------------------------------------------------------------------------


CLIENT_30D = {"maxAge": {"clientSecret": "30d"}}


def test_first_deployment_holds_the_default_secret_as_generation_0(make_stage):
    stage = make_stage(CLIENT_30D)
    run, _ = stage.up()
    assert secret_names(stage) == [DEFAULT_SECRET_NAME]
    assert running_holds_secret(stage, DEFAULT_SECRET_NAME)
    status = run.outputs["rotation"]["clientSecret"]
    assert status["generation"] == 0 and status["nextDueAt"] == "2030-04-16T17:46:40Z"


def test_client_secret_rotation_due_by_age_has_zero_failed_authentications(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.refresh()  # the age survives a refresh
    stage.clock.advance(31)
    probes, requests = rotate_with_probes(stage)
    failed, attempts = probes.counts.failed_auth, probes.counts.auth_attempts
    # At least one probe after every engine step (more from the background thread).
    steps = stage.last.steps
    assert failed == 0 and attempts >= len(steps) >= 6
    # The Default secret is gone only now that no running LobeChat holds it; the new one expires.
    assert secret_names(stage) == ["lobechat-1"]
    assert running_holds_secret(stage, "lobechat-1")
    expires = app_secrets(stage)[0]["expiresAt"]
    assert expires == int((T0 + 31 * DAY + 60 * DAY) * 1000)  # maxAge 30d + expiryGrace 30d
    running = [r.container_id for r in stage.fleet.running()]
    assert running == ["lobechat-c2"] and stage.fleet.history[-1] == ("stop", "lobechat-c1")
    state = rotation_state(stage, "client-secret")
    assert state["generation"] == 1 and state["reason"] == "age 31d >= maxAge 30d"
    deleted = [call for call in requests.calls if call[0] == "DELETE"]
    assert deleted == [("DELETE", f"/api/applications/{app_secrets(stage)[0]['applicationId']}/secrets/Default%20secret")]


def test_a_scheduled_run_rotates_exactly_what_is_due(make_stage):
    stage = make_stage({"maxAge": {"clientSecret": "30d", "webhookSigningKey": "90d"}})
    stage.up()
    hooks_before = sorted(stage.standin.state.hooks)
    session_before = stage.fleet.running()[0].env["NEXT_AUTH_SECRET"]
    stage.clock.advance(31)
    _, mocks = stage.up()
    replaced = sorted(name for _, name in mocks.replacements)
    assert replaced == ["lobechat", "lobechat-client-secret"]
    hooks_after = sorted(stage.standin.state.hooks)
    assert hooks_after == hooks_before
    same_session = same_secret(stage.fleet.running()[0].env["NEXT_AUTH_SECRET"], session_before)
    assert same_session, "the session secret changed although nobody asked for it"
    assert rotation_state(stage, "webhook-signing-key")["generation"] == 0


def test_an_unchanged_run_before_the_due_date_changes_nothing(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.clock.advance(29)
    _, mocks = stage.up()
    assert mocks.replacements == [] and mocks.dynamic_creates == []
    assert [name for _, name in mocks.updates] == []


def test_two_rotations_in_a_row_leave_one_secret_and_zero_failures(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    failures = 0
    for _ in range(2):
        stage.clock.advance(31)
        probes, _ = rotate_with_probes(stage)
        failures += probes.counts.failed_auth
    assert failures == 0
    assert secret_names(stage) == ["lobechat-2"] and running_holds_secret(stage, "lobechat-2")


def test_rotate_now_rotates_once_per_request_word(make_stage):
    stage = make_stage({})
    stage.up()
    stage.rotation = {"rotateNow": {"clientSecret": "2030-03-18"}}
    stage.clock.advance(1)
    probes, _ = rotate_with_probes(stage)
    assert probes.counts.failed_auth == 0
    assert secret_names(stage) == ["lobechat-1"]
    state = rotation_state(stage, "client-secret")
    assert state["reason"] == "requested: rotation.rotateNow.clientSecret = '2030-03-18'"
    assert state.get("expires_at") is None  # no maxAge: nothing would rotate it before an expiry
    stage.clock.advance(1)
    _, again = stage.up()  # the same word again: nothing
    assert again.replacements == []
    stage.rotation = {"rotateNow": {"clientSecret": "2030-03-20"}}
    _, third = stage.up()
    assert sorted(n for _, n in third.replacements) == ["lobechat", "lobechat-client-secret"]


def test_preview_shows_what_would_rotate_and_why_and_changes_nothing(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    state_before = dict(stage.state)
    stage.clock.advance(45)
    start = len(stage.standin.requests_log)
    _, preview = stage.up(preview=True)
    writes = [r for r in stage.standin.requests_log[start:] if r.method != "GET"]
    assert writes == []
    key = (ROTATION_KEY, "rotation-client-secret")
    shown = dict(preview.state[key].inputs)
    assert shown["generation"] == 1 and shown["reason"] == "age 45d >= maxAge 30d"
    assert preview.diffs[(LOGTO_APPLICATION_SECRET, "lobechat-client-secret")] == ["expires_at", "secret_name"]
    assert stage.state == state_before and secret_names(stage) == [DEFAULT_SECRET_NAME]


def test_a_lost_lobechat_container_comes_back_with_the_secret_it_held(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.clock.advance(31)
    stage.up()
    stage.fleet.lose("lobechat-c2")
    stage.container = None  # `pulumi refresh` finds it gone
    stage.refresh()
    stage.clock.advance(1)
    probes, _ = rotate_with_probes(stage)
    assert probes.counts.failed_auth == 0
    assert rotation_state(stage, "client-secret")["generation"] == 1
    assert secret_names(stage) == ["lobechat-1"] and running_holds_secret(stage, "lobechat-1")


# --- faults during a rotation ------------------------------------------------------------------------


def test_a_failed_secret_create_leaves_lobechat_on_its_secret_and_the_next_run_converges(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.clock.advance(31)
    stage.standin.faults.add(method="POST", path_prefix="/api/applications/", kind="status", status=400, times=1)
    with Probes(stage.standin, stage.fleet) as probes:
        stage.on_step = lambda label: probes.probe()
        with failing_run_quietly(LogtoError), pytest.raises(LogtoError) as failure:
            stage.up()
        message = str(failure.value)
        assert message.startswith("POST http://127.0.0.1:") and "/secrets: HTTP 400" in message
        assert running_holds_secret(stage, DEFAULT_SECRET_NAME)
        stage.up()
        probes.probe()
    assert probes.counts.failed_auth == 0
    assert secret_names(stage) == ["lobechat-1"] and running_holds_secret(stage, "lobechat-1")


def test_a_lobechat_that_never_gets_healthy_keeps_the_old_one_and_the_next_runs_converge(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.clock.advance(31)
    with Probes(stage.standin, stage.fleet) as probes:
        stage.on_step = lambda label: probes.probe()
        stage.fleet.fail_next_start = True
        with failing_run_quietly(RuntimeError), pytest.raises(RuntimeError, match="health check never passed"):
            stage.up()
        # Both secrets exist; the old LobeChat still runs on the old one.
        assert secret_names(stage) == [DEFAULT_SECRET_NAME, "lobechat-1"]
        assert running_holds_secret(stage, DEFAULT_SECRET_NAME)
        # The next run deletes the pending old secret first: the lease keeps it, LobeChat rolls over.
        stage.up()
        probes.probe()
        assert running_holds_secret(stage, "lobechat-1")
        _, last = stage.up()  # and the run after sweeps what nothing holds any more
        probes.probe()
    assert probes.counts.failed_auth == 0
    assert secret_names(stage) == ["lobechat-1"]
    _, quiet = stage.up()
    assert quiet.updates == [] and quiet.replacements == []


# --- webhook signing key ------------------------------------------------------------------------------


WEBHOOK_30D = {"maxAge": {"webhookSigningKey": "30d"}}


def test_webhook_key_rotation_loses_no_event(make_stage):
    stage = make_stage(WEBHOOK_30D)
    stage.up()
    (hook_before,) = stage.standin.state.hooks
    stage.clock.advance(31)
    probes, requests = rotate_with_probes(stage)
    emitted = len(probes.counts.events_emitted)
    lost = probes.lost_events()
    steps = stage.last.steps
    assert emitted >= len(steps) >= 6 and lost == []
    # Every delivery that reached a replica verified there: each hook only reaches its key's holders.
    rejected = [d for d in stage.fleet.deliveries if not d.accepted]
    assert rejected == []
    (hook_after,) = stage.standin.state.hooks
    assert hook_after != hook_before
    hook = stage.standin.state.hooks[hook_after]
    assert hook["config"]["url"] == "http://lobechat-hook-1:3210/api/webhooks/logto"
    assert hook["config"]["headers"]["x-managed-by"].endswith("/lobechat-webhook@k1")
    (replica,) = stage.fleet.running()
    assert "lobechat-hook-1" in replica.aliases
    assert same_secret(replica.signing_key, hook["signingKey"])
    # Duplicates happen only while both hooks deliver to their own containers.
    duplicated = [m for m, ds in by_marker(stage.fleet.deliveries).items() if sum(d.accepted for d in ds) > 1]
    assert all(len({d.replica for d in by_marker(stage.fleet.deliveries)[m] if d.accepted}) == 2 for m in duplicated)
    assert ("DELETE", f"/api/hooks/{hook_before}") in requests.calls


def test_webhook_key_rotation_with_a_failed_rollout_loses_no_event_and_converges(make_stage):
    stage = make_stage(WEBHOOK_30D)
    stage.up()
    stage.clock.advance(31)
    with Probes(stage.standin, stage.fleet) as probes:
        stage.on_step = lambda label: probes.probe()
        stage.fleet.fail_next_start = True
        with failing_run_quietly(RuntimeError), pytest.raises(RuntimeError):
            stage.up()
        probes.probe()
        assert len(stage.standin.state.hooks) == 2
        stage.up()  # the pending delete of the old hook is held back: the old LobeChat still has its key
        probes.probe()
        stage.up()
        probes.probe()
    assert probes.lost_events() == []
    assert len(stage.standin.state.hooks) == 1


def test_client_secret_and_webhook_key_rotate_together_without_failures(make_stage):
    stage = make_stage({"maxAge": {"clientSecret": "30d", "webhookSigningKey": "30d"}})
    stage.up()
    stage.clock.advance(31)
    probes, _ = rotate_with_probes(stage)
    assert probes.counts.failed_auth == 0 and probes.lost_events() == []
    assert secret_names(stage) == ["lobechat-1"] and len(stage.standin.state.hooks) == 1


# --- session secret ---------------------------------------------------------------------------------


def test_session_secret_rotates_only_on_request(make_stage):
    stage = make_stage({"maxAge": {"clientSecret": "30d"}})
    stage.up()
    before = stage.fleet.running()[0].env["NEXT_AUTH_SECRET"]
    stage.clock.advance(400)
    stage.up()
    kept = same_secret(stage.fleet.running()[0].env["NEXT_AUTH_SECRET"], before)
    assert kept, "the session secret rotated by age"
    stage.rotation = {**stage.rotation, "rotateNow": {"sessionSecret": "signout-2031"}}
    stage.up()
    changed = not same_secret(stage.fleet.running()[0].env["NEXT_AUTH_SECRET"], before)
    assert changed, "the requested session secret rotation did not happen"
    assert rotation_state(stage, "session-secret")["generation"] == 1


def test_refresh_after_a_rotation_brings_no_default_secret_back(make_stage):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.clock.advance(31)
    stage.up()
    stage.up()  # the lease's follow-up sweep
    stage.refresh()  # the application now reads with no Default secret
    stage.clock.advance(1)
    _, mocks = stage.up()
    assert secret_names(stage) == ["lobechat-1"] and mocks.replacements == []


@pytest.mark.parametrize(
    ("method", "path", "step"),
    [("PATCH", "/api/applications/", "the lease (what LobeChat holds)"),
     ("DELETE", "/api/applications/", "the end-of-run delete of the old secret")],
    ids=["lease-fails", "old-secret-delete-fails"],
)
def test_a_failure_after_the_new_lobechat_is_up_loses_nothing_and_converges(make_stage, method, path, step):
    stage = make_stage(CLIENT_30D)
    stage.up()
    stage.clock.advance(31)
    stage.standin.faults.add(method=method, path_prefix=path, kind="status", status=400, times=1)
    with Probes(stage.standin, stage.fleet) as probes:
        stage.on_step = lambda label: probes.probe()
        with failing_run_quietly(LogtoError), pytest.raises(LogtoError) as failure:
            stage.up()
        assert f"{method} http://127.0.0.1:" in str(failure.value), step
        probes.probe()
        stage.up()
        probes.probe()
        stage.up()
        probes.probe()
    assert probes.counts.failed_auth == 0
    assert secret_names(stage) == ["lobechat-1"] and running_holds_secret(stage, "lobechat-1")
    assert [r.container_id for r in stage.fleet.running()] == ["lobechat-c2"]
