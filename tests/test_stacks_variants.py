"""Graph variants no stack file uses: external Logto / Postgres, 2.x on one host, providers, the program."""

from __future__ import annotations

import runpy

import pytest

from components.config import POSTGRES_IMAGES
from tests.pulumi_mocks import (
    CONTAINER,
    LOGTO_APPLICATION,
    LOGTO_WEBHOOK,
    PROJECT_DIR,
    RANDOM_SECRET,
    REMOTE_IMAGE,
    VOLUME,
    run_program,
    stack_config,
)

NS = "lobechat-logto"
SECRET = "plain-secret-value-0123456789abcdef"
DATA_SAFETY_STEPS = {"data-safety-snapshot", "postgres-volume-check"}  # one-shot steps; no schedule on dev


def dev_with(**changes) -> dict:
    config = stack_config("dev")
    config.update({f"{NS}:{k}": v for k, v in changes.items()})
    return config


def names(run, typ) -> set[str]:
    return {r.name for r in run.of_type(typ)}


def test_external_logto_has_no_logto_container_and_no_bootstrap():
    run = run_program(
        "dev",
        dev_with(logto={"mode": "external", "tenantId": "abc123"}, lobechatUrl="https://chat.example.com"),
        {f"{NS}:logtoM2mClientId": "m2m-id", f"{NS}:logtoM2mClientSecret": SECRET},
    )
    assert names(run, CONTAINER) == {"postgres", "postgres-ready-wait", "lobechat", "lobechat-ready-wait", *DATA_SAFETY_STEPS}
    app = run.one(LOGTO_APPLICATION, "lobechat-application")
    assert app.plain("logto_endpoint") == "https://abc123.logto.app"
    assert app.plain("logto_resource") == "https://abc123.logto.app/api"
    assert app.plain("logto_client_id") == "m2m-id"
    assert app.is_secret("logto_client_secret")
    env = run.one(CONTAINER, "lobechat").env()
    assert env["AUTH_LOGTO_ISSUER"] == "https://abc123.logto.app/oidc"
    assert run.outputs["logtoAdminUrl"] == "https://cloud.logto.io/abc123"


def test_external_postgres_has_no_database_container_and_seeds_with_encrypt_base_role():
    run = run_program(
        "dev",
        dev_with(postgres={"mode": "external"}),
        {f"{NS}:postgresLogtoUrl": "postgresql://u:p@db.example.com:5432/logto",
         f"{NS}:postgresLobechatUrl": "postgresql://u:p@db.example.com:5432/lobechat"},
    )
    assert "postgres" not in names(run, CONTAINER) and "postgres-ready-wait" not in names(run, CONTAINER)
    assert run.of_type(VOLUME) == []
    logto = run.one(CONTAINER, "logto")
    assert "--encrypt-base-role" in logto.plain("entrypoints")[2]
    assert logto.env()["DB_URL"] == "postgresql://u:p@db.example.com:5432/logto"
    lobechat = run.one(CONTAINER, "lobechat")
    assert lobechat.env()["DATABASE_URL"] == "postgresql://u:p@db.example.com:5432/lobechat"
    assert lobechat.is_secret("envs")
    # The bootstrap still needs psql: from the generation's Postgres image.
    assert run.one(REMOTE_IMAGE, "psql-client-image").plain("name") == POSTGRES_IMAGES[1]
    assert run.one(CONTAINER, "logto-bootstrap-psql").env()["PGHOST"] == "db.example.com"


def test_generation_2_on_the_dev_host_uses_paradedb_and_the_2x_environment():
    run = run_program("dev", dev_with(lobechatGeneration="2"))
    assert run.one(REMOTE_IMAGE, "postgres-image").plain("name").startswith("paradedb/paradedb:")
    assert run.one(REMOTE_IMAGE, "lobechat-image").plain("name") == "lobehub/lobehub:2.2.10"
    env = run.one(CONTAINER, "lobechat").env()
    assert {"AUTH_SECRET", "AUTH_SSO_PROVIDERS", "JWKS_KEY"} <= set(env)
    assert not any(name.startswith(("NEXT_AUTH", "NEXTAUTH")) for name in env)


def test_disabled_webhook_means_no_hook_and_no_signing_key():
    run = run_program("dev", dev_with(webhook={"enabled": False}))
    assert run.of_type(LOGTO_WEBHOOK) == []
    assert "LOGTO_WEBHOOK_SIGNING_KEY" not in run.one(CONTAINER, "lobechat").env()
    assert "webhookSigningKey" not in run.outputs


def test_other_providers_follow_logto_with_their_secret_credentials():
    run = run_program(
        "dev",
        dev_with(ssoProviders=["logto", "github", {"id": "keycloak", "issuer": "https://kc.example.com/realms/x"}]),
        {f"{NS}:ssoGithubClientId": "gh", f"{NS}:ssoGithubClientSecret": SECRET,
         f"{NS}:ssoKeycloakClientId": "kc", f"{NS}:ssoKeycloakClientSecret": SECRET},
    )
    env = run.one(CONTAINER, "lobechat").env()
    assert env["NEXT_AUTH_SSO_PROVIDERS"] == "logto,github,keycloak"
    assert env["AUTH_GITHUB_SECRET"] == SECRET and env["AUTH_KEYCLOAK_ISSUER"] == "https://kc.example.com/realms/x"
    assert run.one(CONTAINER, "lobechat").is_secret("envs")
    assert "lobechatEnvironment" in run.secret_outputs


def test_unpublished_stage_publishes_no_ports():
    run = run_program("dev", dev_with(publish={"enabled": False}))
    for name in ("logto", "lobechat"):
        assert not run.one(CONTAINER, name).plain("ports"), name


def test_program_file_builds_the_same_graph():
    # __main__.py as the engine runs it: the project directory is the working directory.
    run = run_program("dev", stack_config("dev"), program=lambda: runpy.run_path(str(PROJECT_DIR / "__main__.py")))
    long_running = {"postgres", "logto", "lobechat"}
    assert long_running | {f"{n}-ready-wait" for n in long_running} | {"logto-bootstrap-psql"} | DATA_SAFETY_STEPS == names(run, CONTAINER)
    assert "lobechatEnvironment" in run.secret_outputs


def test_program_file_reports_bad_config_as_one_error_without_traceback():
    import pulumi

    with pytest.raises(pulumi.RunError) as info:
        run_program(
            "prod",
            {**stack_config("prod"), f"{NS}:lobechatUrl": "http://chat.example.com"},
            program=lambda: runpy.run_path(str(PROJECT_DIR / "__main__.py")),
        )
    assert "lobechat-logto:lobechatUrl" in str(info.value) and "https://" in str(info.value)


def test_missing_provider_secret_names_the_command_and_hides_the_other_secret():
    import pulumi

    with pytest.raises(pulumi.RunError) as info:
        run_program(
            "prod",
            {**stack_config("prod"), f"{NS}:ssoProviders": ["logto", "github"]},
            {f"{NS}:ssoGithubClientId": SECRET},
            program=lambda: runpy.run_path(str(PROJECT_DIR / "__main__.py")),
        )
    message = str(info.value)
    assert "pulumi config set --secret lobechat-logto:ssoGithubClientSecret <value> --stack prod" in message
    assert SECRET not in message


def test_every_generated_secret_marks_its_value_secret():
    run = run_program("dev", stack_config("dev"))
    for secret in run.of_type(RANDOM_SECRET):
        assert secret.additional_secret_outputs == ["value"], secret.name


def test_program_reports_a_misspelled_stack_key():
    import pulumi

    with pytest.raises(pulumi.RunError) as info:
        run_program("dev", {**stack_config("dev"), f"{NS}:dockerhost": "ssh://x@y"},
                    program=lambda: runpy.run_path(str(PROJECT_DIR / "__main__.py")))
    assert "lobechat-logto:dockerhost" in str(info.value) and "dockerHost" in str(info.value)


def test_extra_secret_env_from_pulumi_config_reaches_lobechat_as_secret():
    run = run_program(
        "dev",
        dev_with(extraEnv={"OPENAI_PROXY_URL": "https://proxy.example.com/v1"}),
        {f"{NS}:extraSecretEnv": {"OPENAI_API_KEY": SECRET}},
    )
    lobechat = run.one(CONTAINER, "lobechat")
    env = lobechat.env()
    assert env["OPENAI_API_KEY"] == SECRET and env["OPENAI_PROXY_URL"] == "https://proxy.example.com/v1"
    assert lobechat.is_secret("envs") and "lobechatEnvironment" in run.secret_outputs


def test_proxy_on_docker_host_sends_public_names_to_the_host_gateway():
    run = run_program("prod", {**stack_config("prod"), f"{NS}:proxyOnDockerHost": True})
    expected = [
        {"host": "chat.example.com", "ip": "host-gateway"},
        {"host": "auth.example.com", "ip": "host-gateway"},
        {"host": "auth-admin.example.com", "ip": "host-gateway"},
    ]
    for name in ("logto", "lobechat"):
        assert run.one(CONTAINER, name).plain("hosts") == expected, name


def test_without_proxy_on_docker_host_containers_get_no_host_entries():
    run = run_program("prod", {**stack_config("prod"), f"{NS}:proxyOnDockerHost": False})
    for name in ("logto", "lobechat"):
        assert not run.one(CONTAINER, name).plain("hosts"), name
