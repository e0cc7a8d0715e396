"""LobeChat's environment per generation: exact key sets, derived URLs, the 2.x refusal list."""

from __future__ import annotations

import pytest

from components.config import MappingConfigSource, load_stage_config
from components.lobechat_env import (
    LobeChatEnvError,
    LobeChatEnvInputs,
    assert_lobechat_env,
    build_lobechat_env,
    forbidden_2x_reason,
)

BASE = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
VALUES = LobeChatEnvInputs(
    client_id="client-id",
    client_secret="client-secret",
    webhook_signing_key="signing-key",
    session_secret="session-secret",
    key_vaults_secret="key-vaults",
    database_url="postgresql://postgres:pw@postgres:5432/lobechat",
    jwks_key='{"keys":[]}',
)

EXPECTED_1X = {
    "NEXT_AUTH_SECRET",
    "NEXT_AUTH_SSO_PROVIDERS",
    "AUTH_LOGTO_ID",
    "AUTH_LOGTO_SECRET",
    "AUTH_LOGTO_ISSUER",
    "NEXTAUTH_URL",
    "LOGTO_WEBHOOK_SIGNING_KEY",
    "APP_URL",
    "DATABASE_URL",
    "KEY_VAULTS_SECRET",
}
EXPECTED_2X = {
    "AUTH_SECRET",
    "AUTH_SSO_PROVIDERS",
    "JWKS_KEY",
    "APP_URL",
    "AUTH_LOGTO_ID",
    "AUTH_LOGTO_SECRET",
    "AUTH_LOGTO_ISSUER",
    "LOGTO_WEBHOOK_SIGNING_KEY",
    "DATABASE_URL",
    "KEY_VAULTS_SECRET",
}


def env_for(values: dict | None = None, secrets: dict | None = None, inputs: LobeChatEnvInputs = VALUES):
    config = load_stage_config(MappingConfigSource({**BASE, **(values or {})}, secrets), "dev")
    return build_lobechat_env(config, inputs)


def test_generation_1_has_exactly_the_documented_variables():
    assert set(env_for()) == EXPECTED_1X


def test_generation_2_has_exactly_the_better_auth_variables():
    assert set(env_for({"lobechatGeneration": "2"})) == EXPECTED_2X


def test_session_and_provider_variables_of_the_generations_are_disjoint():
    only_1x = EXPECTED_1X - EXPECTED_2X
    only_2x = EXPECTED_2X - EXPECTED_1X
    assert only_1x == {"NEXT_AUTH_SECRET", "NEXT_AUTH_SSO_PROVIDERS", "NEXTAUTH_URL"}
    assert only_2x == {"AUTH_SECRET", "AUTH_SSO_PROVIDERS", "JWKS_KEY"}
    assert not set(env_for({"lobechatGeneration": "2"})) & only_1x


def test_generation_1_urls_derive_from_lobechat_url():
    env = env_for()
    assert env["APP_URL"] == "http://lobe.localhost:3210"
    assert env["NEXTAUTH_URL"] == "http://lobe.localhost:3210/api/auth"


def test_issuer_is_endpoint_plus_oidc_exactly():
    assert env_for()["AUTH_LOGTO_ISSUER"] == "http://auth.localhost:3001/oidc"
    assert env_for({"lobechatGeneration": "2"})["AUTH_LOGTO_ISSUER"] == "http://auth.localhost:3001/oidc"


def test_values_come_from_the_inputs():
    env = env_for({"lobechatGeneration": "2"})
    assert env["AUTH_LOGTO_ID"] == "client-id"
    assert env["AUTH_LOGTO_SECRET"] == "client-secret"
    assert env["LOGTO_WEBHOOK_SIGNING_KEY"] == "signing-key"
    assert env["AUTH_SECRET"] == "session-secret"
    assert env["KEY_VAULTS_SECRET"] == "key-vaults"
    assert env["JWKS_KEY"] == '{"keys":[]}'
    assert env["DATABASE_URL"].endswith("/lobechat")


def test_providers_list_keeps_display_order_and_adds_their_variables():
    env = env_for(
        {"ssoProviders": ["github", "logto", {"id": "google"}]},
        {"ssoGithubClientId": "g", "ssoGithubClientSecret": "gs", "ssoGoogleClientId": "o", "ssoGoogleClientSecret": "os"},
    )
    assert env["NEXT_AUTH_SSO_PROVIDERS"] == "github,logto,google"
    assert set(env) == EXPECTED_1X | {"AUTH_GITHUB_ID", "AUTH_GITHUB_SECRET", "AUTH_GOOGLE_CLIENT_ID", "AUTH_GOOGLE_CLIENT_SECRET"}


def test_google_uses_2x_variable_names_on_generation_2():
    env = env_for(
        {"lobechatGeneration": "2", "ssoProviders": ["logto", "google"]},
        {"ssoGoogleClientId": "o", "ssoGoogleClientSecret": "os"},
    )
    assert env["AUTH_SSO_PROVIDERS"] == "logto,google"
    assert {"AUTH_GOOGLE_ID", "AUTH_GOOGLE_SECRET"} <= set(env)


def test_disabled_webhook_leaves_out_the_signing_key():
    inputs = LobeChatEnvInputs(**{**VALUES.__dict__, "webhook_signing_key": None})
    env = env_for({"webhook": {"enabled": False}}, inputs=inputs)
    assert set(env) == EXPECTED_1X - {"LOGTO_WEBHOOK_SIGNING_KEY"}


def test_access_code_is_added_on_generation_1():
    env = env_for({"auth": {"accessCode": True}}, {"accessCode": "code"})
    assert env["ACCESS_CODE"] == "code"


def test_extra_env_is_added():
    env = env_for({"extraEnv": {"OPENAI_PROXY_URL": "https://proxy"}}, {"extraSecretEnv": {"OPENAI_API_KEY": "k"}})
    assert env["OPENAI_PROXY_URL"] == "https://proxy" and env["OPENAI_API_KEY"] == "k"


def test_generation_2_without_jwks_is_refused():
    inputs = LobeChatEnvInputs(**{**VALUES.__dict__, "jwks_key": None})
    with pytest.raises(LobeChatEnvError, match="JWKS_KEY"):
        env_for({"lobechatGeneration": "2"}, inputs=inputs)


@pytest.mark.parametrize(
    "name",
    [
        "NEXT_AUTH_SECRET",
        "NEXTAUTH_URL",
        "AUTH_URL",
        "NEXT_PUBLIC_AUTH_URL",
        "ACCESS_CODE",
        "NEXT_PUBLIC_SERVICE_MODE",
        "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY",
        "CLERK_SECRET_KEY",
        "AZURE_AD_CLIENT_ID",
        "AUTH_AZURE_AD_ID",
        "AUTH_MICROSOFT_ENTRA_ID_ID",
        "ZITADEL_CLIENT_ID",
        "OIDC_JWKS_KEY",
    ],
)
def test_variables_that_stop_a_2x_container_are_refused(name):
    env = {**env_for({"lobechatGeneration": "2"}), name: "x"}
    with pytest.raises(LobeChatEnvError, match="2.x would exit"):
        assert_lobechat_env(env, 2)


def test_app_url_with_trailing_slash_is_refused_for_2x():
    env = {**env_for({"lobechatGeneration": "2"}), "APP_URL": "https://chat.example.com/"}
    with pytest.raises(LobeChatEnvError, match="APP_URL ending"):
        assert_lobechat_env(env, 2)


def test_allowed_2x_names_are_not_refused():
    for name in ("AUTH_ZITADEL_ID", "AUTH_MICROSOFT_ID", "AUTH_SECRET", "JWKS_KEY", "APP_URL"):
        assert forbidden_2x_reason(name, "https://chat.example.com") is None


def test_1x_environment_with_2x_session_variables_is_refused():
    env = {**env_for(), "AUTH_SECRET": "x"}
    with pytest.raises(LobeChatEnvError, match="2.x variables"):
        assert_lobechat_env(env, 1)


def test_environment_missing_a_required_variable_is_refused():
    env = env_for()
    del env["AUTH_LOGTO_ISSUER"]
    with pytest.raises(LobeChatEnvError, match="AUTH_LOGTO_ISSUER"):
        assert_lobechat_env(env, 1)


def test_refusal_messages_name_variables_not_values():
    env = {**env_for({"lobechatGeneration": "2"}), "ACCESS_CODE": "very-secret-code"}
    with pytest.raises(LobeChatEnvError) as info:
        assert_lobechat_env(env, 2)
    assert "very-secret-code" not in str(info.value)


# --- file storage (S3_*) ---------------------------------------------------------------------------

def storage_outputs(public_read: bool = False, path_style: bool = True):
    from components.file_storage import StorageOutputs

    return StorageOutputs(
        bucket="lobechat", endpoint="http://s3.localhost:9000", internal_endpoint="http://storage:9000",
        region="us-east-1", path_style=path_style, public_domain="http://s3.localhost:9000", public_read=public_read,
        access_key_id="lobe-key", secret_access_key="lobe-secret",
        admin_access_key_id="root-key", admin_secret_access_key="root-secret",
    )


S3_NAMES = {"S3_ENDPOINT", "S3_BUCKET", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY",
            "S3_PUBLIC_DOMAIN", "S3_ENABLE_PATH_STYLE", "S3_SET_ACL"}


@pytest.mark.parametrize("generation", [1, 2])
def test_storage_adds_the_same_s3_variables_in_both_generations(generation: int):
    from dataclasses import replace

    config = load_stage_config(MappingConfigSource({**BASE, "lobechatGeneration": str(generation)}), "dev")
    env = build_lobechat_env(config, replace(VALUES, storage=storage_outputs()))
    assert S3_NAMES <= set(env)
    assert env["S3_ACCESS_KEY_ID"] == "lobe-key" and env["S3_SECRET_ACCESS_KEY"] == "lobe-secret"
    assert env["S3_ENDPOINT"] == "http://s3.localhost:9000" and env["S3_ENABLE_PATH_STYLE"] == "1"
    assert_lobechat_env(env, generation)


@pytest.mark.parametrize("generation", [1, 2])
def test_s3_set_acl_is_written_out_because_the_generations_defaults_differ(generation: int):
    from components.lobechat_env import s3_environment

    # 1.x sets a public-read ACL unless S3_SET_ACL is 0; 2.x only when it is 1: never leave it unset.
    assert s3_environment(generation, storage_outputs())["S3_SET_ACL"] == "0"
    assert s3_environment(generation, storage_outputs(public_read=True))["S3_SET_ACL"] == "1"


def test_virtual_hosted_storage_turns_path_style_off():
    from components.lobechat_env import s3_environment

    assert s3_environment(1, storage_outputs(path_style=False))["S3_ENABLE_PATH_STYLE"] == "0"


def test_without_storage_there_is_no_s3_variable():
    config = load_stage_config(MappingConfigSource(BASE), "dev")
    assert not S3_NAMES & set(build_lobechat_env(config, VALUES))
