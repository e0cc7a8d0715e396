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
    assert names(run, CONTAINER) == {
        "postgres", "postgres-ready-wait", "postgres-roles-psql", "postgres-logins-psql", "lobechat", "lobechat-ready-wait", "storage",
        "storage-ready-wait", *DATA_SAFETY_STEPS}
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
    assert names(run, VOLUME) == {"storage-data"}  # the file storage's, not a database volume
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
    long_running = {"postgres", "logto", "lobechat", "storage"}
    one_shot = {"logto-bootstrap-psql", "logto-database-preflight", "logto-database-setup", "postgres-roles-psql",
                "postgres-logins-psql"}
    assert long_running | {f"{n}-ready-wait" for n in long_running} | one_shot | DATA_SAFETY_STEPS == names(run, CONTAINER)
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
    # The operator's own proxy on the Docker host (front.mode external).
    logto = {**stack_config("prod")[f"{NS}:logto"], "exposeAdminConsole": True}
    run = run_program("prod", {**stack_config("prod"), f"{NS}:front": {"mode": "external"}, f"{NS}:proxyOnDockerHost": True, f"{NS}:logto": logto})
    expected = [
        {"host": "chat.example.com", "ip": "host-gateway"},
        {"host": "auth.example.com", "ip": "host-gateway"},
        {"host": "auth-admin.example.com", "ip": "host-gateway"},
    ]
    assert run.one(CONTAINER, "logto").plain("hosts") == expected
    # LobeChat's server also calls the storage at its public name (presigned URLs are signed for it).
    storage_entry = {"host": "s3.example.com", "ip": "host-gateway"}
    assert run.one(CONTAINER, "lobechat").plain("hosts") == [*expected, storage_entry]


def test_without_proxy_on_docker_host_containers_get_no_host_entries():
    run = run_program("prod", {**stack_config("prod"), f"{NS}:proxyOnDockerHost": False})
    for name in ("logto", "lobechat"):
        assert not run.one(CONTAINER, name).plain("hosts"), name


# --- file storage variants ---------------------------------------------------------------------------


def test_storage_off_has_no_server_no_bucket_and_no_s3_variables():
    from tests.pulumi_mocks import S3_BUCKET

    run = run_program("dev", dev_with(storage={"mode": "none"}))
    assert "storage" not in names(run, CONTAINER) and run.of_type(S3_BUCKET) == []
    assert names(run, VOLUME) == {"postgres-data", "data-safety-backups"}
    assert not [name for name in run.one(CONTAINER, "lobechat").env() if name.startswith("S3_")]
    assert not [name for name in run.outputs if name.startswith("storage")]


def test_external_storage_manages_the_bucket_with_config_credentials_and_gives_lobechat_its_own_key():
    from tests.pulumi_mocks import S3_BUCKET

    run = run_program(
        "dev",
        dev_with(storage={"mode": "external", "bucket": "acme-lobechat", "region": "auto",
                          "endpoint": "https://acct.r2.cloudflarestorage.com"}),
        {f"{NS}:storageAccessKeyId": "admin-key-id", f"{NS}:storageSecretAccessKey": SECRET,
         f"{NS}:storageLobechatAccessKeyId": "lobe-key-id", f"{NS}:storageLobechatSecretAccessKey": SECRET + "-lobe"},
    )
    assert "storage" not in names(run, CONTAINER)
    bucket = run.one(S3_BUCKET, "storage-bucket")
    assert bucket.plain("s3_endpoint") == "https://acct.r2.cloudflarestorage.com" and bucket.plain("region") == "auto"
    assert bucket.plain("access_key_id") == "admin-key-id" and bucket.is_secret("secret_access_key")
    env = run.one(CONTAINER, "lobechat").env()
    assert env["S3_ACCESS_KEY_ID"] == "lobe-key-id" and env["S3_SECRET_ACCESS_KEY"] == SECRET + "-lobe"
    assert env["S3_ENDPOINT"] == "https://acct.r2.cloudflarestorage.com" and env["S3_REGION"] == "auto"
    assert run.outputs["storageAccessKeyId"] == "admin-key-id" and "storageInternalEndpoint" not in run.outputs
    assert {"storageAccessKeyId", "storageSecretAccessKey"} <= run.secret_outputs


def test_public_read_storage_sets_acl_on_2x_and_grants_read_on_the_bucket():
    from tests.pulumi_mocks import S3_BUCKET

    run = run_program("dev", dev_with(lobechatGeneration="2", storage={
        "mode": "container", "publicEndpoint": "http://s3.localhost:9000", "publicRead": True}))
    assert run.one(S3_BUCKET, "storage-bucket").plain("public_read") is True
    env = run.one(CONTAINER, "lobechat").env()
    assert env["S3_SET_ACL"] == "1" and "JWKS_KEY" in env


def test_external_aws_with_an_iam_key_gives_lobechat_a_key_limited_to_its_bucket():
    from tests.pulumi_mocks import S3_ACCESS_KEY, S3_BUCKET

    run = run_program(
        "dev",
        dev_with(storage={"mode": "external", "bucket": "acme-lobechat", "region": "eu-west-1", "lobechatKey": "iam"}),
        {f"{NS}:storageAccessKeyId": "admin-key-id", f"{NS}:storageSecretAccessKey": SECRET},
    )
    key = run.one(S3_ACCESS_KEY, "storage-lobechat-key")
    assert key.plain("bucket") == "acme-lobechat" and key.plain("user_name") == "lobechat-logto-dev-acme-lobechat"
    assert key.is_secret("admin_secret_access_key") and {"key_id", "key_secret"} <= set(key.additional_secret_outputs)
    assert run.depends_on(key, run.one(S3_BUCKET, "storage-bucket"))
    env = run.one(CONTAINER, "lobechat").env()
    assert env["S3_ACCESS_KEY_ID"].startswith("AKIA") and env["S3_ACCESS_KEY_ID"] != "admin-key-id"
    assert env["S3_SECRET_ACCESS_KEY"] != SECRET and env["S3_ENDPOINT"] == "https://s3.eu-west-1.amazonaws.com"
    assert env["S3_ENABLE_PATH_STYLE"] == "0" and run.outputs["storageAccessKeyId"] == "admin-key-id"
