"""Checks of LobeChat's environment that need no network: generation fit, providers, URLs, names, cookies.

Only variable names and non-secret URL values (``APP_URL``, ``NEXTAUTH_URL``, ``AUTH_LOGTO_ISSUER``)
ever appear in a result.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

from components.lobechat_env import forbidden_2x_reason
from components.sso_providers import provider_env_vars
from components.verification.report import CheckResult, failed, passed

PROVIDERS_VARIABLE = {1: "NEXT_AUTH_SSO_PROVIDERS", 2: "AUTH_SSO_PROVIDERS"}

# Names LobeChat reads that users misspell; a near miss of one of them is flagged.
_KNOWN_NAMES = frozenset(
    {
        "APP_URL", "NEXTAUTH_URL", "NEXT_AUTH_SECRET", "NEXT_AUTH_SSO_PROVIDERS", "AUTH_SECRET",
        "AUTH_SSO_PROVIDERS", "AUTH_LOGTO_ID", "AUTH_LOGTO_SECRET", "AUTH_LOGTO_ISSUER",
        "LOGTO_WEBHOOK_SIGNING_KEY", "KEY_VAULTS_SECRET", "DATABASE_URL", "DATABASE_DRIVER", "JWKS_KEY",
        "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_ENDPOINT", "S3_BUCKET", "S3_REGION",
        "S3_PUBLIC_DOMAIN", "S3_ENABLE_PATH_STYLE", "S3_SET_ACL", "NEXT_PUBLIC_S3_FILE_PATH",
        "OPENAI_API_KEY", "OPENAI_PROXY_URL",
    }
)


def _known_names() -> frozenset[str]:
    return _KNOWN_NAMES | frozenset(provider_env_vars(1)) | frozenset(provider_env_vars(2))


def check_generation(env: Mapping[str, str], generation: int) -> CheckResult:
    """Nothing that makes 2.x exit at start; no 2.x-only session variables on 1.x."""
    name = "environment-generation"
    if generation == 2:
        reasons = [reason for key, value in env.items() if (reason := forbidden_2x_reason(key, value))]
        if reasons:
            return failed(name, "LobeChat 2.x exits at start on " + "; ".join(sorted(reasons)),
                          "remove those variables (2.x derives the callback from APP_URL; see the README's 2.x notes)")
        missing = [key for key in ("AUTH_SECRET", "JWKS_KEY", "APP_URL") if not env.get(key)]
    else:
        other = sorted(set(env) & {"AUTH_SECRET", "AUTH_SSO_PROVIDERS", "JWKS_KEY"})
        if other:
            return failed(name, f"LobeChat 1.x environment carries 2.x variables: {', '.join(other)}",
                          "set lobechatGeneration: \"2\" with a 2.x image, or remove them")
        missing = [key for key in ("NEXT_AUTH_SECRET", "NEXTAUTH_URL", "APP_URL") if not env.get(key)]
    if missing:
        return failed(name, f"LobeChat {generation}.x needs {', '.join(missing)}", "set them (the stack sets them itself: run `pulumi up`)")
    return passed(name, f"fits LobeChat {generation}.x")


def check_providers(env: Mapping[str, str], generation: int) -> CheckResult:
    """``logto`` is among the providers, and its three variables are set."""
    name = "environment-providers"
    variable = PROVIDERS_VARIABLE.get(generation, "NEXT_AUTH_SSO_PROVIDERS")
    providers = [p.strip() for p in (env.get(variable) or "").split(",") if p.strip()]
    if "logto" not in providers:
        shown = ", ".join(providers) or ("unset: 1.x then defaults to auth0" if generation == 1 else "unset")
        return failed(name, f"{variable} does not list logto ({shown})", f"set {variable}=logto (and any other providers after it)")
    missing = [key for key in ("AUTH_LOGTO_ID", "AUTH_LOGTO_SECRET", "AUTH_LOGTO_ISSUER") if not env.get(key)]
    if missing:
        return failed(name, f"logto is listed but {', '.join(missing)} is empty", "set them from the Logto application (the stack does: run `pulumi up`)")
    return passed(name, f"{variable} lists logto; AUTH_LOGTO_ID/SECRET/ISSUER set")


def check_urls(env: Mapping[str, str], generation: int, app_url: str) -> CheckResult:
    """``APP_URL`` is the LobeChat URL (no trailing slash); 1.x ``NEXTAUTH_URL`` is ``<APP_URL>/api/auth``."""
    name = "environment-urls"
    actual = env.get("APP_URL", "")
    if actual != app_url:
        return failed(name, f"APP_URL is {actual!r}, the registered URIs derive from {app_url!r}",
                      "set APP_URL to the LobeChat URL exactly (no trailing slash); the stack derives it from lobechatUrl")
    if generation == 1:
        nextauth = env.get("NEXTAUTH_URL", "")
        if nextauth.rstrip("/") != f"{app_url}/api/auth":
            return failed(name, f"NEXTAUTH_URL is {nextauth!r}, sign-in would call back to another URL than {app_url}/api/auth/callback/logto",
                          f"set NEXTAUTH_URL={app_url}/api/auth")
    return passed(name, f"APP_URL{' and NEXTAUTH_URL' if generation == 1 else ''} match {app_url}")


def check_names(env: Mapping[str, str]) -> CheckResult:
    """No variable is a near miss of one LobeChat reads (``LOGTO_CLIENT_SECRETT``, ``AUTH_LOGTO_SECERT``)."""
    name = "environment-names"
    known = _known_names()
    suspicious = []
    for key in sorted(env):
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
        if close:
            suspicious.append(f"{key} (did you mean {close[0]}?)")
        elif "LOGTO" in key and key not in known:
            suspicious.append(f"{key} (LobeChat reads AUTH_LOGTO_ID, AUTH_LOGTO_SECRET, AUTH_LOGTO_ISSUER, LOGTO_WEBHOOK_SIGNING_KEY)")
    if suspicious:
        return failed(name, "LobeChat ignores misspelled variables: " + "; ".join(suspicious),
                      "rename them (a misspelled secret variable is the usual cause of invalid_client)")
    return passed(name, "no misspelled variable names")


def _is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_cookies(app_url: str, issuer: str) -> CheckResult:
    """A plain-http public URL: browsers drop the secure session cookies, sign-in loops."""
    name = "cookies-https"
    plain = []
    for label, url in (("the LobeChat URL", app_url), ("the issuer", issuer)):
        parts = urlsplit(url)
        if parts.scheme == "http" and not _is_loopback_host(parts.hostname or ""):
            plain.append(f"{label} {url}")
    if plain:
        return failed(name, "plain http on a non-loopback host: " + ", ".join(plain) + " (session cookies will not stick)",
                      "serve LobeChat and Logto over https behind a TLS proxy and set https:// URLs (requireHttps: true)")
    return passed(name, "https, or http on a loopback name only browsers treat as secure")


def environment_checks(env: Mapping[str, str], generation: int, app_url: str) -> list[CheckResult]:
    """Every environment check, in report order."""
    return [
        check_generation(env, generation),
        check_providers(env, generation),
        check_urls(env, generation, app_url),
        check_names(env),
        check_cookies(app_url, env.get("AUTH_LOGTO_ISSUER", "")),
    ]
