"""No secret in any message (issue 8, item 7): sentinel secrets through every secret key and error path.

A sentinel is a value no message could contain by chance. It is fed through every secret config key
(valid and in every bad shape), through the Logto bootstrap and Postgres roles steps' error paths,
and through Management API failures (bad credentials, server errors, gateway pages, timeouts,
refused connections, Retry-After), and must appear in no exception text, repr, or log record.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from components.logto_api import LogtoConnection, LogtoError, ManagementApi
from components.logto_api import transport as transport_module
from components.logto_bootstrap import bootstrap_environment, bootstrap_secret_files, check_bootstrap_exit
from components.logto_resources import LogtoApplicationProvider
from components.postgres_roles import check_roles_exit
from components.postgres_url import libpq_environment
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props
from tests.ports import closed_port

SENTINEL = "Sx7QsentinelSECRETvalue42"
DEV = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
EXTERNAL = {"lobechatUrl": "https://chat.example.com",
            "logto": {"mode": "external", "endpoint": "https://auth.example.com"}}

# Shapes a secret value may take, good and bad: each one wraps the sentinel.
SHAPES = [
    SENTINEL, f" {SENTINEL} ", f"{SENTINEL}\n", f"{SENTINEL}\x00", f"postgresql://u:{SENTINEL}@h/db",
    f"postgresql://u:{SENTINEL}?x@h/db", f"postgresql://u:pa?{SENTINEL}@h/db", f"postgresql://u:5432?{SENTINEL}@h/db", f"postgresql://u:pa#{SENTINEL}@h/db", f"postgresql://u:{SENTINEL}#x@h/db", f"postgresql://u:{SENTINEL}@x@h/db",
    f"postgresql://u:pw@h:99999/{SENTINEL}", f"mysql://{SENTINEL}", f"postgresql://u:pw@h/db?{SENTINEL}=1",
    f"postgresql://u:pw@h/db?sslmode={SENTINEL}", "x" * 40000 + SENTINEL,
]


def scenarios() -> list[tuple[str, dict, dict, str]]:
    """(id, values, secrets, stack) with the sentinel in one secret key, both as secret and as plain."""
    out = []
    for index, shape in enumerate(SHAPES):
        for plain in (False, True):
            def put(values: dict, secrets: dict, key: str, value: Any) -> None:
                (values if plain else secrets)[key] = value
            cases = []
            v, s = {**DEV, "postgres": {"mode": "external"}}, {"postgresLogtoUrl": "postgresql://u:pw@h:5432/logto"}
            put(v, s, "postgresLobechatUrl", shape); cases.append(("postgresLobechatUrl", v, s, "dev"))
            v, s = {**DEV, "postgres": {"mode": "external"}}, {"postgresLobechatUrl": "postgresql://u:pw@h:5432/l"}
            put(v, s, "postgresLogtoUrl", shape); cases.append(("postgresLogtoUrl", v, s, "dev"))
            v, s = dict(EXTERNAL), {"logtoM2mClientId": "id"}
            put(v, s, "logtoM2mClientSecret", shape); cases.append(("logtoM2mClientSecret", v, s, "prod"))
            v, s = {**DEV, "auth": {"accessCode": True}}, {}
            put(v, s, "accessCode", shape); cases.append(("accessCode", v, s, "dev"))
            v, s = {**DEV, "lobechatGeneration": "2", "auth": {"accessCode": True}}, {}
            put(v, s, "accessCode", shape); cases.append(("accessCode-2x", v, s, "dev"))
            v, s = {**DEV, "ssoProviders": ["logto", "github"]}, {"ssoGithubClientId": "gh"}
            put(v, s, "ssoGithubClientSecret", shape); cases.append(("ssoGithubClientSecret", v, s, "dev"))
            for name in ("OPENAI_API_KEY", "AUTH_SECRET", "NEXT_AUTH_SECRET", "bad name", "KEY_VAULTS_SECRET"):
                v, s = dict(DEV), {}
                put(v, s, "extraSecretEnv", {name: shape}); cases.append((f"extraSecretEnv.{name}", v, s, "dev"))
            v, s = {**DEV, "extraEnv": {"OPENAI_API_KEY": shape}}, {}
            cases.append(("extraEnv-secret-looking", v, s, "dev"))
            for key, values, secrets, stack in cases:
                out.append((f"{key}-{index}-{'plain' if plain else 'secret'}", values, secrets, stack))
    return out


SCENARIOS = scenarios()


@pytest.mark.parametrize(("values", "secrets", "stack"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS])
def test_config_errors_never_hold_a_secret(values, secrets, stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        load_stage_config(MappingConfigSource(values, secrets), stack)
    except ConfigError as error:
        assert SENTINEL not in str(error) and SENTINEL not in repr(error)
        assert all(SENTINEL not in p.key and SENTINEL not in p.message for p in error.problems)
    assert SENTINEL not in caplog.text


@pytest.mark.parametrize("url", SHAPES)
def test_bootstrap_and_url_errors_never_hold_a_secret(url: str) -> None:
    for call in (
        lambda: libpq_environment(url),
        lambda: bootstrap_environment(url, "s" * 32),
        lambda: bootstrap_secret_files(url, "s" * 32),
        lambda: bootstrap_environment("postgresql://u:p@h/db", SENTINEL * 4),
    ):
        try:
            call()
        except ValueError as error:
            assert SENTINEL not in str(error)


def test_one_shot_step_errors_show_psql_output_without_the_secret_files() -> None:
    # psql's terse errors never echo a statement; the exit check adds only codes and URNs.
    for check in (check_bootstrap_exit, check_roles_exit):
        with pytest.raises(Exception) as info:
            check(3, "\x01\x00\x00\x00\x00\x00\x00\x10ERROR:  logto bootstrap: failed\n", urn="urn:x")
        assert SENTINEL not in str(info.value)


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport_module, "_sleep", lambda seconds: None)


def failures(logto: LogtoStandIn) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("status", {"status": 500}), ("status", {"status": 503}), ("gateway_then_commit", {"status": 502}),
        ("gateway_then_commit", {"status": 524}), ("status", {"status": 429, "retry_after": 9999}),
        ("drop", {}), ("drop_after_commit", {}), ("status", {"status": 400}), ("status", {"status": 403}),
    ]


@pytest.mark.parametrize("index", range(9))
def test_management_api_errors_never_hold_a_secret(logto: LogtoStandIn, no_sleep: None, index: int,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    kind, extra = failures(logto)[index]
    logto.faults.add(method=None, path_prefix="/api/applications", kind=kind, times=None, **extra)
    provider = LogtoApplicationProvider()
    props = {
        **connection_props(logto), "project": "lobechat-logto", "stack": "dev", "resource_name": "app",
        "name": "LobeChat", "description": "d", "app_type": "Traditional",
        "redirect_uris": ["http://lobe.localhost:3210/api/auth/callback/logto"], "post_sign_out_redirect_uris": [],
        "cors_allowed_origins": [], "adopt_id": None,
    }
    secret = props["logto_client_secret"]
    with pytest.raises(LogtoError) as info:
        provider.create(props)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert secret not in text
    logto.faults.clear()


def test_wrong_client_secret_and_unreachable_logto_never_show_the_secret(logto: LogtoStandIn, no_sleep: None,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for endpoint in (logto.endpoint, f"http://127.0.0.1:{closed_port()}"):
        api = ManagementApi(LogtoConnection(endpoint, logto.m2m_client_id, SENTINEL, max_attempts=2))
        with pytest.raises(LogtoError) as info:
            api.applications.list()
        assert SENTINEL not in str(info.value) and SENTINEL not in repr(info.value)
        assert SENTINEL not in repr(api) and SENTINEL not in repr(api.applications)
    assert SENTINEL not in caplog.text
