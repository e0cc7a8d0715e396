"""``SecretRotation``: the due decision under an injected clock, and the provider the way the engine calls it."""

from __future__ import annotations

import pytest

from components import clock
from components.rotation_state import SecretRotationProvider, decide

DAY = 86400
T0 = 1_900_000_000  # 2030-03-17T17:46:40Z
POLICY = {"secret": "clientSecret", "max_age_seconds": 30 * DAY, "request": None, "lifetime_seconds": 60 * DAY}


def first_state(at=T0, **policy):
    return decide({}, {**POLICY, **policy}, at).state


def test_the_first_state_is_generation_0_due_after_max_age():
    state = first_state()
    assert state["generation"] == 0 and state["rotated_at"] == T0 and state["expires_at"] is None
    assert state["next_due_at"] == "2030-04-16T17:46:40Z"


def test_not_due_before_max_age_keeps_the_state():
    state = first_state()
    decision = decide(state, POLICY, T0 + 30 * DAY - 1)
    assert not decision.rotate and decision.state == state


def test_due_at_max_age_gives_the_next_generation_with_an_expiry():
    decision = decide(first_state(), POLICY, T0 + 30 * DAY)
    assert decision.rotate
    state = decision.state
    assert state["generation"] == 1 and state["rotated_at"] == T0 + 30 * DAY
    assert state["expires_at"] == (T0 + 90 * DAY) * 1000
    assert state["reason"] == "age 30d >= maxAge 30d"


def test_a_new_request_word_rotates_once():
    state = first_state()
    asked = {**POLICY, "request": "now-1"}
    decision = decide(state, asked, T0 + DAY)
    assert decision.rotate and decision.state["honoured_request"] == "now-1"
    assert "rotation.rotateNow.clientSecret = 'now-1'" in decision.state["reason"]
    again = decide(decision.state, asked, T0 + 2 * DAY)
    assert not again.rotate
    dropped = decide(again.state, POLICY, T0 + 3 * DAY)  # the word removed from the stack file
    assert not dropped.rotate and dropped.state["honoured_request"] == "now-1"


def test_a_request_at_the_first_deployment_is_honoured_without_rotating():
    state = first_state(request="day-one")
    assert state["generation"] == 0 and state["honoured_request"] == "day-one"
    assert not decide(state, {**POLICY, "request": "day-one"}, T0 + DAY).rotate


def test_without_max_age_nothing_rotates_by_age():
    policy = {**POLICY, "max_age_seconds": None, "lifetime_seconds": None}
    state = decide({}, policy, T0).state
    assert not decide(state, policy, T0 + 3650 * DAY).rotate and state["next_due_at"] is None


def test_a_raised_max_age_still_rotates_before_the_logto_expiry():
    rotated = decide(first_state(), POLICY, T0 + 30 * DAY).state  # expires T0 + 90d
    raised = {**POLICY, "max_age_seconds": 365 * DAY, "lifetime_seconds": 395 * DAY}
    assert not decide(rotated, raised, T0 + 59 * DAY).rotate
    # grace under the raised policy is 30d: within 30d of the old expiry it rotates
    decision = decide(rotated, raised, T0 + 61 * DAY)
    assert decision.rotate and "expires in Logto at" in decision.state["reason"]


def test_a_clock_moved_backwards_does_not_rotate():
    state = first_state()
    assert not decide(state, POLICY, T0 - 400 * DAY).rotate


# --- the provider as the engine calls it -----------------------------------------------------------


def news(**policy):
    return {**POLICY, **policy, "generation": None, "rotated_at": None, "expires_at": None,
            "honoured_request": None, "reason": None, "next_due_at": None}


def test_check_decides_with_the_injected_clock():
    provider = SecretRotationProvider()
    with clock.use_clock(lambda: T0):
        created = provider.check({}, news()).inputs
    with clock.use_clock(lambda: T0 + 31 * DAY):
        later = provider.check(created, news()).inputs
    assert created["generation"] == 0 and later["generation"] == 1
    diff = provider.diff("id", created, later)
    assert diff.changes and not diff.replaces


def test_an_unchanged_check_reports_no_change():
    provider = SecretRotationProvider()
    with clock.use_clock(lambda: T0):
        created = provider.check({}, news()).inputs
    with clock.use_clock(lambda: T0 + DAY):
        later = provider.check(created, news()).inputs
    assert not provider.diff("id", created, later).changes


def test_refresh_returns_the_stored_state_as_inputs():
    provider = SecretRotationProvider()
    with clock.use_clock(lambda: T0):
        created = provider.check({}, news()).inputs
    read = provider.read("id", dict(created))
    assert read.id == "id" and read.inputs == created


def test_the_environment_clock_serves_a_dry_run_as_of_another_day(monkeypatch):
    monkeypatch.setenv(clock.NOW_ENV, "2030-04-20T00:00:00Z")
    assert clock.now() == 1902873600.0
    monkeypatch.setenv(clock.NOW_ENV, "next week")
    with pytest.raises(ValueError, match=clock.NOW_ENV):
        clock.now()
    failures = SecretRotationProvider().check({}, news()).failures
    assert [f.property for f in failures] == ["secret"]


@pytest.mark.parametrize("bad", [{"secret": ""}, {"max_age_seconds": -5}, {"request": 7}])
def test_bad_inputs_fail_the_check(bad):
    with clock.use_clock(lambda: T0):
        result = SecretRotationProvider().check({}, news(**bad))
    assert result.failures
