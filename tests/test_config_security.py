"""Config rules that close ways in (issue 8): secret keys, HTTPS, strict host names, strict values.

Each test names the attack or mistake it stops; every refusal is one ConfigError naming the key.
"""

from __future__ import annotations

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from components.postgres_url import libpq_environment

SECRET = "s3ntinel-Secret-Value-9f2c"
GOOD_DB = "postgresql://user:pw@db.example.com:5432/db"

DEV = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
PROD = {
    "lobechatUrl": "https://chat.example.com",
    "logto": {"endpoint": "https://auth.example.com", "adminEndpoint": "https://auth-admin.example.com"},
}
EXTERNAL_LOGTO = {**PROD, "logto": {"mode": "external", "endpoint": "https://auth.example.com"}}


def load(values: dict, secrets: dict | None = None, stack: str = "dev"):
    return load_stage_config(MappingConfigSource(values, secrets), stack)


def only_problem(values: dict, secrets: dict | None = None, stack: str = "dev"):
    with pytest.raises(ConfigError) as info:
        load(values, secrets, stack)
    problems = info.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def logto(base: dict, **fields) -> dict:
    return {**base, "logto": {**base["logto"], **fields}}


# --- 1. the admin console -------------------------------------------------------------------------


@pytest.mark.parametrize(("stack", "expected"), [("dev", True), ("staging", False), ("prod", False)])
def test_admin_console_is_closed_by_default_off_dev(stack, expected):
    base = DEV if stack == "dev" else PROD
    config = load(base, stack=stack)
    assert config.logto.expose_admin_console is expected


def test_closed_admin_console_uses_a_loopback_admin_endpoint_and_opened_one_the_configured_url():
    closed = load(PROD, stack="prod").logto
    assert closed.admin_endpoint_url == "http://127.0.0.1:3002"
    assert closed.admin_console_url == "http://127.0.0.1:3002/console"
    opened = load(logto(PROD, exposeAdminConsole=True), stack="prod").logto
    assert opened.admin_endpoint_url == "https://auth-admin.example.com"


def test_expose_admin_console_must_be_a_boolean():
    problem = only_problem(logto(PROD, exposeAdminConsole="maybe"), stack="prod")
    assert problem.key == "lobechat-logto:logto.exposeAdminConsole"


# --- 2. HTTPS where requireHttps holds ------------------------------------------------------------


def test_plain_http_api_endpoint_is_refused_on_prod_because_the_m2m_secret_travels_in_it():
    problem = only_problem(logto(PROD, apiEndpoint="http://logto.internal.example.com:3001"), stack="prod")
    assert problem.key == "lobechat-logto:logto.apiEndpoint" and "https" in problem.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:3001", "http://[::1]:3001", "http://localhost:3001"])
def test_plain_http_api_endpoint_on_loopback_is_allowed_on_prod(url):
    assert load(logto(PROD, apiEndpoint=url), stack="prod").logto.api_endpoint == url


def test_plain_http_sso_issuer_is_refused_where_https_is_required():
    values = {**PROD, "ssoProviders": ["logto", {"id": "auth0", "issuer": "http://tenant.auth0.com/"}]}
    secrets = {"ssoAuth0ClientId": "id", "ssoAuth0ClientSecret": SECRET}
    problem = only_problem(values, secrets, stack="prod")
    assert problem.key == "lobechat-logto:ssoProviders[1].issuer" and "https" in problem.message
    # The same issuer is fine on dev (no requireHttps).
    assert load({**DEV, "ssoProviders": values["ssoProviders"]}, secrets).sso_providers[1].env


def test_plain_http_authority_url_is_refused_on_prod():
    values = {**PROD, "lobechatGeneration": "2", "ssoProviders": [
        "logto", {"id": "microsoft", "tenantId": "common", "authorityUrl": "http://login.microsoftonline.com/x"}]}
    secrets = {"ssoMicrosoftClientId": "id", "ssoMicrosoftClientSecret": SECRET}
    problem = only_problem(values, secrets, stack="prod")
    assert problem.key == "lobechat-logto:ssoProviders[1].authorityUrl"


def test_public_bind_address_on_prod_needs_the_explicit_opt_in():
    values = {**PROD, "publish": {"bindAddress": "0.0.0.0"}}
    problem = only_problem(values, stack="prod")
    assert problem.key == "lobechat-logto:publish.bindAddress" and "allowNonLoopbackBind" in problem.message
    opted_in = load({**PROD, "publish": {"bindAddress": "0.0.0.0", "allowNonLoopbackBind": True}}, stack="prod")
    assert opted_in.publish.bind_address == "0.0.0.0"
    assert load({**DEV, "publish": {"bindAddress": "0.0.0.0"}}).publish.bind_address == "0.0.0.0"


# --- 3. secret keys must be secrets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({**EXTERNAL_LOGTO, "logtoM2mClientId": "id", "logtoM2mClientSecret": SECRET}, "logtoM2mClientSecret"),
        ({**DEV, "postgres": {"mode": "external"}, "postgresLogtoUrl": GOOD_DB, "postgresLobechatUrl": GOOD_DB},
         "postgresLobechatUrl"),
        ({**DEV, "ssoProviders": ["logto", "github"], "ssoGithubClientId": "id", "ssoGithubClientSecret": SECRET},
         "ssoGithubClientSecret"),
        ({**DEV, "auth": {"accessCode": True}, "accessCode": SECRET}, "accessCode"),
    ],
)
def test_a_secret_key_set_in_clear_text_is_refused_with_the_secret_command(values, key):
    secrets = {}
    if key == "postgresLobechatUrl":  # the other URL set properly, so only one problem
        secrets = {"postgresLogtoUrl": values.pop("postgresLogtoUrl")}
    problem = only_problem(values, secrets)
    assert problem.key == f"lobechat-logto:{key}"
    assert f"pulumi config set --secret lobechat-logto:{key} <value> --stack dev" in problem.message
    assert SECRET not in problem.message and "clear text" in problem.message


def test_extra_secret_env_set_in_clear_text_is_refused_with_the_path_command():
    problem = only_problem({**DEV, "extraSecretEnv": {"OPENAI_API_KEY": SECRET}})
    assert problem.key == "lobechat-logto:extraSecretEnv"
    assert "pulumi config set --secret --path 'lobechat-logto:extraSecretEnv.OPENAI_API_KEY' <value> --stack dev" in problem.message
    assert SECRET not in problem.message


@pytest.mark.parametrize("empty", ["", "   ", "\n\t"])
def test_empty_or_whitespace_secrets_are_refused(empty):
    problem = only_problem({**DEV, "auth": {"accessCode": True}}, {"accessCode": empty})
    assert problem.key == "lobechat-logto:accessCode" and "empty" in problem.message
    problem = only_problem(DEV, {"extraSecretEnv": {"OPENAI_API_KEY": empty}})
    assert problem.key == "lobechat-logto:extraSecretEnv.OPENAI_API_KEY"


def test_client_ids_may_be_set_plain():
    config = load({**DEV, "ssoProviders": ["logto", "github"], "ssoGithubClientId": "id"},
                  {"ssoGithubClientSecret": SECRET})
    assert config.sso_providers[1].env["AUTH_GITHUB_ID"] == "id"


# --- 5. strict host names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "url"),
    [
        # A space would become two entries in the containers' /etc/hosts.
        ("adminEndpoint", "https://auth-admin.example.com api.openai.com"),
        ("adminEndpoint", "https://auth-admin.example.com\tapi.openai.com"),
        # Browsers read the backslash as a path separator: the redirect would go to evil.example.
        ("endpoint", "https://evil.example\\.chat.example.com"),
        ("endpoint", "https://auth.exa\nmple.com"),
        ("endpoint", "https://auth.example.com\n"),
        ("endpoint", "https://auth_example.com"),
        ("endpoint", "https://-auth.example.com"),
        ("endpoint", "https://ａuth.example.com"),
        ("endpoint", "https://256.0.0.1"),
        ("endpoint", "https://01.02.03.004"),
    ],
)
def test_hosts_outside_the_dns_grammar_are_refused(field, url):
    problem = only_problem(logto(PROD, **{field: url}), stack="prod")
    assert problem.key == f"lobechat-logto:logto.{field}"


def test_lobechat_url_with_backslash_host_is_refused():
    problem = only_problem({**PROD, "lobechatUrl": "https://evil.example\\.chat.example.com"}, stack="prod")
    assert problem.key == "lobechat-logto:lobechatUrl"


def test_punycode_and_ip_literal_hosts_are_accepted():
    assert load(logto(PROD, endpoint="https://xn--bcher-kva.example"), stack="prod").logto.endpoint.host == "xn--bcher-kva.example"
    assert load(logto(PROD, endpoint="https://203.0.113.7"), stack="prod").logto.endpoint.host == "203.0.113.7"
    assert load(logto(PROD, endpoint="https://[2001:db8::1]:8443"), stack="prod").logto.endpoint.url == "https://[2001:db8::1]:8443"


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "auth0", "issuer": "https://tenant.auth0.com\\.evil.example/"},
        {"id": "auth0", "issuer": "https://tenant auth0.com/"},
        {"id": "auth0", "issuer": "https://user:pw@tenant.auth0.com/"},
    ],
)
def test_sso_issuer_hosts_are_strict(entry):
    problem = only_problem({**DEV, "ssoProviders": ["logto", entry]}, {"ssoAuth0ClientId": "i", "ssoAuth0ClientSecret": SECRET})
    assert problem.key == "lobechat-logto:ssoProviders[1].issuer"


def test_cognito_domain_is_a_host_name():
    entry = {"id": "cognito", "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/pool", "domain": "a b.example",
             "region": "eu-west-1", "userPoolId": "eu-west-1_abc"}
    values = {**DEV, "lobechatGeneration": "2", "ssoProviders": ["logto", entry]}
    problem = only_problem(values, {"ssoCognitoClientId": "i", "ssoCognitoClientSecret": SECRET})
    assert problem.key == "lobechat-logto:ssoProviders[1].domain"


@pytest.mark.parametrize(
    "url",
    [
        "ssh://-oProxyCommand=touch /tmp/x",
        "ssh://-oProxyCommand=id",
        "ssh://deploy:hunter2@prod.example.com",
        "tcp://user@docker.example.com:2376",
        "ssh://deploy@prod.example.com\n",
        "ssh://deploy@prod example.com",
        "ssh://-l@prod.example.com",
        "ssh://deploy@prod.example.com:99999",
        "ssh://deploy@prod.example.com/path",
        "unix://relative/docker.sock",
    ],
)
def test_docker_host_refuses_options_credentials_and_bad_hosts(url):
    problem = only_problem({**DEV, "dockerHost": url})
    assert problem.key == "lobechat-logto:dockerHost"
    assert "hunter2" not in problem.message


@pytest.mark.parametrize(
    "url", ["ssh://deploy@prod.example.com", "ssh://deploy@prod.example.com:2222", "tcp://docker.example.com:2376",
            "unix:///var/run/docker.sock", "ssh://203.0.113.9"],
)
def test_docker_host_accepts_ordinary_hosts(url):
    assert load({**DEV, "dockerHost": url}).docker_host == url


# --- 6. strict values -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({**DEV, "resourcePrefix": "lobechat\n"}, "resourcePrefix"),
        ({**DEV, "extraEnv": {"FEATURE_FLAGS\n": "x"}}, "extraEnv"),
        (logto(EXTERNAL_LOGTO, tenantId="abc123\n"), "logto.tenantId"),
        (logto(EXTERNAL_LOGTO, tenantId=12345), "logto.tenantId"),
        ({**DEV, "publish": {"bindAddress": "127.0.0.1\n"}}, "publish.bindAddress"),
        ({**DEV, "publish": {"bindAddress": "256.0.0.1"}}, "publish.bindAddress"),
        ({**DEV, "publish": {"bindAddress": "01.02.03.004"}}, "publish.bindAddress"),
        ({**DEV, "publish": {"bindAddress": "localhost"}}, "publish.bindAddress"),
        ({**DEV, "publish": {"lobechatPort": True}}, "publish.lobechatPort"),
        ({**PROD, "publish": {"lobechatPort": 3210.7}}, "publish.lobechatPort"),
        ({**PROD, "publish": {"lobechatPort": "1_000"}}, "publish.lobechatPort"),
        ({**PROD, "publish": {"lobechatPort": " 80"}}, "publish.lobechatPort"),
        ({**PROD, "publish": {"lobechatPort": 0}}, "publish.lobechatPort"),
        ({**DEV, "lobechatImage": "lobehub/lobe-chat-database:1.143.3 --privileged"}, "lobechatImage"),
        ({**DEV, "lobechatImage": "LobeHub/lobe-chat-database:1.143.3"}, "lobechatImage"),
        ({**DEV, "lobechatImage": "lobehub/lobe-chat-database@sha256:abc"}, "lobechatImage"),
        ({**DEV, "lobechatImage": "lobehub/lobe-chat-database:1.143.3\n"}, "lobechatImage"),
        ({**DEV, "postgres": {"image": "pgvector/pgvector:pg16 "}}, "postgres.image"),
        ({**DEV, "extraEnv": {"NOTE": "a\x00b"}}, "extraEnv.NOTE"),
        ({**DEV, "extraEnv": {"NOTE": "x" * 40000}}, "extraEnv.NOTE"),
        # Managed on the other generation: today a traceback from the environment builder.
        ({**DEV, "extraEnv": {"AUTH_SECRET": "x"}}, "extraEnv.AUTH_SECRET"),
        ({**DEV, "extraEnv": {"JWKS_KEY": "x"}}, "extraEnv.JWKS_KEY"),
        ({**DEV, "lobechatGeneration": "2", "extraEnv": {"AUTH_GITHUB_ID": "x"}}, "extraEnv.AUTH_GITHUB_ID"),
        ({**DEV, "lobechatGeneration": "2\n"}, "lobechatGeneration"),
        ({**DEV, "webhook": {"enabled": 1}}, "webhook.enabled"),
    ],
)
def test_loose_values_accepted_before_are_refused(values, key):
    # The M2M credentials only matter to the external-Logto cases; elsewhere they are unused keys.
    problem = only_problem(values, {"logtoM2mClientId": "id", "logtoM2mClientSecret": SECRET})
    assert problem.key == f"lobechat-logto:{key}"


def test_extra_secret_env_values_must_be_strings():
    problem = only_problem(DEV, {"extraSecretEnv": {"OPENAI_API_KEY": 12345}})
    assert problem.key == "lobechat-logto:extraSecretEnv.OPENAI_API_KEY"


def test_extra_secret_env_of_the_other_generation_is_refused_in_the_loader():
    problem = only_problem(DEV, {"extraSecretEnv": {"AUTH_SECRET": SECRET}})
    assert problem.key == "lobechat-logto:extraSecretEnv.AUTH_SECRET"


@pytest.mark.parametrize(
    "image",
    ["lobehub/lobe-chat-database:1.143.3", "docker.io/lobehub/lobe-chat-database:1.143.3",
     "registry.Example.com:5000/team/lobe-chat-database:v1.2",
     "lobehub/lobe-chat-database@sha256:" + "a" * 64],
)
def test_ordinary_image_references_are_accepted(image):
    assert load({**DEV, "lobechatImage": image}).lobechat_image == image


# --- 6/7. database URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://lobe:pa?{SECRET}@db.example.com/lobechat",
        f"postgresql://lobe:pa#{SECRET}@db.example.com/lobechat",
        f"postgresql://lobe:pa@{SECRET}@db.example.com/lobechat",
        f"postgresql://lobe:{SECRET}@db.example.com:0/lobechat",
        f"postgresql://lobe:{SECRET}@db.example.com:70000/lobechat",
        f"postgresql://lobe:{SECRET}@/lobechat",
        f"postgresql://lobe:{SECRET}@db.example.com/lobechat?sslmode=sometimes",
        f"postgresql://lobe:{SECRET}@db.example.com/lobechat\n",
    ],
)
def test_bad_database_urls_are_refused_without_quoting_any_part(url):
    secrets = {"postgresLogtoUrl": GOOD_DB, "postgresLobechatUrl": url}
    problem = only_problem({**DEV, "postgres": {"mode": "external"}}, secrets)
    assert problem.key == "lobechat-logto:postgresLobechatUrl"
    for part in (SECRET, "lobe:", "db.example.com", "lobechat?", "sometimes"):
        assert part not in problem.message, part


def test_percent_encoded_password_characters_are_accepted():
    env = libpq_environment("postgresql://lobe:a%3Fb%23c%40d@db.example.com:5432/lobechat?sslmode=verify-full")
    assert env["PGPASSWORD"] == "a?b#c@d" and env["PGSSLMODE"] == "verify-full"
