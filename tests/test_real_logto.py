"""The Logto providers' lifecycle against a real Logto server (opt-in), and the same code against the stand-in.

Every lifecycle below is a plain function of a ``LogtoTarget`` (endpoint, M2M client id and secret,
Management API resource). Each test runs it twice: ``[standin]`` against the in-process Logto
stand-in (always), and ``[real]`` against a real Logto when one is given, so the real-server path is
the very code the stand-in run proves. The providers are called the way the Pulumi engine calls
them: check -> create -> read -> diff -> update -> delete.

Run against a real Logto (the M2M application needs the role "Logto Management API access")::

    LOGTO_TEST_ENDPOINT=http://127.0.0.1:3001 \\
    LOGTO_TEST_M2M_CLIENT_ID=<id> LOGTO_TEST_M2M_CLIENT_SECRET=<secret> \\
    .venv/bin/python -m pytest tests/test_real_logto.py -k "not standin"

``LOGTO_TEST_RESOURCE`` is optional (default ``https://default.logto.app/api``; Logto Cloud:
``https://<tenant>.logto.app/api``). Without those variables the ``[real]`` tests skip, under CI too:
no Logto server can run where the suite runs, so this is an operator's check, not a CI prerequisite.

What the ``[real]`` tests leave on the server: nothing. Every object gets a unique name and an
ownership marker of its own (project ``lobechat-logto-tests``, stack ``pytest-<random>``), so nothing
collides with real objects, and a finalizer deletes whatever a test created, even when it fails.
The webhook points at ``http://127.0.0.1:9/unused`` (the discard port) and lives for seconds.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from components.logto_api import (
    DEFAULT_SECRET_NAME,
    SELF_HOSTED_RESOURCE,
    LogtoAuthenticationError,
    LogtoConnection,
    LogtoError,
    LogtoNotFoundError,
    ManagementApi,
    clear_token_cache,
)
from components.logto_resources import (
    MARKER_HEADER,
    LogtoApplicationProvider,
    LogtoApplicationSecretProvider,
    LogtoWebhookProvider,
)
from components.logto_resources.connection import marker

ENDPOINT_VAR = "LOGTO_TEST_ENDPOINT"
CLIENT_ID_VAR = "LOGTO_TEST_M2M_CLIENT_ID"
CLIENT_SECRET_VAR = "LOGTO_TEST_M2M_CLIENT_SECRET"
RESOURCE_VAR = "LOGTO_TEST_RESOURCE"
REQUIRED_VARS = (ENDPOINT_VAR, CLIENT_ID_VAR, CLIENT_SECRET_VAR)
SKIP_REASON = (
    f"no real Logto given: set {ENDPOINT_VAR} (e.g. http://127.0.0.1:3001), {CLIENT_ID_VAR} and "
    f"{CLIENT_SECRET_VAR} (an M2M application with the role 'Logto Management API access'); "
    f"optional {RESOURCE_VAR} (default {SELF_HOSTED_RESOURCE})"
)

TEST_PROJECT = "lobechat-logto-tests"
"""Marker project of every object these tests create: never the real project's name."""
LOBE = "http://lobe-{run}.localhost:3210"
UNUSED_HOOK_URL = "http://127.0.0.1:9/unused"
"""Port 9 is the discard service: a delivery, should one ever be attempted, goes nowhere."""


@dataclass(frozen=True)
class LogtoTarget:
    """Where the lifecycle runs: a Logto endpoint and the M2M credential that manages it."""

    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    resource: str = SELF_HOSTED_RESOURCE

    def connection_props(self) -> dict[str, Any]:
        """The ``logto_*`` provider inputs, as ``LogtoConnectionArgs.to_props`` hands them to the engine."""
        return {
            "logto_endpoint": self.endpoint,
            "logto_client_id": self.client_id,
            "logto_client_secret": self.client_secret,
            "logto_resource": self.resource,
        }

    def api(self) -> ManagementApi:
        """A Management API client acting behind the providers' backs (the "console")."""
        return ManagementApi(LogtoConnection(self.endpoint, self.client_id, self.client_secret, self.resource))


def real_target_from_env(environ: dict[str, str] | os._Environ[str]) -> LogtoTarget | None:
    """The real Logto named by ``LOGTO_TEST_*``; None when none is given.

    Only some of the required variables set is a mistake, not an absence: it fails with the missing names.
    """
    values = {name: environ.get(name, "").strip() for name in REQUIRED_VARS}
    if not any(values.values()):
        return None
    missing = [name for name, value in values.items() if not value]
    if missing:
        pytest.fail(f"real Logto test half configured: also set {', '.join(missing)}", pytrace=False)
    return LogtoTarget(
        endpoint=values[ENDPOINT_VAR],
        client_id=values[CLIENT_ID_VAR],
        client_secret=values[CLIENT_SECRET_VAR],
        resource=environ.get(RESOURCE_VAR, "").strip() or SELF_HOSTED_RESOURCE,
    )


class Cleanup:
    """Objects a test created on a target, deleted at teardown whatever the test's outcome."""

    def __init__(self, target: LogtoTarget) -> None:
        self.target = target
        self.applications: list[str] = []
        self.hooks: list[str] = []

    def application(self, app_id: str) -> None:
        """Delete this application (and so its secrets) at teardown."""
        if app_id not in self.applications:
            self.applications.append(app_id)

    def hook(self, hook_id: str) -> None:
        """Delete this webhook at teardown."""
        if hook_id not in self.hooks:
            self.hooks.append(hook_id)

    def run(self) -> list[str]:
        """Delete everything registered; already gone is fine. Returns what could not be deleted."""
        api = self.target.api()
        leftovers: list[str] = []
        for kind, ids, delete in (
            ("hook", self.hooks, api.hooks.delete),
            ("application", self.applications, api.applications.delete),
        ):
            for object_id in reversed(ids):
                try:
                    delete(object_id)
                except LogtoNotFoundError:
                    pass
                except LogtoError as exc:  # messages of this client never carry a secret
                    leftovers.append(f"{kind} {object_id}: {exc}")
        return leftovers


@pytest.fixture(params=["standin", "standin-1.43", "real"])
def target(request: pytest.FixtureRequest) -> Iterator[LogtoTarget]:
    """The stand-in (always; as the recorded 1.37.1 and as the pinned 1.43 answers) or the real Logto
    named by ``LOGTO_TEST_*`` (skipped when none is given)."""
    if request.param.startswith("standin"):
        logto = request.getfixturevalue("logto")  # also holds every request to Logto's OpenAPI document
        if request.param == "standin-1.43":
            logto.answer_as("1.43.0")  # the pinned Logto image
        yield LogtoTarget(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret)
        return
    real = real_target_from_env(os.environ)
    if real is None:
        # A plain skip, also under CI: no Logto server runs where the suite runs.
        pytest.skip(SKIP_REASON)
    clear_token_cache()
    yield real
    clear_token_cache()


@pytest.fixture
def cleanup(target: LogtoTarget) -> Iterator[Cleanup]:
    """Registers created objects; deletes them after the test (before the stand-in stops)."""
    registry = Cleanup(target)
    yield registry
    leftovers = registry.run()
    assert leftovers == [], "could not delete test objects on the Logto target (delete them by hand)"


# --- inputs ------------------------------------------------------------------------------------------


def new_run() -> str:
    """A short random id that makes names and markers unique to one test run."""
    return uuid.uuid4().hex[:10]


def application_inputs(target: LogtoTarget, run: str, **overrides: Any) -> dict[str, Any]:
    """What ``LogtoApplication`` hands the engine, with a test-only marker and unique name."""
    lobe = LOBE.format(run=run)
    return {
        **target.connection_props(),
        "project": TEST_PROJECT,
        "stack": f"pytest-{run}",
        "resource_name": "lobechat-application",
        "name": f"lobechat-logto test {run}",
        "description": f"created by tests/test_real_logto.py (run {run}); safe to delete",
        "app_type": "Traditional",
        "redirect_uris": [f"{lobe}/api/auth/callback/logto"],
        "post_sign_out_redirect_uris": [f"{lobe}/"],
        "cors_allowed_origins": [lobe],
        "adopt_id": None,
        "app_id": None,
        "client_id": None,
        "client_secret": None,
        **overrides,
    }


def webhook_inputs(target: LogtoTarget, run: str, **overrides: Any) -> dict[str, Any]:
    """What ``LogtoWebhook`` hands the engine, with a test-only marker and unique name."""
    return {
        **target.connection_props(),
        "project": TEST_PROJECT,
        "stack": f"pytest-{run}",
        "resource_name": "lobechat-webhook",
        "name": f"lobechat-logto test hook {run}",
        "url": UNUSED_HOOK_URL,
        "events": ["User.Data.Updated"],
        "headers": {},
        "enabled": True,
        "adopt_id": None,
        "hook_id": None,
        "signing_key": None,
        **overrides,
    }


def checked(provider: Any, props: dict[str, Any]) -> dict[str, Any]:
    """``check`` as the engine runs it before create/update: no failures, the checked inputs back."""
    result = provider.check({}, props)
    assert result.failures == []
    return result.inputs


def same_secret(actual: object, expected: object, what: str) -> None:
    """Compare secret values without pytest printing them on failure."""
    matches = actual == expected
    assert matches, f"{what}: values differ (not shown)"


def owned_applications(api: ManagementApi, props: dict[str, Any]) -> list[str]:
    """Ids of the applications carrying this test run's marker."""
    wanted = marker(props)
    return [
        app["id"]
        for app in api.applications.list_all(types=["Traditional"])
        if isinstance(app.get("customData"), dict) and all(app["customData"].get(k) == v for k, v in wanted.items())
    ]


def owned_hooks(api: ManagementApi, props: dict[str, Any]) -> list[str]:
    """Ids of the hooks carrying this test run's marker header."""
    wanted = f"lobechat-logto/{props['project']}/{props['stack']}/{props['resource_name']}"
    return [
        hook["id"]
        for hook in api.hooks.list_all()
        if ((hook.get("config") or {}).get("headers") or {}).get(MARKER_HEADER) == wanted
    ]


# --- lifecycles (plain functions: the same code for the stand-in and the real server) ----------------


def application_lifecycle(target: LogtoTarget, cleanup: Cleanup) -> None:
    """Create -> read equals inputs -> update URIs in place -> drift shows and is repaired -> delete twice."""
    provider = LogtoApplicationProvider()
    api = target.api()
    run = new_run()
    props = checked(provider, application_inputs(target, run))

    created = provider.create(props)
    cleanup.application(created.id)
    app_id = created.id
    assert created.outs["app_id"] == created.outs["client_id"] == app_id

    read = provider.read(app_id, created.outs)
    assert read.id == app_id
    for key in ("name", "description", "app_type", "redirect_uris", "post_sign_out_redirect_uris",
                "cors_allowed_origins", "project", "stack", "resource_name"):
        assert read.outs[key] == props[key], f"read {key} differs from the input"
    assert provider.diff(app_id, read.outs, props).changes is False

    # The usable client secret is the named "Default secret", never the internal column.
    default = api.applications.default_secret(app_id)
    assert isinstance(default, str) and default, f"application {app_id} has no {DEFAULT_SECRET_NAME!r}"
    assert not default.startswith("#internal:"), "Default secret holds an internal value"
    same_secret(created.outs["client_secret"], default, "created client_secret vs Default secret")
    same_secret(read.outs["client_secret"], default, "read client_secret vs Default secret")

    lobe = LOBE.format(run=run)
    news = checked(provider, application_inputs(
        target, run,
        redirect_uris=[f"{lobe}/api/auth/callback/logto", "http://127.0.0.1:3210/api/auth/callback/logto"],
        post_sign_out_redirect_uris=[f"{lobe}/", "http://127.0.0.1:3210/"],
        cors_allowed_origins=[lobe, "http://127.0.0.1:3210"],
    ))
    diff = provider.diff(app_id, read.outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(app_id, read.outs, news)
    live = api.applications.get(app_id)
    assert live["id"] == app_id
    assert live["oidcClientMetadata"]["redirectUris"] == news["redirect_uris"]
    assert live["oidcClientMetadata"]["postLogoutRedirectUris"] == news["post_sign_out_redirect_uris"]
    assert live["customClientMetadata"]["corsAllowedOrigins"] == news["cors_allowed_origins"]
    same_secret(updated.outs["client_secret"], default, "client_secret after update")

    # Drift: someone edits the redirect URIs in the console (here: the client, behind the provider's back).
    drifted = ["http://drift.example/api/auth/callback/logto"]
    api.applications.update(app_id, oidc_client_metadata={**live["oidcClientMetadata"], "redirectUris": drifted})
    refreshed = provider.read(app_id, updated.outs)
    assert refreshed.outs["redirect_uris"] == drifted
    assert refreshed.inputs["redirect_uris"] == drifted
    diff = provider.diff(app_id, refreshed.outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    repaired = provider.update(app_id, refreshed.outs, news)
    assert api.applications.get(app_id)["oidcClientMetadata"]["redirectUris"] == news["redirect_uris"]
    assert provider.diff(app_id, provider.read(app_id, repaired.outs).outs, news).changes is False

    provider.delete(app_id, repaired.outs)
    with pytest.raises(LogtoNotFoundError):
        api.applications.get(app_id)
    assert provider.read(app_id, repaired.outs).id == ""
    provider.delete(app_id, repaired.outs)


def application_secret_lifecycle(target: LogtoTarget, cleanup: Cleanup) -> None:
    """A named secret: create (with expiry) -> read equals what Logto stores -> delete twice."""
    api = target.api()
    run = new_run()
    app = api.applications.create(
        name=f"lobechat-logto test secrets {run}",
        custom_data=marker(application_inputs(target, run, resource_name="secret-holder")),
    )
    cleanup.application(app["id"])
    provider = LogtoApplicationSecretProvider()
    expires = int(time.time() * 1000) + 86_400_000
    props = checked(provider, {
        **target.connection_props(),
        "application_id": app["id"],
        "secret_name": f"pytest-{run}",
        "expires_at": expires,
        "value": None,
    })

    created = provider.create(props)
    assert created.id == f"{app['id']}/pytest-{run}"
    stored = [s for s in api.applications.list_secrets(app["id"]) if s["name"] == f"pytest-{run}"]
    assert len(stored) == 1
    assert stored[0]["expiresAt"] == expires
    value_ok = isinstance(created.outs["value"], str) and bool(created.outs["value"])
    assert value_ok, "secret create gave no value"
    same_secret(created.outs["value"], stored[0]["value"], "output value vs stored secret")

    read = provider.read(created.id, created.outs)
    assert read.id == created.id
    same_secret(read.outs["value"], stored[0]["value"], "read value vs stored secret")
    assert provider.diff(created.id, read.outs, props).changes is False

    provider.delete(created.id, read.outs)
    assert [s for s in api.applications.list_secrets(app["id"]) if s["name"] == f"pytest-{run}"] == []
    assert provider.read(created.id, read.outs).id == ""
    provider.delete(created.id, read.outs)


def webhook_lifecycle(target: LogtoTarget, cleanup: Cleanup) -> None:
    """Create -> signing key present -> read has no diff -> name/url updated in place -> delete twice."""
    provider = LogtoWebhookProvider()
    api = target.api()
    run = new_run()
    props = checked(provider, webhook_inputs(target, run))

    created = provider.create(props)
    cleanup.hook(created.id)
    hook_id = created.id
    assert created.outs["hook_id"] == hook_id
    live = api.hooks.get(hook_id)
    key_ok = isinstance(created.outs["signing_key"], str) and bool(created.outs["signing_key"])
    assert key_ok, "webhook create gave no signing key"
    same_secret(created.outs["signing_key"], live["signingKey"], "signing_key vs live hook")
    assert live["events"] == ["User.Data.Updated"]
    assert live["config"]["url"] == UNUSED_HOOK_URL

    read = provider.read(hook_id, created.outs)
    assert read.id == hook_id
    assert (read.outs["name"], read.outs["url"], read.outs["headers"]) == (props["name"], UNUSED_HOOK_URL, {})
    assert provider.diff(hook_id, read.outs, props).changes is False

    news = checked(provider, webhook_inputs(target, run, name=f"lobechat-logto test hook {run} renamed",
                                            url=f"{UNUSED_HOOK_URL}-2"))
    diff = provider.diff(hook_id, read.outs, news)
    assert (diff.changes, diff.replaces) == (True, [])
    updated = provider.update(hook_id, read.outs, news)
    live = api.hooks.get(hook_id)
    assert (live["id"], live["name"], live["config"]["url"]) == (hook_id, news["name"], news["url"])
    same_secret(updated.outs["signing_key"], created.outs["signing_key"], "signing_key after update")
    assert provider.diff(hook_id, provider.read(hook_id, updated.outs).outs, news).changes is False

    provider.delete(hook_id, updated.outs)
    with pytest.raises(LogtoNotFoundError):
        api.hooks.get(hook_id)
    assert provider.read(hook_id, updated.outs).id == ""
    provider.delete(hook_id, updated.outs)


def repeated_create_takes_over(target: LogtoTarget, cleanup: Cleanup) -> None:
    """A create re-sent with the same marker (state lost after a create) returns the same object, no duplicate."""
    api = target.api()
    run = new_run()

    app_provider = LogtoApplicationProvider()
    app_props = checked(app_provider, application_inputs(target, run))
    first = app_provider.create(app_props)
    cleanup.application(first.id)
    second = app_provider.create(app_props)
    cleanup.application(second.id)
    assert second.id == first.id
    assert owned_applications(api, app_props) == [first.id]

    hook_provider = LogtoWebhookProvider()
    hook_props = checked(hook_provider, webhook_inputs(target, run))
    first_hook = hook_provider.create(hook_props)
    cleanup.hook(first_hook.id)
    second_hook = hook_provider.create(hook_props)
    cleanup.hook(second_hook.id)
    assert second_hook.id == first_hook.id
    assert owned_hooks(api, hook_props) == [first_hook.id]


def wrong_m2m_secret_is_refused(target: LogtoTarget, cleanup: Cleanup) -> None:
    """A wrong M2M secret: LogtoAuthenticationError, the secret in neither str nor repr, nothing created."""
    # The token cache is keyed by endpoint, client id and resource (not the secret): start empty so
    # the wrong secret really goes to the token endpoint.
    clear_token_cache()
    wrong = f"wrong-m2m-secret-{new_run()}"
    run = new_run()
    props = application_inputs(target, run, logto_client_secret=wrong)
    with pytest.raises(LogtoAuthenticationError) as info:
        LogtoApplicationProvider().create(checked(LogtoApplicationProvider(), props))
    leaked = wrong in str(info.value) or wrong in repr(info.value)
    assert not leaked, "the wrong M2M secret appears in the error"
    for app_id in owned_applications(target.api(), props):
        cleanup.application(app_id)
    assert owned_applications(target.api(), props) == []


# --- tests: each lifecycle against the stand-in and (opt-in) the real server ------------------------


def test_application_lifecycle(target: LogtoTarget, cleanup: Cleanup) -> None:
    application_lifecycle(target, cleanup)


def test_application_secret_lifecycle(target: LogtoTarget, cleanup: Cleanup) -> None:
    application_secret_lifecycle(target, cleanup)


def test_webhook_lifecycle(target: LogtoTarget, cleanup: Cleanup) -> None:
    webhook_lifecycle(target, cleanup)


def test_repeated_create_returns_the_same_object(target: LogtoTarget, cleanup: Cleanup) -> None:
    repeated_create_takes_over(target, cleanup)


def test_wrong_m2m_secret_is_refused_without_leaking_it(target: LogtoTarget, cleanup: Cleanup) -> None:
    wrong_m2m_secret_is_refused(target, cleanup)


def test_cleanup_deletes_what_a_failed_test_left(target: LogtoTarget) -> None:
    # The finalizer is what keeps a failing [real] run from leaving objects behind: prove it deletes
    # a registered application and hook, and that an already-deleted one is no error.
    api = target.api()
    run = new_run()
    app = api.applications.create(name=f"lobechat-logto test cleanup {run}",
                                  custom_data=marker(application_inputs(target, run)))
    hook = api.hooks.create(name=f"lobechat-logto test cleanup {run}", url=UNUSED_HOOK_URL)
    registry = Cleanup(target)
    registry.application(app["id"])
    registry.hook(hook["id"])
    gone = api.applications.create(name=f"lobechat-logto test gone {run}")
    registry.application(gone["id"])
    api.applications.delete(gone["id"])
    assert registry.run() == []
    for lookup, object_id in ((api.applications.get, app["id"]), (api.hooks.get, hook["id"])):
        with pytest.raises(LogtoNotFoundError):
            lookup(object_id)


def test_skip_reason_names_every_variable_to_set() -> None:
    assert all(name in SKIP_REASON for name in (*REQUIRED_VARS, RESOURCE_VAR))


def test_no_variables_means_no_real_target() -> None:
    assert real_target_from_env({}) is None
    assert real_target_from_env({RESOURCE_VAR: "https://t1.logto.app/api"}) is None


def test_half_configured_real_target_fails_naming_the_missing_variables() -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        real_target_from_env({ENDPOINT_VAR: "http://127.0.0.1:3001", CLIENT_ID_VAR: "m2m"})
    assert CLIENT_SECRET_VAR in str(info.value)


def test_real_target_from_env_reads_every_variable_and_hides_the_secret() -> None:
    secret = "env-secret-value-0001"
    real = real_target_from_env({
        ENDPOINT_VAR: "https://auth.example.com", CLIENT_ID_VAR: "m2m", CLIENT_SECRET_VAR: secret,
        RESOURCE_VAR: "https://t1.logto.app/api",
    })
    assert real is not None
    assert (real.endpoint, real.client_id, real.resource) == ("https://auth.example.com", "m2m", "https://t1.logto.app/api")
    same_secret(real.client_secret, secret, "client secret from the environment")
    assert secret not in repr(real)
