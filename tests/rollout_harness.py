"""A deployment that lives through rotations: engine-like runs with replacements, running LobeChats,
and probes that use what those LobeChats hold at every moment.

- :class:`RolloutMocks` extends the engine-like mocks of ``test_program_against_standin`` with what a
  rotation needs from the engine: a replacement creates the new resource first and deletes the old
  one at the end of the run, dependents first (create-before-delete, Pulumi's default); with
  ``delete_before_replace`` it deletes first. A run that fails leaves its replaced resources pending
  deletion, and the next run deletes those *first*, as the engine's ``GeneratePendingDeletes`` does.
  ``preview=True`` runs ``check`` and ``diff`` only.
- The LobeChat container is a :class:`LobeChatReplica` of a :class:`Fleet`: a replica starts
  (healthy) when the container is created or replaced, and the replaced one stops at the end of the
  run: the zero-downtime rollout of the front-door issue. Each replica is a small HTTP server that
  verifies Logto's webhook signature with *its* ``LOGTO_WEBHOOK_SIGNING_KEY`` (400 otherwise, as
  LobeChat does) and answers on its network aliases; :meth:`Fleet.resolve` is Docker's DNS for the
  Logto stand-in's deliveries (an alias no running replica has does not resolve).
- :class:`Probes` authenticates at the stand-in's token endpoint with each running replica's
  ``AUTH_LOGTO_ID`` / ``AUTH_LOGTO_SECRET`` and updates a user through the Management API (each update
  is a ``User.Data.Updated`` event), from a background thread and synchronously after every engine
  step, so every state the deployment passes through is probed.

Secrets are compared, never printed.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pulumi
import requests

from tests.logto_standin import LogtoStandIn
from tests.logto_standin.client import StandInClient
from tests.logto_standin.webhooks import SIGNATURE_HEADER
from tests import pulumi_mocks
from tests.pulumi_mocks import CONTAINER, ProgramRun
from tests.test_program_against_standin import (
    PROVIDER_KEY,
    CheckFailed,
    EngineLikeMocks,
    StoredResource,
    _load_provider,
    _over_the_wire,
    _plain,
    dev_config,
    run_against,
)
from components import clock as clock_module
from components.logto_api import clear_token_cache
from components.logto_resources import clear_listing_cache

LOBECHAT = "lobechat"
WEBHOOK_PATH = "/api/webhooks/logto"
DAY = 86400.0
T0 = 1_900_000_000.0
"""2030-03-17T17:46:40Z: the test clock's start, far from any day the suite runs on."""


class TestClock:
    """A clock that moves only when told; installed for the rotation decisions and the stand-in."""

    __test__ = False

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, days: float) -> None:
        self.now += days * DAY

    def ms(self) -> int:
        return int(self.now * 1000)


# --- running LobeChats -------------------------------------------------------------------------------


@dataclass
class Delivery:
    """One webhook delivery a replica got: which user update it carried and whether it verified."""

    replica: str
    event: str
    marker: str | None
    accepted: bool


class _ReplicaHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ReplicaServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet."""

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        replica = self.server.replica
        expected = hmac.new(replica.signing_key.encode(), raw, hashlib.sha256).hexdigest()
        ok = self.path == WEBHOOK_PATH and hmac.compare_digest(expected, self.headers.get(SIGNATURE_HEADER) or "")
        try:
            payload = json.loads(raw)
        except ValueError:
            payload, ok = {}, False
        data = payload.get("data") if isinstance(payload, dict) else None
        marker = data.get("name") if isinstance(data, dict) else None
        replica.record(Delivery(replica.container_id, str(payload.get("event")), marker, ok))
        body = b'{"success":true}' if ok else b'{"error":"signature verification failed"}'
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ReplicaServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, replica: LobeChatReplica) -> None:
        self.replica = replica
        super().__init__(("127.0.0.1", 0), _ReplicaHandler)


class LobeChatReplica:
    """One running LobeChat container: its environment, aliases and webhook endpoint on 127.0.0.1."""

    def __init__(self, container_id: str, env: Mapping[str, str], aliases: list[str], fleet: Fleet) -> None:
        self.container_id = container_id
        self.env = dict(env)
        self.aliases = list(aliases)
        self.signing_key = self.env.get("LOGTO_WEBHOOK_SIGNING_KEY", "")
        self._fleet = fleet
        self._server = _ReplicaServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"lobechat-{container_id}", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def record(self, delivery: Delivery) -> None:
        self._fleet.record(delivery)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class Fleet:
    """The LobeChat containers running on the stage, as Docker and Caddy see them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, LobeChatReplica] = {}
        self._ids = itertools.count(1)
        self.deliveries: list[Delivery] = []
        self.history: list[tuple[str, str]] = []  # ("start"|"stop", container id)
        self.fail_next_start = False

    def start(self, env: Mapping[str, str], aliases: list[str]) -> LobeChatReplica:
        """A new container, healthy (``wait=True``), or an error when told to fail."""
        if self.fail_next_start:
            self.fail_next_start = False
            raise RuntimeError("container lobechat: the health check never passed (wait timeout 300 s)")
        replica = LobeChatReplica(f"lobechat-c{next(self._ids)}", env, aliases, self)
        with self._lock:
            self._running[replica.container_id] = replica
            self.history.append(("start", replica.container_id))
        return replica

    def stop(self, container_id: str) -> None:
        with self._lock:
            replica = self._running.pop(container_id, None)
            self.history.append(("stop", container_id))
        if replica is not None:
            replica.stop()

    def lose(self, container_id: str) -> None:
        """The container disappears behind Pulumi's back (host reboot, ``docker rm``)."""
        self.stop(container_id)

    def running(self) -> list[LobeChatReplica]:
        with self._lock:
            return list(self._running.values())

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def resolve(self, url: str) -> str | None:
        """Docker's DNS for Logto's deliveries: an alias of a running replica (round robin), else None."""
        parts = urlsplit(url)
        with self._lock:
            holders = [r for r in self._running.values() if parts.hostname in r.aliases]
        if not holders:
            return None
        replica = random.choice(holders)
        return f"http://127.0.0.1:{replica.port}{parts.path}"

    def stop_all(self) -> None:
        for replica in self.running():
            self.stop(replica.container_id)


# --- probes ------------------------------------------------------------------------------------------


@dataclass
class ProbeCounts:
    """What the probes saw; ``failed_auth`` counts ``invalid_client`` (or any non-400) answers."""

    auth_attempts: int = 0
    failed_auth: int = 0
    m2m_attempts: int = 0
    m2m_failed: int = 0
    m2m_refusals: list[str] = field(default_factory=list)
    """The moment (last engine step) of each refused call, for the failure message."""
    """Management API calls with each M2M credential the deployment holds, and how many were refused."""
    events_emitted: list[str] = field(default_factory=list)


_USERS = itertools.count(1)


class Probes:
    """Authenticate as every running LobeChat and emit user updates, continuously and at every step."""

    def __init__(self, standin: LogtoStandIn, fleet: Fleet, *, max_seconds: float = 120.0,
                 m2m: Callable[[], set[tuple[str, str]]] | None = None) -> None:
        self.standin = standin
        self.fleet = fleet
        self._m2m = m2m
        self.moment = "before the run"
        self.counts = ProbeCounts()
        self._lock = threading.Lock()
        self._probe_lock = threading.Lock()
        self._stop = threading.Event()
        self._session = requests.Session()
        self._admin = StandInClient(standin.endpoint, standin.m2m_client_id, standin.m2m_client_secret)
        self._user_id = self._admin.post("/api/users", json={"username": f"rotation_probe_{next(_USERS)}"}).json()["id"]
        self._counter = itertools.count(1)
        self._max_seconds = max_seconds
        self._thread = threading.Thread(target=self._loop, name="rotation-probes", daemon=True)

    def __enter__(self) -> Probes:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        deadline = time.monotonic() + self._max_seconds  # bounded: stops by itself
        while not self._stop.is_set() and time.monotonic() < deadline:
            self.probe()
            self._stop.wait(0.005)

    def probe(self) -> None:
        """One authentication per running replica, and one user update (one event)."""
        with self._probe_lock:  # the background thread and the engine steps take turns
            for replica in self.fleet.running():
                self._authenticate(replica)
            if self._m2m is not None:
                for client_id, secret in sorted(self._m2m()):
                    self._manage(client_id, secret)
            self._emit()

    def _manage(self, client_id: str, secret: str) -> None:
        # A Management API call as a provider makes it: a client_credentials token, then a request.
        token = self._session.post(
            f"{self.standin.endpoint}/oidc/token?probe=m2m", timeout=10, auth=(client_id, secret),
            data={"grant_type": "client_credentials", "resource": self.standin.state.management_resource,
                  "scope": "all"},
        )
        ok = token.status_code == 200
        if ok:
            answer = self._session.get(f"{self.standin.endpoint}/api/users/{self._user_id}", timeout=10,
                                       headers={"Authorization": f"Bearer {token.json()['access_token']}"})
            ok = answer.status_code == 200
        if not ok and (client_id, secret) not in self._m2m():
            # Retired while this call was on its way (its holder's delete was sent after the snapshot):
            # nothing holds it any more, so its refusal is the retirement, not a failure.
            return
        with self._lock:
            self.counts.m2m_attempts += 1
            if not ok:
                self.counts.m2m_failed += 1
                self.counts.m2m_refusals.append(self.moment)

    def _authenticate(self, replica: LobeChatReplica) -> None:
        # A refresh_token grant with a bogus token: 400 invalid_grant once the client authenticated,
        # 401 invalid_client when the secret is wrong, deleted or expired. Nothing is issued either way.
        answer = self._session.post(
            f"{self.standin.endpoint}/oidc/token", timeout=10,
            data={"grant_type": "refresh_token", "refresh_token": "bogus",
                  "client_id": replica.env.get("AUTH_LOGTO_ID", ""),
                  "client_secret": replica.env.get("AUTH_LOGTO_SECRET", "")},
        )
        with self._lock:
            self.counts.auth_attempts += 1
            if answer.status_code != 400:
                self.counts.failed_auth += 1

    def _emit(self) -> None:
        marker = f"probe-{next(self._counter)}"
        with self._lock:
            self.counts.events_emitted.append(marker)
        answer = self._admin.patch(f"/api/users/{self._user_id}", json={"name": marker})
        assert answer.status_code == 200, f"user update answered {answer.status_code}"

    def lost_events(self) -> list[str]:
        accepted = {d.marker for d in self.fleet.deliveries if d.accepted}
        return [m for m in self.counts.events_emitted if m not in accepted]

    def duplicates(self) -> int:
        seen: dict[str, int] = {}
        for d in self.fleet.deliveries:
            if d.accepted and d.marker:
                seen[d.marker] = seen.get(d.marker, 0) + 1
        return sum(n - 1 for n in seen.values() if n > 1)


# --- the engine ---------------------------------------------------------------------------------------


PendingDelete = tuple[str, Callable[["RolloutMocks"], None]]
"""A delete the engine still owes: its label and what performs it (given the run that performs it)."""


class _StoredDelete:
    """The end-of-run delete of a replaced dynamic resource; ``stored`` is what its state still holds."""

    def __init__(self, key: tuple[str, str], stored: StoredResource) -> None:
        self.key, self.stored, self.done = key, stored, False

    def __call__(self, mocks: RolloutMocks) -> None:
        # From the moment the engine sends the delete, the delete is the last use of what the state
        # holds (a credential's delete retires its own secret): no longer held, unless it fails.
        self.done = True
        try:
            mocks._delete_stored(self.key, self.stored)
        except BaseException:
            self.done = False
            raise


def _m2m_credential(outputs: Mapping[str, Any], client_id: str) -> tuple[str, str] | None:
    secret = outputs.get("logto_client_secret")
    if outputs.get("logto_client_id") == client_id and isinstance(secret, str) and secret:
        return client_id, secret
    return None


@dataclass
class KeptContainer:
    id: str
    env: dict[str, str]
    aliases: list[str]


class RolloutMocks(EngineLikeMocks):
    """Engine-like runs with replacements and the LobeChat container as a running replica."""

    def __init__(
        self,
        standin: LogtoStandIn,
        fleet: Fleet,
        *,
        prior_state: Mapping[tuple[str, str], StoredResource] | None = None,
        prior_container: KeptContainer | None = None,
        pending_deletes: list[PendingDelete] | None = None,
        on_step: Callable[[str], None] = lambda label: None,
        preview: bool = False,
    ) -> None:
        super().__init__(standin, prior_state=prior_state)
        self.fleet = fleet
        self.prior_container = prior_container
        self.container: KeptContainer | None = prior_container
        self.steps: list[str] = []
        self._on_step = on_step
        self.preview = preview
        self.replacements: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.deleted_keys: set[tuple[str, str]] = set()
        self.in_flight: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.pending_in: list[PendingDelete] = list(pending_deletes or [])
        # Deletes to run at the end, in registration order (run reversed: dependents first).
        self._end_deletes: list[PendingDelete] = []
        self.pending_after_failure: list[PendingDelete] = []
        # The engine deletes what a failed run left pending before anything else, dependents first.
        todo = list(pending_deletes or [])
        for index, (_label, delete) in enumerate(todo):
            try:
                delete(self)
            except BaseException:
                self.pending_after_failure = todo[index:]
                raise

    def on_step(self, label: str) -> None:
        """After every step that changes what runs or what Logto holds: the probes run once."""
        self.steps.append(label)
        self._on_step(label)

    def _delete_stored(self, key: tuple[str, str], stored: StoredResource) -> None:
        self.deleted_keys.add(key)  # (see _StoredDelete: no longer held once its delete is sent)
        try:
            _load_provider(stored.outputs[PROVIDER_KEY]).delete(stored.id, dict(stored.outputs))
        except BaseException:
            self.deleted_keys.discard(key)
            raise
        self.deleted.append(key[1])
        self.on_step(f"delete {key[1]}")

    def held_m2m_credentials(self, client_id: str) -> set[tuple[str, str]]:
        """Every M2M credential some resource's state holds right now: this run's resources, the prior
        state's not yet deleted or replaced (a replaced one until its end-of-run delete), and the
        replaced ones still pending deletion (from this run or a failed earlier one)."""
        rows = [stored.outputs for stored in self.state.values()]
        # Not reached yet in this run (an updated one holds its new outputs in self.state; a replaced
        # one's old state is in its end-of-run delete).
        rows += [stored.outputs for key, stored in self.prior_state.items()
                 if key not in self.state and key not in self.deleted_keys and key not in self.in_flight]
        rows += list(self.in_flight.values())
        for _label, delete in [*self.pending_in, *self._end_deletes]:
            if isinstance(delete, _StoredDelete) and not delete.done:
                rows.append(delete.stored.outputs)
        return {c for c in (_m2m_credential(row, client_id) for row in rows) if c is not None}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == CONTAINER and args.name == LOBECHAT:
            return self._run_lobechat(args)
        if self.preview and args.typ == CONTAINER:
            # A preview runs no container (the bootstrap's psql included): plausible outputs only.
            resource_id, outs = pulumi_mocks.RecordingMocks.new_resource(self, args)
            outs.setdefault("exitCode", 0)
            return resource_id, outs
        return super().new_resource(args)

    def _run_lobechat(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        _, outs = super().new_resource(args)
        env = dict(item.split("=", 1) for item in _plain(args.inputs.get("envs")) or [])
        aliases = list(_plain(args.inputs.get("networksAdvanced"))[0].get("aliases") or [])
        prior = self.prior_container
        if prior is not None and prior.env == env and prior.aliases == aliases:
            self.container = prior
            return prior.id, outs
        if self.preview:
            return (prior.id if prior else "unknown"), outs
        replica = self.fleet.start(env, aliases)
        self.replacements.append((CONTAINER, LOBECHAT))
        self.on_step("lobechat started")
        if prior is not None:
            self._end_deletes.append((LOBECHAT, lambda mocks, cid=prior.id: mocks._stop(cid)))
        self.container = KeptContainer(replica.container_id, env, aliases)
        return replica.container_id, outs

    def _stop(self, container_id: str) -> None:
        self.fleet.stop(container_id)
        self.on_step(f"stop {container_id}")

    def _run_dynamic(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        from pulumi.runtime import rpc

        key = (args.typ, args.name)
        secret_inputs = {k for k, value in args.inputs.items() if rpc.is_rpc_secret(value)}
        news = _plain(args.inputs)
        provider = _load_provider(news[PROVIDER_KEY])
        prior = self.prior_state.get(key)
        checked = provider.check(dict(prior.inputs) if prior else {}, news)
        if checked.failures:
            raise CheckFailed(
                f"{args.typ} {args.name}: check failed on " + ", ".join(f.property for f in checked.failures)
            )
        inputs = _over_the_wire({**checked.inputs, PROVIDER_KEY: news[PROVIDER_KEY]})
        step: str | None = None
        # From the moment the engine hands the new inputs to create/update, those are what the
        # resource's provider calls use (its stored old outputs only serve read/delete).
        self.in_flight[key] = inputs
        if prior is None:
            if self.preview:
                raw_outs, resource_id = dict(inputs), "preview"
            else:
                result = provider.create(inputs)
                self.dynamic_creates.append(key)
                resource_id, raw_outs = result.id, result.outs
                step = f"create {args.name}"
        else:
            diff = provider.diff(prior.id, dict(prior.outputs), inputs)
            changed = diff.changes if diff.changes is not None else dict(prior.inputs) != inputs
            self.diffs[key] = sorted(diff.replaces or [])
            if self.preview:
                # A provider without preview support: the engine shows the new inputs as the outputs.
                raw_outs = {**prior.outputs, **inputs} if changed else dict(prior.outputs)
                resource_id = prior.id
                if changed:
                    self.updates.append(key)
            elif diff.replaces:
                self.replacements.append(key)
                if diff.delete_before_replace:
                    self._delete_stored(key, prior)
                result = provider.create(inputs)
                if not diff.delete_before_replace:
                    # Only a replacement that was created marks the old resource pending deletion.
                    self._end_deletes.append((args.name, _StoredDelete(key, prior)))
                self.dynamic_creates.append(key)
                resource_id, raw_outs = result.id, result.outs
                step = f"replace {args.name}"
            elif changed:
                self.updates.append(key)
                raw_outs = provider.update(prior.id, dict(prior.outputs), inputs).outs
                resource_id = prior.id
                step = f"update {args.name}"
            else:
                raw_outs = {k: v for k, v in prior.outputs.items() if k != PROVIDER_KEY}
                resource_id = prior.id
        outs = _over_the_wire({**(raw_outs or {}), PROVIDER_KEY: news[PROVIDER_KEY]})
        self.state[key] = StoredResource(resource_id, inputs, outs)
        self.in_flight.pop(key, None)
        if step is not None:
            # After the engine recorded the step's outputs in the state (its checkpoint).
            self.on_step(step)
        secret = secret_inputs | set(self.additional_secret_outputs.get(key, []))
        return resource_id, {k: rpc.wrap_rpc_secret(v) if k in secret else v for k, v in outs.items()}

    def finish(self) -> None:
        """The end of a run: replaced resources are deleted, dependents first; a failed delete leaves
        it and the ones after it pending for the next run."""
        todo = list(reversed(self._end_deletes))
        self._end_deletes.clear()
        for index, (_label, delete) in enumerate(todo):
            try:
                delete(self)
            except BaseException:
                self.pending_after_failure = todo[index:]
                raise

    def abandon(self) -> None:
        """The run failed: what it replaced stays pending deletion for the next run."""
        self.pending_after_failure = list(reversed(self._end_deletes))
        self._end_deletes.clear()


class Stage:
    """One stage's life: its state, its running LobeChats, its stand-in, one run after another."""

    def __init__(self, standin: LogtoStandIn, clock: TestClock, rotation: Mapping[str, Any]) -> None:
        self.standin = standin
        self.clock = clock
        self.rotation = dict(rotation)
        self.fleet = Fleet()
        self.state: dict[tuple[str, str], StoredResource] = {}
        self.container: KeptContainer | None = None
        self.pending: list[PendingDelete] = []
        self.on_step: Callable[[str], None] = lambda label: None
        self.last: RolloutMocks | None = None
        self.active: RolloutMocks | None = None
        self.fail_bootstrap_once = False
        standin.state.clock_ms = clock.ms
        standin.state.resolve_url = self.fleet.resolve

    def config(self, **overrides: Any) -> dict[str, Any]:
        return dev_config(self.standin, rotation=self.rotation, **overrides)

    def up(self, *, preview: bool = False, **overrides: Any) -> tuple[ProgramRun, RolloutMocks]:
        """One ``pulumi up`` (or preview) on the kept state; on failure the state keeps what succeeded."""
        mocks = RolloutMocks(
            self.standin, self.fleet, prior_state=self.state, prior_container=self.container,
            pending_deletes=[] if preview else self.pending, on_step=self.on_step, preview=preview,
        )
        self.last = mocks
        if self.fail_bootstrap_once and not preview:
            self.fail_bootstrap_once = False
            mocks.bootstrap_exit_code = 3  # psql: a statement of the script failed
        if not preview:
            self.pending = []
            self.active = mocks
        with clock_module.use_clock(self.clock):
            try:
                run = run_against(self.standin, self.config(**overrides), mocks)
            except BaseException:
                if not preview:
                    # What succeeded is in the state; what the run replaced stays pending deletion.
                    mocks.abandon()
                    self.state = {**self.state, **mocks.state}
                    self.container = mocks.container
                    self.pending = mocks.pending_after_failure
                    self.active = None
                raise
            if not preview:
                self.state = dict(mocks.state)
                self.container = mocks.container
                try:
                    mocks.finish()
                except BaseException:
                    self.pending = mocks.pending_after_failure
                    raise
                finally:
                    self.active = None
            self.active = None
        return run, mocks

    def held_m2m_credentials(self, client_id: str) -> set[tuple[str, str]]:
        """The M2M credentials the deployment holds now: during a run, what that run's engine holds;
        between runs, the state's and the pending deletes'."""
        active = self.active
        if active is not None:
            return active.held_m2m_credentials(client_id)
        rows = [stored.outputs for stored in self.state.values()]
        rows += [d.stored.outputs for _label, d in self.pending if isinstance(d, _StoredDelete) and not d.done]
        return {c for c in (_m2m_credential(row, client_id) for row in rows) if c is not None}

    def refresh(self) -> None:
        from tests.test_program_against_standin import refreshed_state

        with clock_module.use_clock(self.clock):
            clear_token_cache()
            clear_listing_cache()
            self.state = refreshed_state(self.state)

    def close(self) -> None:
        self.fleet.stop_all()
        self.standin.state.resolve_url = None


@dataclass
class Requests:
    """Management API requests of one span (the probes' /oidc/token and /api/users left out)."""

    calls: list[tuple[str, str]]

    @classmethod
    def since(cls, standin: LogtoStandIn, start: int) -> Requests:
        rows = standin.requests_log[start:]
        return cls([(r.method, r.path.split("?", 1)[0]) for r in rows
                    if r.path.startswith("/api/") and not r.path.startswith("/api/users")])


def by_marker(deliveries: list[Delivery]) -> dict[str, list[Delivery]]:
    grouped: dict[str, list[Delivery]] = {}
    for d in deliveries:
        grouped.setdefault(d.marker or "", []).append(d)
    return grouped

