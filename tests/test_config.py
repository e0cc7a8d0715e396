"""Stage config validation, as plain Python: every bad value gives one clear error naming its key."""

from __future__ import annotations

import pytest

from components.config import (
    LOBECHAT_IMAGES,
    LOGTO_IMAGE,
    POSTGRES_IMAGES,
    ConfigError,
    MappingConfigSource,
    load_stage_config,
)

SECRET = "s3cr3t-value-that-must-not-leak"

DEV = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
PROD = {
    "lobechatUrl": "https://chat.example.com",
    "logto": {"endpoint": "https://auth.example.com", "adminEndpoint": "https://auth-admin.example.com"},
}


def load(values: dict, secrets: dict | None = None, stack: str = "dev"):
    return load_stage_config(MappingConfigSource(values, secrets), stack)


def only_problem(values: dict, secrets: dict | None = None, stack: str = "dev"):
    with pytest.raises(ConfigError) as info:
        load(values, secrets, stack)
    problems = info.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def with_(base: dict, **changes) -> dict:
    merged = {**base}
    merged.update(changes)
    return merged


# --- defaults and derivation ---------------------------------------------------------------------


def test_defaults_are_generation_1_with_containers_and_logto_first():
    config = load(DEV)
    assert config.generation == 1
    assert config.lobechat_image == LOBECHAT_IMAGES[1] == "lobehub/lobe-chat-database:1.143.3"
    assert config.postgres.image == POSTGRES_IMAGES[1] == "pgvector/pgvector:pg16"
    assert config.postgres.mode == "container" and config.logto.mode == "container"
    assert config.logto.image == LOGTO_IMAGE == "svhd/logto:1.43.0"
    assert [p.id for p in config.sso_providers] == ["logto"]
    assert config.webhook_enabled is True
    assert config.resource_prefix == "lobechat-logto-dev"


def test_every_lobechat_url_derives_from_lobechat_url():
    urls = load(PROD, stack="prod").urls
    assert urls.app_url == "https://chat.example.com"
    assert urls.nextauth_url == "https://chat.example.com/api/auth"
    assert urls.redirect_uri == "https://chat.example.com/api/auth/callback/logto"
    assert urls.post_sign_out_redirect_uri == "https://chat.example.com/"
    assert urls.cors_origin == "https://chat.example.com"
    assert urls.webhook_url == "https://chat.example.com/api/webhooks/logto"


def test_issuer_is_logto_endpoint_plus_oidc():
    assert load(DEV).logto.issuer == "http://auth.localhost:3001/oidc"


def test_trailing_slash_is_removed_for_generation_1():
    config = load(with_(DEV, lobechatUrl="http://lobe.localhost:3210/"))
    assert config.urls.app_url == "http://lobe.localhost:3210"


def test_trailing_slash_on_logto_endpoint_is_removed():
    config = load(with_(DEV, logto={**DEV["logto"], "endpoint": "http://auth.localhost:3001/"}))
    assert config.logto.issuer == "http://auth.localhost:3001/oidc"


def test_generation_2_uses_lobehub_image_and_paradedb_with_pg_search():
    config = load(with_(DEV, lobechatGeneration="2"))
    assert config.lobechat_image == "lobehub/lobehub:2.2.10"
    assert config.postgres.image.startswith("paradedb/paradedb:") and config.postgres.image.endswith("-pg17")
    assert "shared_preload_libraries=pg_search,pg_cron,pg_stat_statements" in config.postgres.command


def test_webhook_events_follow_generation():
    assert load(DEV).webhook_events == ("User.Data.Updated",)
    assert load(with_(DEV, lobechatGeneration="2")).webhook_events == (
        "User.Data.Updated",
        "User.SuspensionStatus.Updated",
    )


def test_https_endpoint_trusts_proxy_header_by_default():
    assert load(PROD, stack="prod").logto.trust_proxy_header is True
    assert load(DEV).logto.trust_proxy_header is False


def test_localhost_endpoints_set_container_ports_from_urls():
    config = load(with_(DEV, logto={"endpoint": "http://auth.localhost:4001", "adminEndpoint": "http://auth-admin.localhost:4002"}))
    assert (config.logto.container_port, config.logto.container_admin_port) == (4001, 4002)
    assert (config.publish.logto_port, config.publish.logto_admin_port) == (4001, 4002)


def test_public_endpoints_publish_default_ports_on_loopback():
    publish = load(PROD, stack="prod").publish
    assert (publish.bind_address, publish.lobechat_port, publish.logto_port, publish.logto_admin_port) == (
        "127.0.0.1", 3210, 3001, 3002,
    )


def test_sso_provider_order_is_kept_and_credentials_come_from_secret_keys():
    config = load(
        with_(DEV, ssoProviders=["logto", "github", {"id": "auth0", "issuer": "https://x.auth0.com/"}]),
        {
            "ssoGithubClientId": "gh-id",
            "ssoGithubClientSecret": SECRET,
            "ssoAuth0ClientId": "a0-id",
            "ssoAuth0ClientSecret": SECRET,
        },
    )
    assert [p.emitted_id for p in config.sso_providers] == ["logto", "github", "auth0"]
    assert config.sso_providers[1].env == {"AUTH_GITHUB_ID": "gh-id", "AUTH_GITHUB_SECRET": SECRET}
    assert config.sso_providers[2].env["AUTH_AUTH0_ISSUER"] == "https://x.auth0.com/"  # as the provider advertises it


def test_microsoft_entra_id_is_emitted_as_microsoft_on_generation_2():
    config = load(
        with_(DEV, lobechatGeneration="2", ssoProviders=["logto", {"id": "microsoft-entra-id", "tenantId": "t1"}]),
        {"ssoMicrosoftEntraIdClientId": "x", "ssoMicrosoftEntraIdClientSecret": SECRET},
    )
    provider = config.sso_providers[1]
    assert provider.emitted_id == "microsoft"
    assert set(provider.env) == {"AUTH_MICROSOFT_ID", "AUTH_MICROSOFT_SECRET", "AUTH_MICROSOFT_TENANT_ID"}


def test_external_logto_reads_m2m_credentials_from_secrets():
    config = load(
        with_(PROD, logto={"mode": "external", "tenantId": "abc123"}),
        {"logtoM2mClientId": "m2m", "logtoM2mClientSecret": SECRET},
        stack="prod",
    )
    assert config.logto.endpoint.url == "https://abc123.logto.app"
    assert config.logto.issuer == "https://abc123.logto.app/oidc"
    assert config.logto.m2m_client_secret == SECRET
    assert config.logto.admin_console_url == "https://cloud.logto.io/abc123"


def test_external_postgres_reads_both_connection_strings():
    config = load(
        with_(DEV, postgres={"mode": "external"}),
        {"postgresLogtoUrl": "postgresql://a", "postgresLobechatUrl": "postgresql://b"},
    )
    assert (config.postgres.logto_database_url, config.postgres.lobechat_database_url) == ("postgresql://a", "postgresql://b")


def test_access_code_on_generation_1_comes_from_secret():
    config = load(with_(DEV, auth={"accessCode": True}), {"accessCode": SECRET})
    assert config.access_code == SECRET


def test_extra_env_is_kept_as_given():
    config = load(with_(DEV, extraEnv={"OPENAI_PROXY_URL": "https://proxy", "FEATURE_FLAGS": "-welcome"}))
    assert config.extra_env == {"OPENAI_PROXY_URL": "https://proxy", "FEATURE_FLAGS": "-welcome"}


def test_extra_secret_env_names_are_kept_values_secret():
    config = load(DEV, {"extraSecretEnv": {"OPENAI_API_KEY": SECRET}})
    assert config.extra_secret_env == {"OPENAI_API_KEY": SECRET}


def test_require_https_flag_applies_to_non_prod_stacks():
    problem = only_problem(with_(DEV, requireHttps=True, logto=PROD["logto"]), stack="staging")
    assert problem.key == "lobechat-logto:lobechatUrl"


# --- one clear error per bad value --------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "secrets", "stack", "key", "fragment"),
    [
        ({**DEV, "lobechatUrl": None}, None, "dev", "lobechatUrl", "is required"),
        ({**DEV, "lobechatUrl": "lobe.localhost:3210"}, None, "dev", "lobechatUrl", "http:// or https://"),
        ({**DEV, "lobechatUrl": "ftp://lobe.localhost"}, None, "dev", "lobechatUrl", "http:// or https://"),
        ({**DEV, "lobechatUrl": "http://lobe.localhost:99999"}, None, "dev", "lobechatUrl", "not a valid URL"),
        ({**DEV, "lobechatUrl": "http://lobe.localhost:3210/chat"}, None, "dev", "lobechatUrl", "without a path"),
        ({**DEV, "lobechatUrl": "http://lobe.localhost:3210/?a=1"}, None, "dev", "lobechatUrl", "query"),
        ({**DEV, "lobechatUrl": "http://u:p@lobe.localhost:3210"}, None, "dev", "lobechatUrl", "credentials"),
        ({**DEV, "lobechatUrl": "http://lobe.localhost:8080"}, None, "dev", "lobechatUrl", "3210"),
        ({**DEV, "lobechatUrl": "https://lobe.localhost:3210"}, None, "dev", "lobechatUrl", "plain http"),
        ({**PROD, "lobechatUrl": "http://chat.example.com"}, None, "prod", "lobechatUrl", "https://"),
        ({**PROD, "logto": {**PROD["logto"], "endpoint": "http://auth.example.com"}}, None, "prod", "logto.endpoint", "https://"),
        ({**DEV, "lobechatGeneration": "3"}, None, "dev", "lobechatGeneration", "\"1\""),
        ({**DEV, "lobechatGeneration": "2", "lobechatUrl": "http://lobe.localhost:3210/"}, None, "dev", "lobechatUrl", "must not end with '/'"),
        ({**DEV, "lobechatImage": "lobehub/lobe-chat-database:latest"}, None, "dev", "lobechatImage", "pin a version"),
        ({**DEV, "lobechatImage": "lobehub/lobe-chat-database"}, None, "dev", "lobechatImage", "pin a version"),
        ({**DEV, "lobechatImage": "lobehub/lobe-chat:1.143.3"}, None, "dev", "lobechatImage", "database edition"),
        ({**DEV, "lobechatGeneration": "2", "lobechatImage": "lobehub/lobe-chat-database:1.143.3"}, None, "dev", "lobechatImage", "1.x image"),
        ({**DEV, "lobechatImage": "lobehub/lobehub:2.2.10"}, None, "dev", "lobechatImage", "2.x image"),
        ({**DEV, "logto": {**DEV["logto"], "image": "svhd/logto"}}, None, "dev", "logto.image", "pin a version"),
        ({**DEV, "logto": {**DEV["logto"], "mode": "cloud"}}, None, "dev", "logto.mode", "external"),
        ({**DEV, "logto": {**DEV["logto"], "endpoint": "http://auth.localhost:3001/oidc"}}, None, "dev", "logto.endpoint", "without a path"),
        ({**DEV, "logto": {"endpoint": "http://auth.localhost:3001"}}, None, "dev", "logto.adminEndpoint", "is required"),
        ({**DEV, "logto": {**DEV["logto"], "endpont": "x"}}, None, "dev", "logto.endpont", "unknown setting"),
        ({**DEV, "logto": {**DEV["logto"], "trustProxyHeader": "maybe"}}, None, "dev", "logto.trustProxyHeader", "true or false"),
        ({**DEV, "logto": {**DEV["logto"], "adminEndpoint": "http://auth-admin.localhost:3001"}}, None, "dev", "logto.adminEndpoint", "different port"),
        ({**DEV, "logto": {"mode": "external", "endpoint": "https://auth.example.com"}}, {"logtoM2mClientSecret": SECRET}, "dev", "logtoM2mClientId", "pulumi config set --secret"),
        ({**DEV, "postgres": {"mode": "external"}}, {"postgresLobechatUrl": f"postgresql://lobe:{SECRET}@db/lobechat"}, "dev", "postgresLogtoUrl", "pulumi config set --secret"),
        ({**DEV, "postgres": {"mode": "rds"}}, None, "dev", "postgres.mode", "external"),
        ({**DEV, "postgres": {"image": "postgres:latest"}}, None, "dev", "postgres.image", "pin a version"),
        ({**DEV, "lobechatGeneration": "2", "postgres": {"image": "pgvector/pgvector:pg17"}}, None, "dev", "postgres.image", "pg_search"),
        ({**DEV, "ssoProviders": ["logto", "facebook"]}, None, "dev", "ssoProviders[1]", "unknown provider id 'facebook'"),
        ({**DEV, "ssoProviders": ["logto", "logto"]}, None, "dev", "ssoProviders[1]", "listed twice"),
        ({**DEV, "ssoProviders": []}, None, "dev", "ssoProviders", "non-empty list"),
        ({**DEV, "ssoProviders": ["github"]}, {"ssoGithubClientId": "x", "ssoGithubClientSecret": SECRET}, "dev", "ssoProviders", "must include 'logto'"),
        ({**DEV, "ssoProviders": ["logto", "github"]}, {"ssoGithubClientId": "x"}, "dev", "ssoGithubClientSecret", "pulumi config set --secret lobechat-logto:ssoGithubClientSecret"),
        ({**DEV, "ssoProviders": ["logto", "auth0"]}, {"ssoAuth0ClientId": "x", "ssoAuth0ClientSecret": SECRET}, "dev", "ssoProviders[1].issuer", "is required"),
        ({**DEV, "ssoProviders": ["logto", {"id": "github", "issuer": "https://x"}]}, {"ssoGithubClientId": "x", "ssoGithubClientSecret": SECRET}, "dev", "ssoProviders[1].issuer", "not a setting"),
        ({**DEV, "ssoProviders": ["logto", {"id": "auth0", "issuer": "auth0.com"}]}, {"ssoAuth0ClientId": "x", "ssoAuth0ClientSecret": SECRET}, "dev", "ssoProviders[1].issuer", "http(s) URL"),
        ({**DEV, "lobechatGeneration": "2", "ssoProviders": ["logto", {"id": "azure-ad", "tenantId": "t"}]}, None, "dev", "ssoProviders[1]", "use 'microsoft' instead"),
        ({**DEV, "ssoProviders": ["logto", {"id": "microsoft", "tenantId": "t"}]}, None, "dev", "ssoProviders[1]", "use 'azure-ad' instead"),
        ({**DEV, "lobechatGeneration": "2", "ssoProviders": ["logto", {"id": "microsoft", "tenantId": "t"}, {"id": "microsoft-entra-id", "tenantId": "t"}]}, {"ssoMicrosoftClientId": "x", "ssoMicrosoftClientSecret": SECRET, "ssoMicrosoftEntraIdClientId": "x", "ssoMicrosoftEntraIdClientSecret": SECRET}, "dev", "ssoProviders[2]", "same provider"),
        ({**DEV, "auth": {"mode": "clerk"}}, None, "dev", "auth.mode", "baked into the LobeChat image"),
        ({**DEV, "lobechatGeneration": "2", "auth": {"mode": "clerk"}}, None, "dev", "auth.mode", "2.x refuses Clerk"),
        ({**DEV, "lobechatGeneration": "2", "auth": {"accessCode": True}}, {"accessCode": SECRET}, "dev", "auth.accessCode", "2.x refuses ACCESS_CODE"),
        ({**DEV, "auth": {"accessCode": True}}, None, "dev", "accessCode", "pulumi config set --secret"),
        ({**DEV, "publish": {"lobechatPort": 8080}}, None, "dev", "publish.lobechatPort", "must equal the port"),
        ({**DEV, "publish": {"bindAddress": "everywhere"}}, None, "dev", "publish.bindAddress", "IP address"),
        ({**PROD, "publish": {"logtoPort": 3210}}, None, "prod", "publish", "must differ"),
        ({**DEV, "dockerHost": "deploy@host"}, None, "dev", "dockerHost", "ssh://"),
        ({**DEV, "extraEnv": {"APP_URL": "http://x"}}, None, "dev", "extraEnv.APP_URL", "set by the stack"),
        ({**DEV, "extraEnv": {"BAD NAME": "x"}}, None, "dev", "extraEnv.BAD NAME", "environment variable names"),
        ({**DEV, "lobechatGeneration": "2", "extraEnv": {"NEXT_PUBLIC_SERVICE_MODE": "server"}}, None, "dev", "extraEnv.NEXT_PUBLIC_SERVICE_MODE", "2.x exits"),
        ({**DEV, "lobechatGeneration": "2", "extraEnv": {"AUTH_AZURE_AD_ID": "x"}}, None, "dev", "extraEnv.AUTH_AZURE_AD_ID", "2.x exits"),
        ({**DEV, "lobechatGeneration": "2"}, {"extraSecretEnv": {"CLERK_SECRET_KEY": SECRET}}, "dev", "extraSecretEnv.CLERK_SECRET_KEY", "2.x exits"),
        ({**DEV, "webhook": {"enabled": "sometimes"}}, None, "dev", "webhook.enabled", "true or false"),
        ({**DEV, "extraEnv": {"OPENAI_API_KEY": SECRET}}, None, "dev", "extraEnv.OPENAI_API_KEY", "extraSecretEnv"),
        ({**DEV, "resourcePrefix": "Bad Prefix"}, None, "dev", "resourcePrefix", "lower-case"),
        ({**DEV, "requireHttps": "perhaps"}, None, "dev", "requireHttps", "true or false"),
    ],
)
def test_bad_value_gives_one_error_naming_the_key(values, secrets, stack, key, fragment):
    problem = only_problem(values, secrets, stack)
    assert problem.key == f"lobechat-logto:{key}"
    assert fragment in problem.message


def test_error_message_lists_every_problem_with_full_keys():
    with pytest.raises(ConfigError) as info:
        load({"lobechatUrl": "nope", "lobechatGeneration": "9", "logto": {"endpoint": "http://auth.localhost:3001"}})
    text = str(info.value)
    assert "lobechat-logto:lobechatUrl" in text and "lobechat-logto:lobechatGeneration" in text
    assert "lobechat-logto:logto.adminEndpoint" in text
    assert "stack 'dev'" in text


def test_errors_never_contain_secret_values():
    with pytest.raises(ConfigError) as info:
        load(
            {**DEV, "lobechatGeneration": "2", "auth": {"accessCode": True}, "ssoProviders": ["logto", "github"],
             "extraEnv": {"OPENAI_API_KEY": SECRET}},
            {"accessCode": SECRET, "ssoGithubClientSecret": SECRET, "extraSecretEnv": {"ACCESS_CODE": SECRET}},
        )
    assert SECRET not in str(info.value)
    assert all(SECRET not in p.message for p in info.value.problems)


@pytest.mark.parametrize(
    ("key", "url", "fragment"),
    [
        ("postgresLobechatUrl", f"mysql://lobe:{SECRET}@db.example.com/lobechat", "must start with postgresql://"),
        ("postgresLogtoUrl", f"postgresql://logto:{SECRET}@db.example.com:port/logto", "port that is not a number"),
        ("postgresLogtoUrl", f"postgresql://logto:{SECRET}@db.example.com/logto?keepalives=1", "'keepalives'"),
    ],
)
def test_malformed_external_database_url_is_named_without_quoting_it(key, url, fragment):
    good = "postgresql://user:pw@db.example.com:5432/db"
    secrets = {"postgresLogtoUrl": good, "postgresLobechatUrl": good, key: url}
    problem = only_problem(with_(DEV, postgres={"mode": "external"}), secrets, "dev")
    assert problem.key == f"lobechat-logto:{key}"
    assert fragment in problem.message and "not a usable PostgreSQL URL" in problem.message
    assert SECRET not in problem.message


def test_missing_secret_error_names_the_stack_in_the_command():
    problem = only_problem({**PROD, "ssoProviders": ["logto", "github"]}, {"ssoGithubClientId": "x"}, stack="prod")
    assert "--stack prod" in problem.message


def test_program_reaches_a_localhost_logto_through_its_published_loopback_port():
    assert load(DEV).logto.api_endpoint == "http://127.0.0.1:3001"


def test_program_reaches_a_public_logto_at_its_endpoint():
    assert load(PROD, stack="prod").logto.api_endpoint == "https://auth.example.com"


def test_explicit_api_endpoint_wins():
    config = load(with_(DEV, logto={**DEV["logto"], "apiEndpoint": "http://192.168.1.5:3001"}))
    assert config.logto.api_endpoint == "http://192.168.1.5:3001"


def test_misspelled_key_is_reported_with_the_likely_key():
    problem = only_problem(with_(DEV, lobechatURL="http://x"))
    assert problem.key == "lobechat-logto:lobechatURL" and "lobechatUrl" in problem.message


def test_provider_secret_keys_are_known_keys():
    config = load(DEV, {"ssoGithubClientId": "kept-for-later"})
    assert [p.id for p in config.sso_providers] == ["logto"]


def test_https_cannot_be_turned_off_on_prod():
    problem = only_problem(with_(PROD, requireHttps=False), stack="prod")
    assert problem.key == "lobechat-logto:requireHttps"


def test_ipv6_origin_keeps_its_brackets():
    config = load(with_(DEV, logto={**DEV["logto"], "apiEndpoint": "http://[::1]:3001"}))
    assert config.logto.api_endpoint == "http://[::1]:3001"


def test_paradedb_image_override_keeps_pg_search_preloaded():
    config = load(with_(DEV, lobechatGeneration="2", postgres={"image": "paradedb/paradedb:0.26.0-pg18"}))
    assert config.postgres.command == ("postgres", "-c", "shared_preload_libraries=pg_search,pg_cron,pg_stat_statements")


def test_generation_1_keeps_the_image_default_command():
    assert load(DEV).postgres.command == ()


def test_proxy_on_docker_host_lists_the_public_names_of_this_host():
    opened = with_(PROD, proxyOnDockerHost=True, logto={**PROD["logto"], "exposeAdminConsole": True})
    assert load(opened, stack="prod").proxied_host_names == ("chat.example.com", "auth.example.com", "auth-admin.example.com")
    # A closed admin console (the default on prod) is not reached through the proxy.
    config = load(with_(PROD, proxyOnDockerHost=True), stack="prod")
    assert config.proxied_host_names == ("chat.example.com", "auth.example.com")
    assert load(PROD, stack="prod").proxied_host_names == ()
    assert load(with_(DEV, proxyOnDockerHost=True)).proxied_host_names == ()
