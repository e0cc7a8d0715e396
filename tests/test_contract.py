"""Holds the Logto stand-in to the real server: every recorded exchange is replayed against it.

The flows in ``shared/logto-contract/0*.json`` were recorded in order against one Logto 1.37.1
(later flows use the application and hook earlier flows created), so they are replayed in order
against one stand-in. Recorded ids, secrets and tokens are mapped to the stand-in's own as its answers
come in; the recorded webhook receiver becomes a local one. Each exchange must give the same status
and a body of the same shape (same keys, same JSON types, lists of the same length); each delivery
note must match what the local receiver got, signature included.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from tests.logto_standin import LogtoStandIn, WebhookReceiver, sign
from tests.logto_standin.client import fetch_token, tamper_signature
from tests.logto_standin.contract_files import contract_dir, openapi_spec_path
from tests.logto_standin.webhooks import SIGNATURE_HEADER, encode_payload
from tests.prereqs import require_or_skip
from tests.ports import closed_port

CONTRACT_DIR = contract_dir()
FLOW_FILES = sorted(CONTRACT_DIR.glob("0*.json")) if CONTRACT_DIR.is_dir() else []
FLOW_NAMES = [path.stem for path in FLOW_FILES]
# Flows the issue requires to replay completely (05: its application, hook and token steps, i.e. all).
FULLY_REQUIRED_FLOWS = ("00-m2m-token", "02-applications", "03-application-secrets", "04-hooks",
                        "05-errors", "07-app-credentials-at-token-endpoint", "08-cleanup-deletes")
OMITTED_BODY = "<<omitted, see note>>"
# Keys whose recorded string values are server-generated and map to the stand-in's own values.
GENERATED_VALUE_KEYS = frozenset({"id", "applicationId", "hookId", "secret", "value", "signingKey",
                                  "access_token", "userId"})
COMPARED_HEADERS = ("Total-Number", "WWW-Authenticate", "Retry-After")
# A number in a recorded request within this distance of the flow's ``recorded_at`` is a timestamp in
# epoch milliseconds (an ``expiresAt``): it is moved by as much as the replay is later than the recording.
# Values far from it (``expiresAt: 1000``, "long ago") mean the same thing on any day and are sent as they are.
TIMESTAMP_WINDOW_MS = 20 * 365 * 86_400_000


# --------------------------------------------------------------------------------------------------
# shape comparison


def json_type(value: Any) -> str:
    """The JSON type of a parsed value (ints and floats are both ``number``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_differences(recorded: Any, live: Any, where: str = "$") -> list[str]:
    """Where ``live`` differs in shape from ``recorded``: keys, JSON types, list lengths (never values)."""
    recorded_type, live_type = json_type(recorded), json_type(live)
    if recorded_type != live_type:
        return [f"{where}: {live_type} where the recording has {recorded_type}"]
    if recorded_type == "object":
        problems = [f"{where}: key '{key}' missing" for key in recorded if key not in live]
        problems += [f"{where}: unexpected key '{key}'" for key in live if key not in recorded]
        for key in recorded:
            if key in live:
                problems += shape_differences(recorded[key], live[key], f"{where}.{key}")
        return problems
    if recorded_type == "array":
        if len(recorded) != len(live):
            return [f"{where}: {len(live)} elements where the recording has {len(recorded)}"]
        problems = []
        for index, (recorded_item, live_item) in enumerate(zip(recorded, live)):
            problems += shape_differences(recorded_item, live_item, f"{where}[{index}]")
        return problems
    return []


# --------------------------------------------------------------------------------------------------
# replay


class StepSkipped(Exception):
    """The stand-in has no equivalent for this recorded step (the reason is the message)."""


@dataclass
class StepOutcome:
    """What became of one recorded step."""

    flow: str
    index: int
    label: str
    replayed: bool
    problems: list[str] = field(default_factory=list)
    skip_reason: str | None = None
    recorded_status: int | None = None
    openapi_violations: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``flow#index label``, for messages."""
        return f"{self.flow}#{self.index} {self.label}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _jwt_claims(token: str) -> dict[str, Any] | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def _closed_port_base() -> str:
    """A local origin where nothing listens (the recording's "receiver port closed")."""
    return f"http://127.0.0.1:{closed_port()}"


class ContractReplay:
    """Replays recorded flows, in order, against one stand-in and one local webhook receiver."""

    def __init__(self, logto: LogtoStandIn, receiver: WebhookReceiver, flows: list[dict[str, Any]],
                 rebase_times: bool = True) -> None:
        self.logto = logto
        self.rebase_times = rebase_times
        self.recorded_at_ms = 0  # the current flow's recording time
        self.shift_ms = 0        # how much later the replay runs than the current flow was recorded
        self.receiver = receiver
        self.flows = flows
        self.session = requests.Session()
        self.closed_base = _closed_port_base()
        self.values: dict[str, str] = {}   # recorded generated value -> the stand-in's
        self.client_secrets: dict[str, str] = {logto.m2m_client_id: logto.m2m_client_secret}
        self.delivery_cursor = 0
        steps = [step for flow in flows for step in flow["steps"]]
        origins = collections.Counter(_origin(step["url"]) for step in steps if step.get("url"))
        self.recorded_origin = origins.most_common(1)[0][0] if origins else ""
        self.receiver_hosts = {
            value for step in steps for delivery in step.get("deliveries", [])
            for name, value in delivery["headers"] if name == "host"
        }
        self._seed_bootstrap_credentials(flows)
        self.genuine_tokens = self._genuine_tokens(steps)

    # ---- mapping recorded values to live ones ---------------------------------------------------

    def _seed_bootstrap_credentials(self, flows: list[dict[str, Any]]) -> None:
        """The SQL-bootstrapped M2M app of the recording is the stand-in's seeded M2M app."""
        for flow in flows:
            client_id = (flow.get("facts") or {}).get("access_token_claims", {}).get("client_id")
            if not client_id:
                continue
            self.values[client_id] = self.logto.m2m_client_id
            for step in flow["steps"]:
                credentials = self._basic_parts(step.get("request_headers") or {})
                if credentials and credentials[0] == client_id and step.get("status") == 200:
                    self.values[credentials[1]] = self.logto.m2m_client_secret
                    return

    @staticmethod
    def _basic_parts(headers: dict[str, str]) -> tuple[str, str] | None:
        authorization = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
        if not authorization.startswith("Basic "):
            return None
        client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        return client_id, secret

    @staticmethod
    def _genuine_tokens(steps: list[dict[str, Any]]) -> set[str]:
        """Recorded bearer tokens the real server accepted at least once, or issued."""
        genuine = set()
        for step in steps:
            if isinstance(step.get("response_json"), dict) and "access_token" in step["response_json"]:
                genuine.add(step["response_json"]["access_token"])
            authorization = (step.get("request_headers") or {}).get("authorization", "")
            if authorization.startswith("Bearer ") and step.get("status") not in (None, 401):
                genuine.add(authorization[7:])
        return genuine

    def _learn(self, recorded: Any, live: Any) -> None:
        """Map generated values (ids, secrets, tokens) of a recorded answer to the live answer's."""
        if isinstance(recorded, dict) and isinstance(live, dict):
            for key, recorded_value in recorded.items():
                live_value = live.get(key)
                if (key in GENERATED_VALUE_KEYS and isinstance(recorded_value, str) and isinstance(live_value, str)
                        and recorded_value not in self.values):
                    self.values[recorded_value] = live_value
                else:
                    self._learn(recorded_value, live_value)
        elif isinstance(recorded, list) and isinstance(live, list):
            for recorded_item, live_item in zip(recorded, live):
                self._learn(recorded_item, live_item)

    def _live_url(self, text: str) -> str:
        match = re.match(r"^http://127\.0\.0\.1:\d+", text)
        if match is None:
            return text
        origin = match.group(0)
        if origin[len("http://"):] in self.receiver_hosts:
            return self.receiver.base_url + text[len(origin):]
        if origin == self.recorded_origin:
            return self.logto.endpoint + text[len(origin):]
        return self.closed_base + text[len(origin):]

    def _live_value(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and self._is_recorded_timestamp(value):
            return value + self.shift_ms
        if isinstance(value, str):
            return self._live_url(self.values.get(value, value))
        if isinstance(value, list):
            return [self._live_value(item) for item in value]
        if isinstance(value, dict):
            return {key: self._live_value(item) for key, item in value.items()}
        return value

    def _is_recorded_timestamp(self, value: int) -> bool:
        return self.recorded_at_ms > 0 and abs(value - self.recorded_at_ms) < TIMESTAMP_WINDOW_MS

    def _start_flow(self, flow: dict[str, Any]) -> None:
        """Rebase the flow's recorded times on the stand-in's clock (its "now" is the recording's "now")."""
        recorded_at = flow.get("recorded_at")
        if not self.rebase_times or not recorded_at:
            self.recorded_at_ms = self.shift_ms = 0
            return
        self.recorded_at_ms = int(dt.datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).timestamp() * 1000)
        self.shift_ms = self.logto.state.clock_ms() - self.recorded_at_ms

    def _live_path(self, path: str) -> str:
        for recorded in sorted(self.values, key=len, reverse=True):
            if len(recorded) >= 6 and recorded in path:
                path = path.replace(recorded, self.values[recorded])
        return path

    def _live_bearer(self, token: str) -> str:
        if token in self.values:
            return self.values[token]
        claims = _jwt_claims(token)
        if claims is None:
            return token  # not a JWT at all: sent as recorded ("garbage bearer token")
        if token not in self.genuine_tokens:
            twin = next((item for item in self.genuine_tokens
                         if item.rsplit(".", 1)[0] == token.rsplit(".", 1)[0]), None)
            if twin is None:
                raise StepSkipped("bearer token of unknown origin")
            return tamper_signature(self._live_bearer(twin))
        if _origin(str(claims.get("iss", ""))) != self.recorded_origin:
            raise StepSkipped(f"token minted by another endpoint ({_origin(str(claims.get('iss')))}, the admin "
                              "tenant), which the stand-in does not emulate")
        client_id = self.values.get(claims.get("client_id", ""), claims.get("client_id", ""))
        secret = self.client_secrets.get(client_id)
        if secret is None:
            raise StepSkipped("no stand-in credentials for the client of this token")
        answer = fetch_token(self.logto.endpoint, client_id, secret, scope=claims.get("scope", ""),
                             resource=claims.get("aud", ""), session=self.session)
        answer.raise_for_status()
        self.values[token] = answer.json()["access_token"]
        return self.values[token]

    def _live_headers(self, recorded: dict[str, str]) -> dict[str, str]:
        headers = {}
        for name, value in recorded.items():
            if name.lower() in ("content-length", "host"):
                continue
            if name.lower() == "authorization" and value.startswith("Bearer "):
                value = "Bearer " + self._live_bearer(value[7:])
            elif name.lower() == "authorization" and value.startswith("Basic "):
                client_id, secret = self._basic_parts({name: value}) or ("", "")
                live = f"{self.values.get(client_id, client_id)}:{self.values.get(secret, secret)}"
                value = "Basic " + base64.b64encode(live.encode()).decode()
            headers[name] = value
        return headers

    # ---- steps ------------------------------------------------------------------------------------

    def run(self) -> list[StepOutcome]:
        """Replay every step of every flow, in order."""
        outcomes = []
        for flow in self.flows:
            self._start_flow(flow)
            for index, step in enumerate(flow["steps"]):
                outcome = StepOutcome(flow["name"], index, step.get("label") or "note: " + step.get("note", "")[:50],
                                      replayed=False, recorded_status=step.get("status"))
                try:
                    if "status" in step:
                        self._exchange(step, outcome)
                    else:
                        self._note(step, outcome)
                    outcome.replayed = True
                except StepSkipped as skipped:
                    outcome.skip_reason = str(skipped)
                outcomes.append(outcome)
        return outcomes

    def _exchange(self, step: dict[str, Any], outcome: StepOutcome) -> None:
        if _origin(step["url"]) != self.recorded_origin:
            raise StepSkipped(f"sent to {_origin(step['url'])} (the admin endpoint), which the stand-in does not emulate")
        headers = self._live_headers(step.get("request_headers") or {})
        data: bytes | None = None
        if step.get("request_raw_body") is not None:
            data = step["request_raw_body"].encode()
        elif step.get("request_json") is not None:
            data = json.dumps(self._live_value(step["request_json"])).encode()
        elif step.get("request_form") is not None:
            data = urlencode(self._live_value(step["request_form"])).encode()
        violations_before = len(self.logto.openapi_violations)
        answer = self.session.request(step["method"], self.logto.endpoint + self._live_path(step["path"]),
                                      headers=headers, data=data, timeout=30)
        outcome.openapi_violations = self.logto.openapi_violations[violations_before:]
        if answer.status_code != step["status"]:
            code = ""
            if answer.content and "json" in answer.headers.get("Content-Type", ""):
                error_code = answer.json().get("code") if isinstance(answer.json(), dict) else None
                code = f" ({error_code})" if error_code else ""
            outcome.problems.append(f"status {answer.status_code}{code} where the recording has {step['status']}")
        recorded_headers = {name.lower() for name in (step.get("response_headers") or {})}
        for name in COMPARED_HEADERS:
            if (name.lower() in recorded_headers) != (name in answer.headers):
                outcome.problems.append(f"header {name} {'missing' if name.lower() in recorded_headers else 'unexpected'}")
        recorded_body = step.get("response_json")
        if recorded_body is None:
            if answer.content:
                outcome.problems.append("a body where the recording has none")
            return
        try:
            live_body = answer.json()
        except ValueError:
            outcome.problems.append("a body that is not JSON where the recording has JSON")
            return
        if recorded_body == OMITTED_BODY:
            recorded_body = json.loads(openapi_spec_path().read_text(encoding="utf-8"))
            outcome.problems += [problem for problem in shape_differences(
                {key: None for key in recorded_body}, {key: None for key in live_body}) if problem]
            if len(live_body.get("paths", {})) != len(recorded_body["paths"]):
                outcome.problems.append("the served OpenAPI document has a different number of paths")
            return
        outcome.problems += shape_differences(recorded_body, live_body)
        self._learn(recorded_body, live_body)
        if answer.status_code == 200 and "access_token" in live_body:
            credentials = self._basic_parts(headers)
            form = step.get("request_form") or {}
            if credentials is None and "client_id" in form:
                credentials = (self._live_value(form["client_id"]), self._live_value(form.get("client_secret", "")))
            if credentials:
                self.client_secrets[credentials[0]] = credentials[1]

    def _note(self, step: dict[str, Any], outcome: StepOutcome) -> None:
        if "deliveries" in step:
            self._check_deliveries(step["deliveries"], outcome)
        elif "sql_secret" in step:
            self._insert_legacy_app(step["sql_secret"])
        else:
            raise StepSkipped("note about the admin tenant's own database row, which the stand-in does not emulate")

    def _insert_legacy_app(self, sql_secret: str) -> None:
        """The note "inserted by SQL with a plain secret": the stand-in's equivalent of that SQL."""
        recorded_id = None
        for flow in self.flows:
            for step in flow["steps"]:
                credentials = self._basic_parts(step.get("request_headers") or {})
                if credentials and credentials[1] == sql_secret:
                    recorded_id = credentials[0]
        if recorded_id is None:
            raise StepSkipped("no later step uses the inserted application")
        live_id, live_secret = self.logto.state.insert_legacy_app(name="Legacy secret demo (stand-in)")
        self.values[recorded_id] = live_id
        self.values[sql_secret] = live_secret

    def _check_deliveries(self, recorded: list[dict[str, Any]], outcome: StepOutcome) -> None:
        received = self.receiver.deliveries[self.delivery_cursor:]
        self.delivery_cursor += len(received)
        if len(received) != len(recorded):
            outcome.problems.append(f"{len(received)} deliveries where the recording has {len(recorded)}")
            return
        for number, (expected, got) in enumerate(zip(recorded, received)):
            where = f"delivery {number}"
            recorded_names = {name for name, _ in expected["headers"]}
            live_names = {name for name, _ in got.headers}
            if recorded_names != live_names:
                outcome.problems.append(f"{where}: headers {sorted(live_names ^ recorded_names)} differ")
            if got.method != expected["method"] or got.path != expected["path"]:
                outcome.problems.append(f"{where}: sent as {got.method} {got.path}")
            payload = json.loads(got.raw_body)
            outcome.problems += shape_differences(json.loads(expected["raw_body"]), payload, where)
            if encode_payload(payload) != got.raw_body:
                outcome.problems.append(f"{where}: raw body is not the compact JSON of its content")
            hook = self.logto.state.hooks.get(payload.get("hookId"))
            signature = got.header(SIGNATURE_HEADER) or ""
            if hook is None or not hmac.compare_digest(signature, sign(hook["signingKey"], got.raw_body)):
                outcome.problems.append(f"{where}: signature does not verify with the hook's signing key")


def load_flows() -> list[dict[str, Any]]:
    """The recorded flows, in file order, each with its ``name`` (the file stem)."""
    flows = []
    for path in FLOW_FILES:
        flow = json.loads(path.read_text(encoding="utf-8"))
        flow["name"] = path.stem
        flows.append(flow)
    return flows


def replay(logto: LogtoStandIn, flows: list[dict[str, Any]], rebase_times: bool = True) -> list[StepOutcome]:
    """Replay ``flows`` against ``logto`` with a fresh local webhook receiver."""
    with WebhookReceiver() as receiver:
        return ContractReplay(logto, receiver, flows, rebase_times=rebase_times).run()


@pytest.fixture(scope="module")
def outcomes() -> Iterator[list[StepOutcome]]:
    """All recorded flows replayed once against one stand-in."""
    require_or_skip(bool(FLOW_FILES), f"no recorded Logto flows in {CONTRACT_DIR} (set LOGTO_CONTRACT_DIR)")
    with LogtoStandIn() as logto:
        yield replay(logto, load_flows())


# --------------------------------------------------------------------------------------------------
# tests


@pytest.mark.parametrize("flow", FLOW_NAMES or ["<no recorded flows>"])
def test_recorded_flow_replays_with_the_same_statuses_and_shapes(outcomes: list[StepOutcome], flow: str) -> None:
    failures = [f"{outcome.name}: {problem}" for outcome in outcomes if outcome.flow == flow
                for problem in outcome.problems]
    assert failures == []


def test_required_flows_replay_every_step(outcomes: list[StepOutcome]) -> None:
    missing_flows = [name for name in FULLY_REQUIRED_FLOWS if name not in FLOW_NAMES]
    skipped = [outcome.name for outcome in outcomes
               if outcome.flow in FULLY_REQUIRED_FLOWS and not outcome.replayed]
    assert missing_flows == [] and skipped == []


def test_recorded_successful_requests_conform_to_the_openapi_document(outcomes: list[StepOutcome]) -> None:
    violating = [(outcome.name, outcome.openapi_violations) for outcome in outcomes
                 if outcome.recorded_status is not None and 200 <= outcome.recorded_status < 300
                 and outcome.openapi_violations]
    assert violating == []


def test_contract_summary_is_printed(outcomes: list[StepOutcome], capsys: pytest.CaptureFixture[str]) -> None:
    replayed = sum(1 for outcome in outcomes if outcome.replayed)
    lines = [f"contract: replayed {replayed} of {len(outcomes)} recorded steps"]
    lines += [f"  skipped {outcome.name}: {outcome.skip_reason}" for outcome in outcomes if not outcome.replayed]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    # the only steps without a stand-in equivalent are the admin tenant's (09: its own endpoint and row)
    skip_reasons = [outcome.skip_reason or "" for outcome in outcomes if not outcome.replayed]
    assert replayed > 0 and all("admin" in reason for reason in skip_reasons)


def test_shape_comparison_reports_a_missing_key() -> None:
    assert shape_differences({"id": "a", "name": "b"}, {"id": "c"}) == ["$: key 'name' missing"]


def test_shape_comparison_reports_a_changed_type() -> None:
    assert shape_differences({"expiresAt": None}, {"expiresAt": 5}) == [
        "$.expiresAt: number where the recording has null"]


def test_shape_comparison_reports_a_different_list_element_shape() -> None:
    recorded = [{"name": "Default secret", "value": "x"}]
    assert shape_differences(recorded, [{"name": "Default secret", "value": "y", "extra": 1}]) == [
        "$[0]: unexpected key 'extra'"]


def test_shape_comparison_ignores_values_of_the_same_type() -> None:
    assert shape_differences({"id": "a", "n": [1, {"k": True}]}, {"id": "b", "n": [2.5, {"k": False}]}) == []


def test_replay_detects_a_stand_in_that_drifted_from_the_recording() -> None:
    require_or_skip(bool(FLOW_FILES), f"no recorded Logto flows in {CONTRACT_DIR} (set LOGTO_CONTRACT_DIR)")
    token_flow = [flow for flow in load_flows() if flow["name"] == "00-m2m-token"]
    with LogtoStandIn() as logto:
        # a stand-in whose health check answered 200 instead of 204 must not pass the contract
        logto.faults.add(method="GET", path_prefix="/api/status", kind="status", status=200, times=None)
        drifted = replay(logto, token_flow)
    problems = [problem for outcome in drifted for problem in outcome.problems]
    assert "status 200 where the recording has 204" in problems


YEAR_MS = 365 * 86_400_000


def _secret_flows() -> list[dict[str, Any]]:
    """The flows up to the one that creates secrets with expiry dates (03 needs 00's token and 02's app)."""
    return [flow for flow in load_flows()
            if flow["name"] in ("00-m2m-token", "02-applications", "03-application-secrets")]


@pytest.mark.parametrize("years", [-3, 0, 3, 30])
def test_replay_rebases_recorded_expiry_dates_on_the_stand_ins_clock(years: int) -> None:
    require_or_skip(bool(FLOW_FILES), f"no recorded Logto flows in {CONTRACT_DIR} (set LOGTO_CONTRACT_DIR)")
    flows = _secret_flows()
    recorded_at = dt.datetime.fromisoformat(flows[-1]["recorded_at"].replace("Z", "+00:00"))
    with LogtoStandIn() as logto:
        # the stand-in's clock runs at the recording's time moved by ``years``, whatever today is
        offset_ms = int(recorded_at.timestamp() * 1000) + years * YEAR_MS - logto.state.clock_ms()
        real_clock = logto.state.clock_ms
        logto.state.clock_ms = lambda: real_clock() + offset_ms
        outcomes = replay(logto, flows)
    problems = [f"{outcome.name}: {problem}" for outcome in outcomes for problem in outcome.problems]
    assert problems == []


def test_replay_without_rebasing_fails_once_the_recorded_expiry_date_has_passed() -> None:
    require_or_skip(bool(FLOW_FILES), f"no recorded Logto flows in {CONTRACT_DIR} (set LOGTO_CONTRACT_DIR)")
    flows = _secret_flows()
    recorded_at = dt.datetime.fromisoformat(flows[-1]["recorded_at"].replace("Z", "+00:00"))
    with LogtoStandIn() as logto:
        offset_ms = int(recorded_at.timestamp() * 1000) + 2 * YEAR_MS - logto.state.clock_ms()
        real_clock = logto.state.clock_ms
        logto.state.clock_ms = lambda: real_clock() + offset_ms
        outcomes = replay(logto, flows, rebase_times=False)
    problems = [problem for outcome in outcomes for problem in outcome.problems]
    assert "status 400 (request.invalid_input) where the recording has 201" in problems
