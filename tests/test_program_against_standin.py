"""The real dev program, end to end, against the Logto stand-in over real HTTP.

The program runs under Pulumi mocks (no engine here), but the mocks behave like the engine for
everything this project implements itself:

- every dynamic resource (``pulumi-python:dynamic/...``) is created the way the engine's dynamic
  provider host does it: the ``__provider`` input is decoded (base64 + dill) and configured, the
  inputs arrive plain (no secret markers), ``check(olds={}, news)`` runs, its inputs go through the
  wire format once, then ``create``; the outputs go back marked secret where the engine marks them
  (``additional_secret_outputs``, and outputs named like a secret input). So the generated secrets,
  the RSA JWKS, the Logto application and the webhook are really created, in the stand-in;
- the one-shot bootstrap container (the one uploading the application secret file) does in the
  stand-in what its SQL does in Logto's database: an M2M application with that id and secret,
  linked to the Management API role;
- every other Docker resource gets the plausible outputs of ``RecordingMocks``.

Given the state a previous run left (``prior_state``), a dynamic resource goes through
``check(olds, news)`` → ``diff`` → ``update`` instead, as in a later ``pulumi up``; `refreshed_state`
is ``pulumi refresh`` (every provider's ``read``).

Then the stand-in's state, the LobeChat container's recorded environment and the stack outputs
must agree. Secrets are compared, never printed.
"""

from __future__ import annotations

import asyncio
import atexit
import base64
import contextlib
import copy
import gc
import hmac
import json
from collections.abc import Iterator, Mapping
from secrets import token_hex as _token_hex
from dataclasses import dataclass
from typing import Any

import dill
import pulumi
import pytest
from pulumi.dynamic import Config as DynamicConfig
from pulumi.dynamic import ConfigureRequest
from pulumi.runtime import rpc
from pulumi.runtime._serialization import _deserialize
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from components.logto_api import LogtoAuthenticationError, clear_token_cache
from components.logto_bootstrap import SECRET_DIR_IN_CONTAINER, SECRET_ENV_VAR, LogtoBootstrapError
from components.logto_resources import clear_listing_cache
from components.platform import M2M_APP_ID
from tests import pulumi_mocks
from tests.logto_standin import LogtoStandIn
from tests.logto_standin.models import DEFAULT_SECRET_NAME, TENANT_ID
from tests.s3_server import MotoS3
from tests.pulumi_mocks import (
    CONTAINER,
    LOGTO_APPLICATION,
    LOGTO_WEBHOOK,
    PROJECT,
    ProgramRun,
    RecordingMocks,
    run_program,
    stack_config,
)

DYNAMIC_PREFIX = "pulumi-python:dynamic/"
PROVIDER_KEY = "__provider"
STACK = "dev"
LOBE = "http://lobe.localhost:3210"
MOVED_LOBE = "http://chat.localhost:3210"
ISSUER = "http://auth.localhost:3001/oidc"
MARKER = {"managedBy": "lobechat-logto", "project": PROJECT, "stack": STACK, "resource": "lobechat-application"}
HOOK_MARKER_HEADER = "x-managed-by"


# --- engine-like mocks ------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A value as the engine hands it to a provider that does not accept secrets: no markers, any depth."""
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _over_the_wire(props: Mapping[str, Any]) -> dict[str, Any]:
    """``props`` after one trip through the gRPC Struct the engine passes between Check and Create."""
    return rpc.deserialize_properties(_sync_await(rpc.serialize_properties(dict(props), {})))


def _load_provider(serialized: str) -> pulumi.dynamic.ResourceProvider:
    """Decode and configure a provider exactly as ``pulumi.dynamic.__main__.get_provider`` does."""
    provider = _deserialize(lambda: dill.loads(base64.b64decode(serialized)))
    provider.configure(ConfigureRequest(config=DynamicConfig(raw_config={}, project_name=PROJECT)))
    return provider


@dataclass(frozen=True)
class StoredResource:
    """What the engine keeps in the state for a dynamic resource: id, checked inputs, outputs."""

    id: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]


class CheckFailed(RuntimeError):
    """A dynamic provider's ``check`` reported failures (the engine would stop the update)."""


class EngineLikeMocks(RecordingMocks):
    """Runs the project's own providers for real and emulates the bootstrap SQL in the stand-in.

    ``bootstrap_exit_code`` is what the psql container reports; ``emulate_bootstrap=False`` reports
    success without creating the credential (to prove the Logto calls really depend on it).
    """

    def __init__(
        self,
        standin: LogtoStandIn,
        *,
        emulate_bootstrap: bool = True,
        bootstrap_exit_code: int = 0,
        prior_state: Mapping[tuple[str, str], StoredResource] | None = None,
    ) -> None:
        self.standin = standin
        # With a prior state, a dynamic resource found in it goes through check/diff/update instead.
        self.prior_state = dict(prior_state or {})
        self.state: dict[tuple[str, str], StoredResource] = {}
        self.diffs: dict[tuple[str, str], list[str]] = {}  # resource -> the properties it asked to replace
        self.updates: list[tuple[str, str]] = []
        self.emulate_bootstrap = emulate_bootstrap
        self.bootstrap_exit_code = bootstrap_exit_code
        # (type, name) -> the registration's additionalSecretOutputs, told by the monitor (registering).
        self.additional_secret_outputs: dict[tuple[str, str], list[str]] = {}
        self.dynamic_creates: list[tuple[str, str]] = []
        self.bootstrap_runs: list[str] = []


    def registering(self, typ: str, name: str, additional_secret_outputs: list[str]) -> None:
        key = (typ, name)
        assert key not in self.additional_secret_outputs, f"two registrations of {key}"
        self.additional_secret_outputs[key] = additional_secret_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ.startswith(DYNAMIC_PREFIX):
            return self._run_dynamic(args)
        if args.typ == CONTAINER and _bootstrap_secret(args.inputs) is not None:
            return self._run_bootstrap(args)
        return super().new_resource(args)

    def _run_dynamic(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
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
        if prior is None:
            result = provider.create(inputs)
            self.dynamic_creates.append(key)
            resource_id, raw_outs = result.id, result.outs
        else:
            diff = provider.diff(prior.id, dict(prior.outputs), inputs)
            # No answer from the provider: the engine falls back to comparing old and new inputs.
            changed = diff.changes if diff.changes is not None else dict(prior.inputs) != inputs
            self.diffs[key] = sorted(diff.replaces or [])
            if diff.replaces:
                raise AssertionError(f"{args.name}: the provider asks for a replacement of {self.diffs[key]}")
            if changed:
                self.updates.append(key)
                raw_outs = provider.update(prior.id, dict(prior.outputs), inputs).outs
            else:
                raw_outs = {k: v for k, v in prior.outputs.items() if k != PROVIDER_KEY}
            resource_id = prior.id
        outs = _over_the_wire({**(raw_outs or {}), PROVIDER_KEY: news[PROVIDER_KEY]})
        self.state[key] = StoredResource(resource_id, inputs, outs)
        # The engine marks the registration's additional secret outputs, and (for a provider that
        # does not accept secrets) every output whose same-named input was secret.
        secret = secret_inputs | set(self.additional_secret_outputs.get(key, []))
        return resource_id, {k: rpc.wrap_rpc_secret(v) if k in secret else v for k, v in outs.items()}

    def _run_bootstrap(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        app_id = _psql_variable(args.inputs, "app_id")
        if self.emulate_bootstrap and self.bootstrap_exit_code == 0:
            secret_name = _psql_variable(args.inputs, "secret_name", optional=True)
            if secret_name is None:
                register_bootstrap_app(
                    self.standin, app_id=app_id, secret=_bootstrap_secret(args.inputs) or "",
                    name=_psql_variable(args.inputs, "app_name"),
                )
            else:
                expires = _psql_variable(args.inputs, "expires_at")
                register_rotated_bootstrap_secret(
                    self.standin, app_id=app_id, secret=_bootstrap_secret(args.inputs) or "",
                    name=_psql_variable(args.inputs, "app_name"), secret_name=secret_name,
                    expires_at=int(expires) if expires else None,
                )
            self.bootstrap_runs.append(app_id)
        resource_id, outs = super().new_resource(args)
        outs["exitCode"] = self.bootstrap_exit_code
        outs["containerLogs"] = (
            f"logto bootstrap: application {app_id} has the role \"Logto Management API access\""
            if self.bootstrap_exit_code == 0
            else 'ERROR:  logto bootstrap: the role "Logto Management API access" does not exist'
        )
        return resource_id, outs


def _bootstrap_secret(inputs: Mapping[str, Any]) -> str | None:
    # The container gets the application secret as a file it deletes after reading (issue 8), or,
    # from older code, in its environment.
    for upload in _plain(inputs.get("uploads")) or []:
        if isinstance(upload, Mapping) and upload.get("file") == f"{SECRET_DIR_IN_CONTAINER}/app-secret":
            return str(upload.get("content"))
    for item in _plain(inputs.get("envs")) or []:
        name, _, value = str(item).partition("=")
        if name == SECRET_ENV_VAR:
            return value
    return None


def _psql_variable(inputs: Mapping[str, Any], name: str, *, optional: bool = False) -> str | None:
    command = _plain(inputs.get("command")) or []
    values = [command[i + 1].split("=", 1)[1] for i, arg in enumerate(command[:-1])
              if arg == "--set" and command[i + 1].startswith(f"{name}=")]
    count = len(values)
    if optional and count == 0:
        return None
    assert count == 1, f"the bootstrap command sets {name} {count} times"
    return values[0]


def register_bootstrap_app(standin: LogtoStandIn, *, app_id: str, secret: str, name: str) -> None:
    """What the bootstrap SQL does in Logto's database: insert the M2M application (or, when it is
    already there, write a changed secret) and link it to the Management API role."""
    state = standin.state
    with state.lock:
        existing = state.applications.get(app_id)
        if existing is None:
            state.insert_legacy_app(app_id=app_id, secret=secret, name=name, with_role=True)
            return
        if existing["type"] != "MachineToMachine" or existing["tenantId"] != TENANT_ID:
            # the script's own refusal (it leaves a foreign row alone and fails)
            raise AssertionError(f"application {app_id} exists and is not an M2M application of tenant default")
        existing["secret"] = secret
        state.management_role_app_ids.add(app_id)


def register_rotated_bootstrap_secret(standin: LogtoStandIn, *, app_id: str, secret: str, name: str,
                                      secret_name: str, expires_at: int | None) -> None:
    """What the bootstrap SQL of a rotated generation does: the application and its role link if missing
    (with an internal secret nobody knows), and the named secret row; the legacy column is left alone."""
    state = standin.state
    with state.lock:
        existing = state.applications.get(app_id)
        if existing is None:
            state.insert_legacy_app(app_id=app_id, secret="#internal:" + _token_hex(24), name=name, with_role=True)
        elif existing["type"] != "MachineToMachine" or existing["tenantId"] != TENANT_ID:
            raise AssertionError(f"application {app_id} exists and is not an M2M application of tenant default")
        expired = expires_at is not None and expires_at <= state.clock_ms()
        assert not expired, "the script refuses an expiry in the past"
        state.insert_named_secret(app_id, name=secret_name, value=secret, expires_at=expires_at)
        state.management_role_app_ids.add(app_id)


def refreshed_state(state: Mapping[tuple[str, str], StoredResource]) -> dict[tuple[str, str], StoredResource]:
    """``pulumi refresh``: every dynamic resource's ``read``, stored the way the engine stores it."""
    result: dict[tuple[str, str], StoredResource] = {}
    for key, stored in state.items():
        serialized = stored.outputs[PROVIDER_KEY]
        read = _load_provider(serialized).read(stored.id, dict(stored.outputs))
        assert read.id, f"{key[1]} reads as deleted"
        outputs = _over_the_wire({**(read.outs or {}), PROVIDER_KEY: serialized})
        inputs = _over_the_wire({**read.inputs, PROVIDER_KEY: serialized}) if read.inputs else stored.inputs
        result[key] = StoredResource(read.id, inputs, outputs)
    return result


def run_against(standin: LogtoStandIn, config: Mapping[str, Any], mocks: EngineLikeMocks) -> ProgramRun:
    """Run the dev program with ``config`` against ``standin``, as a fresh provider process would."""
    # The engine starts a new provider process per deployment: no token or listing survives from a
    # previous run.
    clear_token_cache()
    clear_listing_cache()
    return run_program(STACK, config, mocks=mocks)


@contextlib.contextmanager
def failing_run_quietly(expected: type[BaseException]) -> Iterator[None]:
    """A run that must fail: every Output downstream of the failure holds the same exception, and
    asyncio would report each one as "never retrieved" when it is collected. Those, and only those
    (done futures holding an ``expected`` exception), are marked as seen once the run is over."""
    try:
        yield
    finally:
        # The run stops at the first failure while other steps are still in flight on the loop:
        # let them settle here, not inside the next test's run.
        loop = _ensure_event_loop()
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=10))
        for obj in gc.get_objects():
            if (
                isinstance(obj, asyncio.Future)
                and obj.done()
                and not obj.cancelled()
                and isinstance(getattr(obj, "_exception", None), expected)
            ):
                obj.exception()


_S3: dict[str, str] = {}
"""The endpoint of this module's S3 server (moto), set by ``s3_for_the_program`` while it runs."""

_SHARED_S3: list[MotoS3] = []
"""The S3 server for callers outside this module (other test modules' stages, ``benchmarks/first_up.py``):
started on first use, stopped at exit or by its own watchdog, and started again when that fired (a
module using it may run long after the first use: a stale endpoint refused every S3 call)."""

SHARED_S3_LIFETIME = 3600.0
"""Seconds the shared server lives (several whole suites on a slow machine)."""


def _s3_endpoint() -> str:
    if "endpoint" in _S3:
        return _S3["endpoint"]
    if not _SHARED_S3 or not _SHARED_S3[0].alive:
        server = MotoS3(lifetime=SHARED_S3_LIFETIME).__enter__()
        atexit.register(server.__exit__, None, None, None)
        _SHARED_S3[:] = [server]
    return _SHARED_S3[0].endpoint


@pytest.fixture(scope="module", autouse=True)
def s3_for_the_program() -> Iterator[MotoS3]:
    """One real S3 protocol server (moto) for the module: the dev stage's bucket is created in it."""
    with MotoS3() as server:
        _S3["endpoint"] = server.endpoint
        yield server
        _S3.clear()


def dev_config(standin: LogtoStandIn, **overrides: Any) -> dict[str, Any]:
    """stacks/Pulumi.dev.yaml with the Management API calls sent to the stand-in and the S3 calls to moto."""
    config = stack_config(STACK)
    logto = dict(config["lobechat-logto:logto"])
    logto["apiEndpoint"] = standin.endpoint
    config["lobechat-logto:logto"] = logto
    storage = dict(config["lobechat-logto:storage"])
    storage["apiEndpoint"] = _s3_endpoint()
    config["lobechat-logto:storage"] = storage
    config.update({f"lobechat-logto:{key}": value for key, value in overrides.items()})
    return config


# --- what the tests read back ------------------------------------------------------------------------
#
# Assertions only ever name plain locals that hold no secret: pytest shows every sub-expression of a
# failed assert, so a secret (or a dict holding one) inside an assert would end up in the report.
# Secrets are compared by `same_secret` into a bool first.


def same_secret(actual: Any, expected: Any) -> bool:
    """True when both are the same non-empty string (constant-time; neither value is ever shown)."""
    if not isinstance(actual, str) or not isinstance(expected, str) or not expected:
        return False
    return hmac.compare_digest(actual.encode(), expected.encode())


def _redacted(row: Mapping[str, Any], *secret_keys: str) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in row.items() if k not in secret_keys}


@dataclass
class Deployment:
    """One program run and the stand-in it ran against; views of stand-in rows leave secrets out."""

    standin: LogtoStandIn
    run: ProgramRun
    mocks: EngineLikeMocks

    def _owned_app_rows(self) -> list[dict[str, Any]]:
        return [
            app for app in self.standin.state.applications.values()
            if app["type"] == "Traditional"
            and {k: (app.get("customData") or {}).get(k) for k in MARKER} == MARKER
        ]

    def owned_app_ids(self) -> list[str]:
        return [app["id"] for app in self._owned_app_rows()]

    def traditional_app_ids(self) -> list[str]:
        return [app["id"] for app in self.standin.state.applications.values() if app["type"] == "Traditional"]

    def app(self) -> dict[str, Any]:
        """The one application with this stack's marker, without its internal ``secret``."""
        rows = self._owned_app_rows()
        count = len(rows)
        assert count == 1, "expected exactly one application with this stack's marker"
        return _redacted(rows[0], "secret")

    def app_internal_secret(self) -> str:
        return self.standin.state.applications[self.app()["id"]]["secret"]

    def hook_ids(self) -> list[str]:
        return list(self.standin.state.hooks)

    def hook(self) -> dict[str, Any]:
        """The one hook in the stand-in, without its ``signingKey``."""
        hooks = list(self.standin.state.hooks.values())
        count = len(hooks)
        assert count == 1, "expected exactly one hook in the stand-in"
        return _redacted(hooks[0], "signingKey")

    def hook_signing_key(self) -> str:
        return self.standin.state.hooks[self.hook()["id"]]["signingKey"]

    def secret_names(self, app_id: str) -> list[str]:
        return [s["name"] for s in self.standin.state.secrets[app_id]]

    def default_secret(self) -> str:
        """The value of the owned application's "Default secret"."""
        values = [s["value"] for s in self.standin.state.secrets[self.app()["id"]] if s["name"] == DEFAULT_SECRET_NAME]
        count = len(values)
        assert count == 1, f"expected one secret named {DEFAULT_SECRET_NAME!r}"
        return values[0]

    def m2m_secret_in_standin(self) -> str:
        return self.standin.state.applications[M2M_APP_ID]["secret"]

    def m2m_secret_used_by_program(self) -> str:
        return self.run.one(LOGTO_APPLICATION, "lobechat-application").plain("logto_client_secret")

    def lobechat(self) -> pulumi_mocks.RecordedResource:
        return self.run.one(CONTAINER, "lobechat")

    def env(self, name: str) -> str:
        """One variable of the LobeChat container's recorded environment (may be a secret)."""
        return self.lobechat().env()[name]

    def refused_requests(self) -> list[tuple[str, str, int | None]]:
        return [tuple(r) for r in self.standin.requests_log if r.status in (401, 403)]


@pytest.fixture(scope="module")
def standin() -> Iterator[LogtoStandIn]:
    """One stand-in for the module's first-generation run; every request must fit the OpenAPI document."""
    with LogtoStandIn() as server:
        yield server
        violations = list(server.openapi_violations)
        assert violations == []
    clear_token_cache()


@pytest.fixture(scope="module")
def dev(standin: LogtoStandIn) -> Deployment:
    mocks = EngineLikeMocks(standin)
    return Deployment(standin, run_against(standin, dev_config(standin), mocks), mocks)


@dataclass
class Redeployment:
    """Two runs against one stand-in; ids and keys as the first run left them."""

    first: Deployment
    second: Deployment
    first_app_id: str
    first_hook_id: str
    first_default_secret: str
    first_signing_key: str


@pytest.fixture(scope="module")
def redeployed() -> Iterator[Redeployment]:
    """Two runs against one stand-in, the second with fresh mocks (a lost state: every create again)."""
    with LogtoStandIn() as server:
        first_mocks, second_mocks = EngineLikeMocks(server), EngineLikeMocks(server)
        first = Deployment(server, run_against(server, dev_config(server), first_mocks), first_mocks)
        before = (first.app()["id"], first.hook()["id"], first.default_secret(), first.hook_signing_key())
        second = Deployment(server, run_against(server, dev_config(server), second_mocks), second_mocks)
        yield Redeployment(first, second, *before)
        violations = list(server.openapi_violations)
        assert violations == []
    clear_token_cache()


@dataclass
class Lifecycle:
    """A first run, an unchanged run and a run with a new ``lobechatUrl``, each on the state before."""

    first: Deployment
    unchanged: Deployment
    moved: Deployment


@pytest.fixture(scope="module")
def lifecycle() -> Iterator[Lifecycle]:
    with LogtoStandIn() as server:
        runs: list[Deployment] = []
        prior: Mapping[tuple[str, str], StoredResource] | None = None
        for url in (LOBE, LOBE, MOVED_LOBE):
            mocks = EngineLikeMocks(server, prior_state=prior)
            runs.append(Deployment(server, run_against(server, dev_config(server, lobechatUrl=url), mocks), mocks))
            prior = mocks.state
        yield Lifecycle(*runs)
        violations = list(server.openapi_violations)
        assert violations == []
    clear_token_cache()


@pytest.fixture(scope="module", params=["1", "2"], ids=["gen1", "gen2"])
def after_refresh(request: pytest.FixtureRequest) -> Iterator[EngineLikeMocks]:
    """A run, a refresh, and an unchanged run on the refreshed state; yields the last run's mocks."""
    overrides = {"lobechatGeneration": request.param}
    if request.param == "2":
        overrides["lobechatImage"] = "lobehub/lobehub:2.2.10"
    with LogtoStandIn() as server:
        first = EngineLikeMocks(server)
        run_against(server, dev_config(server, **overrides), first)
        second = EngineLikeMocks(server, prior_state=refreshed_state(first.state))
        run_against(server, dev_config(server, **overrides), second)
        yield second
        violations = list(server.openapi_violations)
        assert violations == []
    clear_token_cache()


@pytest.fixture(scope="module")
def gen2() -> Iterator[Deployment]:
    """The dev program as LobeChat 2.x (the generation staging runs)."""
    with LogtoStandIn() as server:
        mocks = EngineLikeMocks(server)
        config = dev_config(server, lobechatGeneration="2", lobechatImage="lobehub/lobehub:2.2.10")
        yield Deployment(server, run_against(server, config, mocks), mocks)
        violations = list(server.openapi_violations)
        assert violations == []
    clear_token_cache()


# --- the harness itself ------------------------------------------------------------------------------


def test_every_dynamic_resource_was_created_by_its_real_provider(dev):
    created = sorted(name for _, name in dev.mocks.dynamic_creates)
    declared = sorted(r.name for r in dev.run.resources if r.type.startswith(DYNAMIC_PREFIX))
    assert declared == created
    assert {"lobechat-application", "lobechat-webhook", "logto-m2m-secret", "storage-bucket"} <= set(created)


def test_the_bucket_exists_in_s3_with_the_cors_rule_for_lobechat(dev, s3_for_the_program):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_for_the_program.endpoint, region_name="us-east-1",
                          aws_access_key_id="any", aws_secret_access_key="any")
    rules = client.get_bucket_cors(Bucket="lobechat")["CORSRules"]
    assert [r["AllowedOrigins"] for r in rules if r.get("ID") == "lobechat"] == [[LOBE]]
    bucket_name = dev.env("S3_BUCKET")
    assert bucket_name == "lobechat"


def test_bootstrap_registered_the_m2m_app_the_program_connects_with(dev):
    runs = dev.mocks.bootstrap_runs
    assert runs == [M2M_APP_ID]
    application = dev.run.one(LOGTO_APPLICATION, "lobechat-application")
    client_id = application.plain("logto_client_id")
    assert client_id == M2M_APP_ID
    assert application.is_secret("logto_client_secret")
    m2m_type = dev.standin.state.applications[M2M_APP_ID]["type"]
    has_role = M2M_APP_ID in dev.standin.state.management_role_app_ids
    assert m2m_type == "MachineToMachine" and has_role
    same = same_secret(dev.m2m_secret_used_by_program(), dev.m2m_secret_in_standin())
    assert same, "the program connected with another secret than the bootstrap stored"


# --- 1. what the stand-in holds ----------------------------------------------------------------------


def test_exactly_one_traditional_application_carries_the_stack_marker(dev):
    owned = dev.owned_app_ids()
    traditional = dev.traditional_app_ids()
    assert len(owned) == 1 and traditional == owned


def test_application_uris_derive_from_the_lobechat_url(dev):
    app = dev.app()
    redirect = app["oidcClientMetadata"]["redirectUris"]
    sign_out = app["oidcClientMetadata"]["postLogoutRedirectUris"]
    cors = app["customClientMetadata"]["corsAllowedOrigins"]
    assert redirect == [f"{LOBE}/api/auth/callback/logto"]
    assert sign_out == [f"{LOBE}/"]
    assert cors == [LOBE]


def test_one_hook_posts_user_data_updates_to_lobechat(dev):
    hook = dev.hook()
    assert hook["config"]["url"] == f"{LOBE}/api/webhooks/logto"
    assert hook["events"] == ["User.Data.Updated"]
    assert hook["enabled"] is True
    assert hook["config"]["headers"][HOOK_MARKER_HEADER] == f"lobechat-logto/{PROJECT}/{STACK}/lobechat-webhook"


# --- 2. LobeChat's environment ------------------------------------------------------------------------


def test_lobechat_client_id_is_the_application_id(dev):
    client_id = dev.env("AUTH_LOGTO_ID")
    app_id = dev.app()["id"]
    assert client_id == app_id


def test_lobechat_client_secret_is_the_applications_default_secret(dev):
    is_default = same_secret(dev.env("AUTH_LOGTO_SECRET"), dev.default_secret())
    is_internal = same_secret(dev.env("AUTH_LOGTO_SECRET"), dev.app_internal_secret())
    assert is_default, "AUTH_LOGTO_SECRET is not the application's Default secret"
    assert not is_internal, "AUTH_LOGTO_SECRET is the application's internal secret"


def test_lobechat_webhook_signing_key_is_the_hooks_key(dev):
    same = same_secret(dev.env("LOGTO_WEBHOOK_SIGNING_KEY"), dev.hook_signing_key())
    assert same, "LOGTO_WEBHOOK_SIGNING_KEY is not the hook's signing key"


def test_lobechat_issuer_is_the_public_logto_oidc_url(dev):
    issuer = dev.env("AUTH_LOGTO_ISSUER")
    assert issuer == ISSUER


def test_lobechat_environment_reaches_the_engine_as_a_secret(dev):
    assert dev.lobechat().is_secret("envs")


# --- 3. stack outputs ---------------------------------------------------------------------------------


def test_stack_client_id_and_issuer_outputs_match_the_standin(dev):
    client_id = dev.run.outputs["clientId"]
    issuer = dev.run.outputs["issuer"]
    app_id = dev.app()["id"]
    assert client_id == app_id and issuer == ISSUER


def test_stack_secret_outputs_match_the_standin(dev):
    client_secret = same_secret(dev.run.outputs["clientSecret"], dev.default_secret())
    signing_key = same_secret(dev.run.outputs["webhookSigningKey"], dev.hook_signing_key())
    assert client_secret, "clientSecret is not the application's Default secret"
    assert signing_key, "webhookSigningKey is not the hook's signing key"


def test_secret_stack_outputs_are_secret(dev):
    secret = set(dev.run.secret_outputs)
    assert {"clientSecret", "webhookSigningKey", "lobechatEnvironment"} <= secret
    assert "clientId" not in secret


def test_secret_outputs_are_requested_from_the_engine(dev):
    # Under the real engine, additional_secret_outputs is what keeps these secret in the state.
    wanted = {
        "lobechat-application": {"client_secret", "logto_client_secret"},
        "lobechat-webhook": {"signing_key", "logto_client_secret"},
        "logto-m2m-secret": {"value"},
        "lobechat-session-secret": {"value"},
        "lobechat-key-vaults-secret": {"value"},
        "postgres-password": {"value"},
    }
    requested = {
        name: set(keys) for (typ, name), keys in dev.mocks.additional_secret_outputs.items()
        if typ.startswith(DYNAMIC_PREFIX)
    }
    missing = {name: sorted(keys - requested.get(name, set())) for name, keys in wanted.items()}
    assert all(not keys for keys in missing.values()), missing


# --- 4. the Management API credential -----------------------------------------------------------------


def test_management_api_calls_used_a_token_and_were_never_refused(dev):
    seen = {(r.method, r.path.split("?", 1)[0], r.status) for r in dev.standin.requests_log}
    assert ("POST", "/oidc/token", 200) in seen
    assert ("POST", "/api/applications", 200) in seen
    assert ("POST", "/api/hooks", 201) in seen
    refused = dev.refused_requests()
    assert refused == []


def test_every_request_fits_the_recorded_openapi_document(dev):
    violations = list(dev.standin.openapi_violations)
    assert violations == []


def test_without_the_bootstrap_the_run_fails_with_an_authentication_error(logto):
    mocks = EngineLikeMocks(logto, emulate_bootstrap=False)
    with failing_run_quietly(LogtoAuthenticationError), pytest.raises(LogtoAuthenticationError) as failure:
        run_against(logto, dev_config(logto), mocks)
    message = str(failure.value)
    assert "401" in message and "invalid_client" in message
    token_statuses = [r.status for r in logto.requests_log if r.path.startswith("/oidc/token")]
    assert token_statuses and set(token_statuses) == {401}
    created_apps = sum(1 for a in logto.state.applications.values() if a["type"] == "Traditional")
    created_hooks = len(logto.state.hooks)
    assert created_apps == 0 and created_hooks == 0


def test_a_failed_bootstrap_stops_the_run_before_any_logto_call(logto):
    mocks = EngineLikeMocks(logto, bootstrap_exit_code=3)
    with failing_run_quietly(LogtoBootstrapError), pytest.raises(LogtoBootstrapError) as failure:
        run_against(logto, dev_config(logto), mocks)
    message = str(failure.value)
    assert "exited with code 3" in message
    calls = [r.path for r in logto.requests_log if r.path.startswith(("/oidc/token", "/api/"))]
    assert calls == []


# --- 5. a second run after a lost state ----------------------------------------------------------------


def test_second_run_calls_create_again(redeployed):
    creates = set(redeployed.second.mocks.dynamic_creates)
    assert {(LOGTO_APPLICATION, "lobechat-application"), (LOGTO_WEBHOOK, "lobechat-webhook")} <= creates


def test_second_run_creates_no_second_application(redeployed):
    owned = redeployed.second.owned_app_ids()
    assert owned == [redeployed.first_app_id]


def test_second_run_creates_no_second_hook(redeployed):
    hooks = redeployed.second.hook_ids()
    assert hooks == [redeployed.first_hook_id]


def test_second_run_wires_lobechat_to_the_same_objects(redeployed):
    second = redeployed.second
    client_id = second.env("AUTH_LOGTO_ID")
    assert client_id == redeployed.first_app_id
    same_client_secret = same_secret(second.env("AUTH_LOGTO_SECRET"), redeployed.first_default_secret)
    same_signing_key = same_secret(second.env("LOGTO_WEBHOOK_SIGNING_KEY"), redeployed.first_signing_key)
    assert same_client_secret, "the second run wired another client secret"
    assert same_signing_key, "the second run wired another signing key"
    names = second.secret_names(client_id)
    assert names == [DEFAULT_SECRET_NAME]


def test_second_run_rewrites_the_bootstrap_secret_and_authenticates_with_it(redeployed):
    # A lost state regenerates the M2M secret; the SQL's upsert stores it and the calls still work.
    second = redeployed.second
    same = same_secret(second.m2m_secret_used_by_program(), second.m2m_secret_in_standin())
    assert same, "the second run connected with another secret than the bootstrap stored"
    refused = second.refused_requests()
    assert refused == []


# --- faults on the way ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/applications", "/api/hooks"])
def test_a_lost_create_response_leaves_one_object_and_lobechat_wired_to_it(logto, path):
    logto.faults.add(method="POST", path_prefix=path, kind="drop_after_commit", times=1)
    mocks = EngineLikeMocks(logto)
    deployment = Deployment(logto, run_against(logto, dev_config(logto), mocks), mocks)
    dropped = [r.path for r in logto.requests_log if r.status is None]
    assert dropped == [path]
    owned, hooks = deployment.owned_app_ids(), deployment.hook_ids()
    assert len(owned) == 1 and len(hooks) == 1
    client_id = deployment.env("AUTH_LOGTO_ID")
    assert client_id == owned[0]
    same_client_secret = same_secret(deployment.env("AUTH_LOGTO_SECRET"), deployment.default_secret())
    same_signing_key = same_secret(deployment.env("LOGTO_WEBHOOK_SIGNING_KEY"), deployment.hook_signing_key())
    assert same_client_secret, "AUTH_LOGTO_SECRET is not the application's Default secret"
    assert same_signing_key, "LOGTO_WEBHOOK_SIGNING_KEY is not the hook's signing key"


# --- runs on a kept state ------------------------------------------------------------------------------


def test_unchanged_run_on_the_kept_state_creates_and_updates_nothing(lifecycle):
    creates, updates = lifecycle.unchanged.mocks.dynamic_creates, lifecycle.unchanged.mocks.updates
    assert creates == [] and updates == []


def test_refresh_then_unchanged_run_creates_and_updates_nothing(after_refresh):
    diffed = sorted(name for _, name in after_refresh.diffs)
    creates, updates = after_refresh.dynamic_creates, after_refresh.updates
    assert {"lobechat-application", "lobechat-webhook", "logto-m2m-secret"} <= set(diffed)
    assert creates == [] and updates == []


def test_new_lobechat_url_updates_application_and_hook_in_place(lifecycle):
    updated = {name for _, name in lifecycle.moved.mocks.updates}
    creates = lifecycle.moved.mocks.dynamic_creates
    assert {"lobechat-application", "lobechat-webhook"} <= updated and creates == []
    owned, hooks = lifecycle.moved.owned_app_ids(), lifecycle.moved.hook_ids()
    assert owned == [lifecycle.first.app()["id"]] and len(hooks) == 1


def test_new_lobechat_url_reaches_logto(lifecycle):
    app, hook = lifecycle.moved.app(), lifecycle.moved.hook()
    redirect = app["oidcClientMetadata"]["redirectUris"]
    sign_out = app["oidcClientMetadata"]["postLogoutRedirectUris"]
    cors = app["customClientMetadata"]["corsAllowedOrigins"]
    url = hook["config"]["url"]
    assert redirect == [f"{MOVED_LOBE}/api/auth/callback/logto"] and sign_out == [f"{MOVED_LOBE}/"]
    assert cors == [MOVED_LOBE] and url == f"{MOVED_LOBE}/api/webhooks/logto"


def test_new_lobechat_url_keeps_lobechats_credentials(lifecycle):
    moved = lifecycle.moved
    client_id = moved.env("AUTH_LOGTO_ID")
    assert client_id == lifecycle.first.app()["id"]
    same_client_secret = same_secret(moved.env("AUTH_LOGTO_SECRET"), moved.default_secret())
    same_signing_key = same_secret(moved.env("LOGTO_WEBHOOK_SIGNING_KEY"), moved.hook_signing_key())
    assert same_client_secret, "AUTH_LOGTO_SECRET is not the application's Default secret"
    assert same_signing_key, "LOGTO_WEBHOOK_SIGNING_KEY is not the hook's signing key"


# --- 6. LobeChat 2.x -----------------------------------------------------------------------------------


def test_gen2_hook_also_carries_suspension_updates(gen2):
    events = sorted(gen2.hook()["events"])
    assert events == ["User.Data.Updated", "User.SuspensionStatus.Updated"]


def test_gen2_jwks_key_is_an_rs256_private_key_set(gen2):
    jwks = json.loads(gen2.env("JWKS_KEY"))
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    key_count = len(keys) if isinstance(keys, list) else None
    assert key_count == 1
    key = keys[0]
    kty, alg = key.get("kty"), key.get("alg")
    has_private_exponent = isinstance(key.get("d"), str) and len(key["d"]) > 300
    assert kty == "RSA" and alg == "RS256"
    assert has_private_exponent, "the JWK has no RSA private exponent d"


def test_gen2_lobechat_is_wired_to_the_standin_objects(gen2):
    client_id, issuer = gen2.env("AUTH_LOGTO_ID"), gen2.env("AUTH_LOGTO_ISSUER")
    app_id = gen2.app()["id"]
    assert client_id == app_id and issuer == ISSUER
    same_client_secret = same_secret(gen2.env("AUTH_LOGTO_SECRET"), gen2.default_secret())
    same_signing_key = same_secret(gen2.env("LOGTO_WEBHOOK_SIGNING_KEY"), gen2.hook_signing_key())
    assert same_client_secret, "AUTH_LOGTO_SECRET is not the application's Default secret"
    assert same_signing_key, "LOGTO_WEBHOOK_SIGNING_KEY is not the hook's signing key"
    assert gen2.lobechat().is_secret("envs")


def test_new_lobechat_url_moves_the_buckets_cors_rule_in_place(lifecycle):
    updated = {name for _, name in lifecycle.moved.mocks.updates}
    assert "storage-bucket" in updated and lifecycle.moved.mocks.dynamic_creates == []
    # The outputs of the update are read back from S3 after it was applied (the module's S3 server is
    # shared by later runs, so the live bucket is not asked here).
    stored = lifecycle.moved.mocks.state[("pulumi-python:dynamic/storage:Bucket", "storage-bucket")]
    origins = _plain(stored.outputs["cors_origins"])
    assert origins == [MOVED_LOBE]
