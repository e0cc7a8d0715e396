"""The LobeChat variable names the stack manages, per generation, and the names LobeChat 2.x refuses.

Plain data (importing only the SSO provider table), so both the config (which refuses these names in
``extraEnv`` / ``extraSecretEnv``) and the environment builder (:mod:`components.lobechat_env`) read it
without importing each other.
"""

from __future__ import annotations

from components.sso_providers import provider_env_vars

# The variables the stack always sets, per generation (ACCESS_CODE and other providers' come on top).
BASE_ENV_NAMES: dict[int, frozenset[str]] = {
    1: frozenset(
        {
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
    ),
    2: frozenset(
        {
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
    ),
}

_FORBIDDEN_2X_PREFIXES = (
    "NEXT_AUTH",
    "NEXTAUTH",
    "AZURE_AD_",
    "AUTH_AZURE_AD_",
    "AUTH_MICROSOFT_ENTRA_ID_",
    "ZITADEL_CLIENT_",
    "CLERK_",
    "NEXT_PUBLIC_CLERK_",
)
_FORBIDDEN_2X_NAMES = frozenset({"AUTH_URL", "NEXT_PUBLIC_AUTH_URL", "ACCESS_CODE", "NEXT_PUBLIC_SERVICE_MODE", "OIDC_JWKS_KEY"})


def forbidden_2x_reason(name: str, value: object) -> str | None:
    """Why a LobeChat 2.x container would exit on ``name`` (with ``value``), or None when it is fine.

    ``value`` is only inspected for ``APP_URL`` and only when it is a plain string.
    """
    if name in _FORBIDDEN_2X_NAMES:
        return f"the variable {name}"
    for prefix in _FORBIDDEN_2X_PREFIXES:
        if name.startswith(prefix):
            return f"a variable starting with {prefix} ({name})"
    if name == "APP_URL" and isinstance(value, str) and value.endswith("/"):
        return "an APP_URL ending in '/'"
    return None


def managed_env_names(generation: int) -> frozenset[str]:
    """Names the stack sets itself for ``generation`` (extraEnv may not override them)."""
    return BASE_ENV_NAMES[generation] | {"ACCESS_CODE"}


def managed_env_names_any_generation() -> frozenset[str]:
    """Every name the stack sets on either generation, SSO providers' variables included.

    ``extraEnv`` / ``extraSecretEnv`` may not use any of them: on the other generation they would
    either be overridden silently or make the environment one LobeChat refuses.
    """
    return managed_env_names(1) | managed_env_names(2) | frozenset(provider_env_vars(1) | provider_env_vars(2))
