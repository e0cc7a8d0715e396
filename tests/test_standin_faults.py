"""Fault injection of the Logto stand-in: each fault class does what the plan promises, once."""

from __future__ import annotations


import pytest
import requests

from tests.logto_standin import LogtoStandIn
from tests.logto_standin.client import StandInClient

APP = {"name": "fault probe", "type": "Traditional"}


def _app_names(logto: LogtoStandIn) -> list[str]:
    return [app["name"] for app in logto.state.applications.values()]


def test_status_fault_answers_the_status_without_changing_state(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=503, times=1)
    answer = standin_client.post("/api/applications", json=APP)
    assert answer.status_code == 503 and "fault probe" not in _app_names(logto)


def test_status_fault_is_used_up_after_its_times(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=502, times=2)
    statuses = [standin_client.post("/api/applications", json=APP).status_code for _ in range(3)]
    assert statuses == [502, 502, 200]


def test_fault_without_times_limit_fires_on_every_request(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="status", status=504, times=None)
    assert [standin_client.get("/api/hooks").status_code for _ in range(3)] == [504, 504, 504]


def test_rate_limit_fault_sends_retry_after(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="GET", path_prefix="/api/applications", kind="status", status=429, retry_after=1)
    answer = standin_client.get("/api/applications")
    assert (answer.status_code, answer.headers.get("Retry-After")) == (429, "1")


def test_fault_leaves_other_methods_and_paths_alone(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="status", status=503)
    assert standin_client.get("/api/applications").status_code == 200
    assert standin_client.get("/api/hooks").status_code == 200
    assert len(logto.faults.pending) == 1


def test_fault_can_target_the_token_endpoint(logto: LogtoStandIn) -> None:
    logto.faults.add(method="POST", path_prefix="/oidc/token", kind="status", status=503)
    with pytest.raises(requests.HTTPError):
        StandInClient(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret)


def test_delay_fault_holds_the_answer_back(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="delay", seconds=1.0)
    with pytest.raises(requests.Timeout):
        standin_client.get("/api/hooks", timeout=0.2)


def test_delay_fault_still_answers_normally(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="delay", seconds=0.05)
    assert standin_client.get("/api/hooks").status_code == 200


def test_drop_fault_closes_the_connection_and_changes_nothing(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="drop")
    with pytest.raises(requests.ConnectionError):
        standin_client.post("/api/applications", json=APP)
    assert "fault probe" not in _app_names(logto)


def test_drop_after_commit_performs_the_write_then_loses_the_answer(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="POST", path_prefix="/api/applications", kind="drop_after_commit")
    with pytest.raises(requests.ConnectionError):
        standin_client.post("/api/applications", json=APP)
    assert _app_names(logto).count("fault probe") == 1


def test_dropped_requests_are_logged_without_status(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="DELETE", path_prefix="/api/hooks/", kind="drop")
    with pytest.raises(requests.ConnectionError):
        standin_client.delete("/api/hooks/some-id")
    assert logto.requests_log[-1] == ("DELETE", "/api/hooks/some-id", None)


def test_the_session_recovers_after_a_drop(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.faults.add(method="GET", path_prefix="/api/hooks", kind="drop")
    with pytest.raises(requests.ConnectionError):
        standin_client.get("/api/hooks")
    assert standin_client.get("/api/hooks").status_code == 200


def test_latency_applies_to_every_request(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    logto.latency = 1.0
    with pytest.raises(requests.Timeout):
        standin_client.get("/api/status", timeout=0.2)


def test_unknown_fault_kind_is_refused(logto: LogtoStandIn) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        logto.faults.add(kind="explode")


def test_requests_log_records_method_path_and_status(logto: LogtoStandIn, standin_client: StandInClient) -> None:
    standin_client.get("/api/applications?page=1&page_size=5")
    assert logto.requests_log[-1] == ("GET", "/api/applications?page=1&page_size=5", 200)
