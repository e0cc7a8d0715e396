"""The environment checks (no network): generation fit, providers, URLs, misspelled names, cookies."""

from __future__ import annotations

import pytest

from components.verification.environment import check_cookies, check_generation, check_names, check_providers, check_urls

APP = "https://chat.example.com"
GEN1 = {"APP_URL": APP, "NEXTAUTH_URL": f"{APP}/api/auth", "NEXT_AUTH_SECRET": "s", "NEXT_AUTH_SSO_PROVIDERS": "logto",
        "AUTH_LOGTO_ID": "id", "AUTH_LOGTO_SECRET": "secret", "AUTH_LOGTO_ISSUER": "https://auth.example.com/oidc"}
GEN2 = {"APP_URL": APP, "AUTH_SECRET": "s", "JWKS_KEY": "{}", "AUTH_SSO_PROVIDERS": "logto",
        "AUTH_LOGTO_ID": "id", "AUTH_LOGTO_SECRET": "secret", "AUTH_LOGTO_ISSUER": "https://auth.example.com/oidc"}


def test_the_stacks_environments_fit_their_generation():
    assert check_generation(GEN1, 1).passed and check_generation(GEN2, 2).passed


@pytest.mark.parametrize("name", ["NEXTAUTH_URL", "NEXT_AUTH_SECRET", "AUTH_URL", "ACCESS_CODE", "AZURE_AD_CLIENT_ID"])
def test_a_variable_that_makes_2x_exit_fails(name):
    result = check_generation({**GEN2, name: "x"}, 2)
    assert not result.passed and name in result.detail


def test_a_trailing_slash_app_url_makes_2x_exit():
    assert not check_generation({**GEN2, "APP_URL": APP + "/"}, 2).passed


def test_2x_variables_on_1x_fail():
    assert not check_generation({**GEN1, "JWKS_KEY": "{}"}, 1).passed


def test_logto_missing_from_providers_fails_and_1x_default_is_named():
    result = check_providers({k: v for k, v in GEN1.items() if k != "NEXT_AUTH_SSO_PROVIDERS"}, 1)
    assert not result.passed and "auth0" in result.detail
    assert check_providers({**GEN2, "AUTH_SSO_PROVIDERS": "github,logto"}, 2).passed


def test_app_url_and_nextauth_url_must_match_the_lobechat_url():
    assert check_urls(GEN1, 1, APP).passed
    assert not check_urls({**GEN1, "APP_URL": "http://0.0.0.0:3210"}, 1, APP).passed
    assert not check_urls({**GEN1, "NEXTAUTH_URL": "http://0.0.0.0:3210/api/auth"}, 1, APP).passed
    assert check_urls(GEN2, 2, APP).passed


@pytest.mark.parametrize("name,meant", [("LOGTO_CLIENT_SECRETT", None), ("AUTH_LOGTO_SECERT", "AUTH_LOGTO_SECRET"),
                                        ("AUTH_LOGTO_ISSUR", "AUTH_LOGTO_ISSUER"), ("NEXTAUTH_ULR", "NEXTAUTH_URL")])
def test_misspelled_variables_are_flagged(name, meant):
    result = check_names({**GEN1, name: "value-never-shown"})
    assert not result.passed and name in result.detail and "value-never-shown" not in result.detail
    if meant:
        assert meant in result.detail


def test_correct_names_pass():
    assert check_names({**GEN1, "OPENAI_API_KEY": "x", "S3_BUCKET": "b"}).passed


@pytest.mark.parametrize("url", ["http://192.168.1.20:3210", "http://chat.lan:3210"])
def test_plain_http_on_a_lan_host_is_flagged(url):
    result = check_cookies(url, "https://auth.example.com/oidc")
    assert not result.passed and "cookies" in result.detail


@pytest.mark.parametrize("url", ["http://lobe.localhost:3210", "http://127.0.0.1:3210", "https://chat.example.com"])
def test_https_or_loopback_passes(url):
    assert check_cookies(url, "http://auth.localhost:3001/oidc").passed
