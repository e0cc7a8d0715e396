"""Rotation of the bootstrap M2M secret (the credential that holds the whole Management API) through
whole `pulumi up` runs against the Logto stand-in (``tests/rollout_harness.py``).

Throughout every run, probes make Management API calls (a client_credentials token, then a request)
with every M2M credential some resource of the deployment holds at that moment (this run's state,
the previous state not reached yet, replaced resources until their end-of-run delete, a failed run's
pending deletes): zero may be refused. Afterwards the previous secret must be refused.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests

from components.logto_api import LogtoError
from components.logto_bootstrap import LogtoBootstrapError
from components.logto_resources.management_credential import HELD_KEY
from components.platform import M2M_APP_ID
from tests.rollout_harness import DAY, T0, Probes, Requests, Stage
from tests.test_program_against_standin import failing_run_quietly
from tests.test_rotation_rollout import make_stage, rotation_state, running_holds_secret, secret_names  # noqa: F401

CREDENTIAL_KEY = ("pulumi-python:dynamic/logto:ManagementCredential", "logto-management-credential")
M2M_30D = {"maxAge": {"m2mSecret": "30d"}}


def m2m_named(stage: Stage) -> list[dict[str, Any]]:
    return stage.standin.state.secrets.get(M2M_APP_ID, [])


def m2m_names(stage: Stage) -> list[str]:
    return sorted(s["name"] for s in m2m_named(stage))


def has_legacy_secret(stage: Stage) -> bool:
    return not stage.standin.state.applications[M2M_APP_ID]["secret"].startswith("#internal:")


class Hidden(str):
    """A secret whose repr shows nothing (pytest prints the values in a failed assert)."""

    def __repr__(self) -> str:
        return "<secret>"


def credential(stage: Stage) -> tuple[str, Hidden]:
    outs = stage.state[CREDENTIAL_KEY].outputs
    return outs["logto_client_id"], Hidden(outs["logto_client_secret"])


def accepted(stage: Stage, cred: tuple[str, str]) -> bool:
    answer = requests.post(
        f"{stage.standin.endpoint}/oidc/token", timeout=10, auth=cred,
        data={"grant_type": "client_credentials", "resource": stage.standin.state.management_resource, "scope": "all"},
    )
    assert answer.status_code in (200, 401), answer.status_code
    return answer.status_code == 200


def probes_for(stage: Stage) -> Probes:
    return Probes(stage.standin, stage.fleet, m2m=lambda: stage.held_m2m_credentials(M2M_APP_ID))


def probing(probes: Probes):
    """The engine-step hook: remember the step (named in a failure), then probe."""
    def on_step(label: str) -> None:
        probes.moment = label
        probes.probe()
    return on_step


def refused_during(stage: Stage, start: int) -> list[tuple[str, str, int]]:
    """Requests of the span that Logto refused for authentication (token endpoint or Management API)."""
    return [(r.method, r.path.split("?")[0], r.status) for r in stage.standin.requests_log[start:]
            if r.status == 401 and "probe=" not in r.path]  # the probes' own are judged by the probes


def rotate(stage: Stage, **overrides: Any) -> tuple[Probes, Requests, list]:
    with probes_for(stage) as probes:
        stage.on_step = probing(probes)
        start = len(stage.standin.requests_log)
        probes.probe()
        stage.up(**overrides)
        probes.probe()
        requests_ = Requests.since(stage.standin, start)
        refused = refused_during(stage, start)
    stage.on_step = lambda label: None
    return probes, requests_, refused


def test_first_deployment_manages_logto_with_the_legacy_secret_as_generation_0(make_stage):
    stage = make_stage(M2M_30D)
    run, _ = stage.up()
    status = run.outputs["rotation"]["m2mSecret"]
    assert status["generation"] == 0 and status["nextDueAt"] == "2030-04-16T17:46:40Z"
    assert m2m_names(stage) == [] and has_legacy_secret(stage)
    assert stage.state[CREDENTIAL_KEY].outputs.get("secret_name") is None
    assert accepted(stage, credential(stage))


def test_m2m_rotation_due_by_age_refuses_no_management_call_and_retires_the_old_secret(make_stage):
    stage = make_stage(M2M_30D)
    stage.up()
    stage.refresh()  # the age survives a refresh
    old = credential(stage)
    stage.clock.advance(31)
    probes, calls, refused = rotate(stage)
    steps = stage.last.steps
    assert probes.counts.m2m_failed == 0 and probes.counts.m2m_attempts >= len(steps) >= 4
    assert refused == []  # no provider call and no probe was refused at any moment
    new = credential(stage)
    assert new[0] == M2M_APP_ID and new[1] != old[1]
    assert accepted(stage, new) and not accepted(stage, old)
    assert m2m_names(stage) == ["m2m-1"] and not has_legacy_secret(stage)
    assert m2m_named(stage)[0]["expiresAt"] == int((T0 + 31 * DAY + 60 * DAY) * 1000)  # maxAge 30d + grace 30d
    state = rotation_state(stage, "m2m-secret")
    assert state["generation"] == 1 and state["reason"] == "age 31d >= maxAge 30d"
    # LobeChat holds no M2M secret: it keeps running, untouched.
    assert stage.fleet.history == [("start", "lobechat-c1")]
    assert ("DELETE", f"/api/applications/{M2M_APP_ID}/legacy-secret") in calls.calls
    # The previous credential is retired at the end, after everything that held it moved on.
    steps = stage.last.steps
    assert steps.index("delete logto-management-credential") > max(
        i for i, step in enumerate(steps) if step.startswith(("update ", "replace ", "create ")))


def test_rotate_now_rotates_the_m2m_secret_once_per_word_and_keeps_one_secret(make_stage):
    stage = make_stage({})
    stage.up()
    failed = 0
    for number, word in enumerate(("2030-03-18", "2030-03-19"), start=1):
        stage.rotation = {"rotateNow": {"m2mSecret": word}}
        stage.clock.advance(1)
        probes, _, refused = rotate(stage)
        failed += probes.counts.m2m_failed + len(refused)
        assert m2m_names(stage) == [f"m2m-{number}"]
        assert m2m_named(stage)[0]["expiresAt"] is None  # no maxAge: no expiry
    assert failed == 0
    state = rotation_state(stage, "m2m-secret")
    assert state["reason"] == "requested: rotation.rotateNow.m2mSecret = '2030-03-19'"
    _, again = stage.up()  # the same word again: nothing
    assert again.replacements == [] and again.updates == []


def test_an_existing_stage_without_m2m_rotation_changes_nothing(make_stage):
    stage = make_stage({"maxAge": {"clientSecret": "30d"}})
    stage.up()
    stage.clock.advance(20)
    _, mocks = stage.up()
    assert mocks.replacements == [] and mocks.updates == [] and has_legacy_secret(stage)
    assert rotation_state(stage, "m2m-secret")["generation"] == 0


def test_preview_shows_the_m2m_rotation_and_why_and_changes_nothing(make_stage):
    stage = make_stage(M2M_30D)
    stage.up()
    before = dict(stage.state)
    stage.clock.advance(45)
    start = len(stage.standin.requests_log)
    _, preview = stage.up(preview=True)
    writes = [r for r in stage.standin.requests_log[start:] if r.method != "GET" and r.path.startswith("/api/")]
    assert writes == []
    shown = dict(preview.state[("pulumi-python:dynamic/rotation:SecretRotation", "rotation-m2m-secret")].inputs)
    assert shown["generation"] == 1 and shown["reason"] == "age 45d >= maxAge 30d"
    assert {"generation", "secret_name"} <= set(preview.diffs[CREDENTIAL_KEY])  # a replacement
    unchanged = stage.state == before  # (a bool: the state holds secrets, never shown)
    assert unchanged and m2m_names(stage) == [] and has_legacy_secret(stage)


def test_refresh_after_an_m2m_rotation_keeps_the_generation_and_the_next_run_is_quiet(make_stage):
    stage = make_stage(M2M_30D)
    stage.up()
    stage.clock.advance(31)
    stage.up()
    stage.refresh()
    stage.clock.advance(1)
    _, mocks = stage.up()
    assert mocks.replacements == [] and mocks.updates == []
    assert rotation_state(stage, "m2m-secret")["generation"] == 1 and m2m_names(stage) == ["m2m-1"]


def test_m2m_and_client_secret_rotations_in_one_run_refuse_nothing(make_stage):
    stage = make_stage({"maxAge": {"m2mSecret": "30d", "clientSecret": "30d", "webhookSigningKey": "30d"}})
    stage.up()
    old = credential(stage)
    stage.clock.advance(31)
    probes, _, refused = rotate(stage)
    assert probes.counts.m2m_failed == 0 and probes.counts.failed_auth == 0 and refused == []
    assert probes.lost_events() == []
    assert m2m_names(stage) == ["m2m-1"] and secret_names(stage) == ["lobechat-1"]
    assert not accepted(stage, old)


# --- faults ------------------------------------------------------------------------------------------


def test_a_lobechat_that_never_gets_healthy_keeps_the_old_credential_and_the_next_runs_converge(make_stage):
    stage = make_stage({"maxAge": {"m2mSecret": "30d", "clientSecret": "30d"}})
    stage.up()
    old = credential(stage)
    stage.clock.advance(31)
    start = len(stage.standin.requests_log)
    with probes_for(stage) as probes:
        stage.on_step = probing(probes)
        stage.fleet.fail_next_start = True
        with failing_run_quietly(RuntimeError), pytest.raises(RuntimeError, match="health check never passed"):
            stage.up()
        probes.probe()
        # The lease (after LobeChat) still holds the old credential: it stays valid.
        assert accepted(stage, old) and m2m_names(stage) == ["m2m-1"]
        stage.up()  # the failed run's pending deletes run first: the old credential is kept for the lease
        probes.probe()
        stage.up()
        probes.probe()
    assert probes.counts.m2m_refusals == [] and probes.counts.failed_auth == 0
    assert refused_during(stage, start) == []
    assert not accepted(stage, old) and not has_legacy_secret(stage) and m2m_names(stage) == ["m2m-1"]
    assert running_holds_secret(stage, "lobechat-1")
    held = stage.standin.state.applications[M2M_APP_ID]["customData"][HELD_KEY]
    assert held == {"generation": 1, "retire": []}
    _, quiet = stage.up()
    assert quiet.replacements == [] and quiet.updates == []


def test_a_failed_bootstrap_keeps_the_old_credential_names_the_step_and_the_next_run_converges(make_stage):
    stage = make_stage(M2M_30D)
    stage.up()
    old = credential(stage)
    stage.clock.advance(31)
    with probes_for(stage) as probes:
        stage.on_step = probing(probes)
        stage.fail_bootstrap_once = True
        with failing_run_quietly(LogtoBootstrapError), pytest.raises(LogtoBootstrapError) as failure:
            stage.up()
        message = str(failure.value)
        assert message.startswith("the Logto bootstrap (psql) exited with code 3") and "pulumi up --replace" in message
        probes.probe()
        assert credential(stage) == old and accepted(stage, old) and m2m_names(stage) == []
        stage.up()  # `pulumi up --replace <bootstrap>` as the error says: the emulated psql runs again
        probes.probe()
    assert probes.counts.m2m_refusals == []
    assert m2m_names(stage) == ["m2m-1"] and not accepted(stage, old)


def test_a_failed_update_of_a_dependent_keeps_both_credentials_valid_and_converges(make_stage):
    stage = make_stage(M2M_30D)
    stage.up()
    old = credential(stage)
    stage.clock.advance(31)
    # The lease's write of the held generation fails: the run stops after the new credential and
    # every other dependent moved to it; the old credential is pending deletion.
    stage.standin.faults.add(method="PATCH", path_prefix=f"/api/applications/{M2M_APP_ID}", kind="status",
                             status=400, times=1)
    with probes_for(stage) as probes:
        stage.on_step = probing(probes)
        with failing_run_quietly(LogtoError), pytest.raises(LogtoError) as failure:
            stage.up()
        assert str(failure.value).startswith(f"PATCH http://127.0.0.1:{stage.standin.port}/api/applications/{M2M_APP_ID}")
        probes.probe()
        assert accepted(stage, old)
        stage.up()
        probes.probe()
        stage.up()
        probes.probe()
    assert probes.counts.m2m_refusals == []
    assert m2m_names(stage) == ["m2m-1"] and not accepted(stage, old)


def test_a_secret_that_expired_before_the_run_is_replaced_by_sql_and_the_stage_recovers(make_stage):
    stage = make_stage({"maxAge": {"m2mSecret": "30d"}, "expiryGrace": "1d"})
    stage.up()
    stage.clock.advance(31)
    stage.up()  # m2m-1, expires 31d after it was made
    stage.clock.advance(40)  # nobody ran `pulumi up` for 40 days: m2m-1 is refused now
    assert not accepted(stage, credential(stage))
    expired = credential(stage)
    stage.up()  # due by age: the bootstrap inserts m2m-2 by SQL, no Management API needed for it
    assert accepted(stage, credential(stage)) and not accepted(stage, expired)
    # The expired m2m-1 could not retire itself (refused): the new generation's sweep removed it.
    assert m2m_names(stage) == ["m2m-2"]
