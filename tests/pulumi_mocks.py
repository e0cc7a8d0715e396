"""Run the Pulumi program under mocks and record the whole resource graph.

The Pulumi engine cannot run here (no CLI), so the program runs against
``pulumi.runtime.set_mocks`` the way the engine would run it, and every ``RegisterResource`` request
is recorded with its inputs (secrets still marked) and its options (parent, dependencies, protect,
retain-on-delete, delete-before-replace, provider). Dynamic resources get plausible outputs,
secret-wrapped where the real provider's are secret.

Mocks and config are process-global: :func:`run_program` installs both at call time (from a fixture),
never at import time, and clears the config afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.settings import SETTINGS
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT = "lobechat-logto"
PROJECT_DIR = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_DIR / "stacks"

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
DOCKER_PROVIDER = "pulumi:providers:docker"
RANDOM_SECRET = "pulumi-python:dynamic/generated:RandomSecret"
RSA_JWKS = "pulumi-python:dynamic/generated:RsaJwks"
LOGTO_APPLICATION = "pulumi-python:dynamic/logto:Application"
LOGTO_WEBHOOK = "pulumi-python:dynamic/logto:Webhook"
LOGTO_APPLICATION_SECRET = "pulumi-python:dynamic/logto:ApplicationSecret"
S3_BUCKET = "pulumi-python:dynamic/storage:Bucket"
S3_ACCESS_KEY = "pulumi-python:dynamic/storage:AccessKey"


def fake_value(kind: str, name: str) -> str:
    """A deterministic stand-in for a generated value (tests compare, never print, them)."""
    return f"{kind}-" + hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:24]


def _secret(value: Any) -> Any:
    return rpc.wrap_rpc_secret(value)


def _outputs_for(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    outs = dict(inputs)
    if typ == RANDOM_SECRET:
        outs["value"] = _secret(fake_value("random", name)[: int(inputs.get("length", 32))])
    elif typ == RSA_JWKS:
        jwk = {"kty": "RSA", "n": "n", "e": "AQAB", "d": "d", "alg": "RS256", "use": "sig", "kid": fake_value("kid", name)}
        outs["jwks"] = _secret(json.dumps({"keys": [jwk]}))
        outs["kid"] = jwk["kid"]
    elif typ == LOGTO_APPLICATION:
        outs["app_id"] = outs["client_id"] = fake_value("app", name)[:21]
        outs["client_secret"] = _secret(fake_value("client-secret", name))
    elif typ == LOGTO_WEBHOOK:
        outs["hook_id"] = fake_value("hook", name)[:21]
        outs["signing_key"] = _secret(fake_value("signing-key", name))
    elif typ == LOGTO_APPLICATION_SECRET:
        outs["value"] = _secret(fake_value("app-secret", name))
    elif typ == S3_BUCKET:
        for key in ("access_key_id", "secret_access_key"):
            if key in outs and not rpc.is_rpc_secret(outs[key]):
                outs[key] = _secret(outs[key])
    elif typ == S3_ACCESS_KEY:
        outs["key_id"] = _secret("AKIA" + fake_value("key", name)[-16:].upper())
        outs["key_secret"] = _secret(fake_value("key-secret", name))
    elif typ == REMOTE_IMAGE:
        outs["imageId"] = "sha256:" + hashlib.sha256(str(inputs.get("name")).encode()).hexdigest()
        outs["repoDigest"] = f"{inputs.get('name')}@{outs['imageId']}"
    elif typ == CONTAINER:
        # One-shot containers (the bootstrap) report how they ended; a healthy run exits 0.
        outs.setdefault("exitCode", 0)
        outs.setdefault("containerLogs", "")
    return outs


class RecordingMocks(pulumi.runtime.Mocks):
    """Returns plausible outputs for every resource type the program declares."""

    def registering(self, typ: str, name: str, additional_secret_outputs: list[str]) -> None:
        """Called just before :meth:`new_resource` for the same registration.

        ``MockResourceArgs`` does not carry ``additionalSecretOutputs`` (only the real engine applies
        them), so mocks that want to mark those outputs secret, as the engine would, learn them here.
        """

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", _outputs_for(args.typ, args.name, args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


@dataclass
class RecordedResource:
    """One ``RegisterResource`` request: what the program asked the engine for."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    additional_secret_outputs: list[str]
    provider: str

    def is_secret(self, key: str) -> bool:
        """True when the input ``key`` reached the engine marked secret."""
        return rpc.is_rpc_secret(self.inputs.get(key))

    def plain(self, key: str, default: Any = None) -> Any:
        """The input ``key`` with any secret marker removed."""
        return _unwrap(self.inputs.get(key, default))

    def env(self) -> dict[str, str]:
        """A container's ``envs`` (``NAME=value`` list) as a mapping."""
        return dict(item.split("=", 1) for item in self.plain("envs", []))


def _unwrap(value: Any) -> Any:
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class RecordingMonitor(MockMonitor):
    """A mock monitor that also keeps every registration request's inputs and options."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        if isinstance(self.mocks, RecordingMocks):
            self.mocks.registering(request.type, request.name, list(request.additionalSecretOutputs))
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recorded.append(
                RecordedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    inputs=rpc.deserialize_properties(request.object),
                    parent=request.parent,
                    dependencies=list(request.dependencies),
                    property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    provider=request.provider,
                )
            )
        return response


@dataclass
class ProgramRun:
    """The outcome of one program run under mocks."""

    stack: str
    resources: list[RecordedResource]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, typ: str) -> list[RecordedResource]:
        """Every recorded resource of type ``typ``."""
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str) -> RecordedResource:
        """The resource of type ``typ`` named ``name`` (fails when absent)."""
        found = [r for r in self.resources if r.type == typ and r.name == name]
        assert len(found) == 1, f"expected one {typ} named {name}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        """The resource with this URN."""
        return next(r for r in self.resources if r.urn == urn)

    def ancestors(self, resource: RecordedResource) -> list[RecordedResource]:
        """Parents of ``resource``, nearest first."""
        chain = []
        parent = resource.parent
        while parent:
            found = [r for r in self.resources if r.urn == parent]
            if not found:
                break
            chain.append(found[0])
            parent = found[0].parent
        return chain

    def depends_on(self, resource: RecordedResource, other: RecordedResource) -> bool:
        """True when ``resource`` waits for ``other`` (directly, by property or through a dependency)."""
        seen: set[str] = set()
        stack = [resource.urn]
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            current = self.by_urn(urn)
            deps = set(current.dependencies)
            for urns in current.property_dependencies.values():
                deps.update(urns)
            if other.urn in deps:
                return True
            stack.extend(d for d in deps if any(r.urn == d for r in self.resources))
        return False


def stack_config(stack: str) -> dict[str, Any]:
    """The ``config:`` mapping of ``stacks/Pulumi.<stack>.yaml``."""
    data = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")) or {}
    return dict(data.get("config") or {})


def stack_names() -> list[str]:
    """Every stack that has a file in ``stacks/``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


def _engine_config(config: Mapping[str, Any]) -> dict[str, str]:
    # The engine hands the program every value as a string; structured values as JSON.
    engine: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise ValueError(f"{key} holds ciphertext; pass its plain value through secret_config instead")
        if isinstance(value, str):
            engine[key] = value
        elif isinstance(value, bool):
            engine[key] = "true" if value else "false"
        else:
            engine[key] = json.dumps(value)
    return engine


def run_program(
    stack: str,
    config: Mapping[str, Any],
    secret_config: Mapping[str, Any] | None = None,
    program: Callable[[], None] | None = None,
    mocks: RecordingMocks | None = None,
) -> ProgramRun:
    """Run the program for ``stack`` with ``config`` (``namespace:key`` -> YAML value) under mocks.

    ``secret_config`` values are set as secret keys. ``program`` defaults to what ``__main__.py`` does.
    ``mocks`` replaces the plausible-output mocks, e.g. with one that runs the dynamic providers for real.
    """
    mocks = mocks or RecordingMocks()
    if f"{PROJECT}:verification" not in config:
        # Post-deploy verification talks to the deployed LobeChat and Logto; under mocks nothing is
        # deployed, so it is off unless a test asks for it (tests/test_verification_during_up.py does).
        config = {f"{PROJECT}:verification": {"enabled": False}, **config}
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    values = _engine_config(config)
    secrets = _engine_config(secret_config or {})
    pulumi.runtime.set_all_config({**values, **secrets}, list(secrets))

    root = pulumi.runtime.settings.get_root_resource()
    if root is not None:
        # One root Stack serves every run in the process: clear the previous run's exports.
        root.outputs.clear()

    def default_program() -> None:
        from components.config import PulumiConfigSource, load_stage_config
        from components.platform import build_platform

        build_platform(load_stage_config(PulumiConfigSource(), stack)).export()

    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    try:
        _sync_await(run_pulumi_func(program or default_program))
        run = ProgramRun(stack=stack, resources=list(monitor.recorded))
        root = pulumi.runtime.settings.get_root_resource()
        for name, value in (root.outputs if root is not None else {}).items():
            output = pulumi.Output.from_input(value)
            run.outputs[name] = _sync_await(output.future())
            if _sync_await(output.is_secret()):
                run.secret_outputs.add(name)
        return run
    finally:
        pulumi.runtime.set_all_config({}, [])
