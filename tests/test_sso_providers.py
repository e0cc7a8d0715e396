"""The SSO provider table: variable names per generation as LobeChat's docs give them."""

from __future__ import annotations

import pytest

from components.lobechat_env import forbidden_2x_reason
from components.sso_providers import PROVIDERS, pascal_case, provider_env_vars

ISSUER_PROVIDERS = ["auth0", "authentik", "authelia", "zitadel", "casdoor", "keycloak", "okta", "generic-oidc", "cloudflare-zero-trust"]


def names(provider_id: str, generation: int) -> set[str]:
    return {f.env_var for f in PROVIDERS[provider_id].fields[generation]}


@pytest.mark.parametrize("provider_id", ISSUER_PROVIDERS)
def test_issuer_providers_use_id_secret_issuer_in_both_generations(provider_id):
    prefix = "AUTH_" + provider_id.upper().replace("-", "_")
    expected = {f"{prefix}_ID", f"{prefix}_SECRET", f"{prefix}_ISSUER"}
    assert names(provider_id, 1) == expected == names(provider_id, 2)


def test_google_variable_names_differ_by_generation():
    assert names("google", 1) == {"AUTH_GOOGLE_CLIENT_ID", "AUTH_GOOGLE_CLIENT_SECRET"}
    assert names("google", 2) == {"AUTH_GOOGLE_ID", "AUTH_GOOGLE_SECRET"}


def test_azure_ad_exists_only_in_1x_and_points_to_microsoft():
    spec = PROVIDERS["azure-ad"]
    assert names("azure-ad", 1) == {"AUTH_AZURE_AD_ID", "AUTH_AZURE_AD_SECRET", "AUTH_AZURE_AD_TENANT_ID"}
    assert not spec.supports(2) and spec.instead[2] == "microsoft"


def test_microsoft_exists_only_in_2x_with_optional_authority_url():
    spec = PROVIDERS["microsoft"]
    assert not spec.supports(1)
    optional = {f.env_var for f in spec.fields[2] if not f.required}
    assert optional == {"AUTH_MICROSOFT_AUTHORITY_URL"}


def test_cognito_2x_adds_domain_region_and_user_pool():
    assert names("cognito", 2) - names("cognito", 1) == {"AUTH_COGNITO_DOMAIN", "AUTH_COGNITO_REGION", "AUTH_COGNITO_USERPOOL_ID"}


def test_feishu_uses_app_id_and_app_secret():
    assert names("feishu", 1) == {"AUTH_FEISHU_APP_ID", "AUTH_FEISHU_APP_SECRET"}


def test_no_2x_provider_variable_stops_a_2x_container():
    assert [n for n in provider_env_vars(2) if forbidden_2x_reason(n, "")] == []


def test_secret_key_names_are_camel_case_per_provider():
    assert PROVIDERS["generic-oidc"].secret_key("clientSecret") == "ssoGenericOidcClientSecret"
    assert PROVIDERS["github"].secret_key("clientId") == "ssoGithubClientId"
    assert pascal_case("cloudflare-zero-trust") == "CloudflareZeroTrust"


def test_every_provider_but_logto_takes_both_credentials_from_secret_keys():
    for spec in PROVIDERS.values():
        for generation, fields in spec.fields.items():
            sources = {f.source for f in fields if f.from_secret_key}
            assert sources == (set() if spec.id == "logto" else {"clientId", "clientSecret"}), (spec.id, generation)
