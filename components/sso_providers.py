"""LobeChat's SSO providers as data: provider id -> environment variable names, per generation.

Read from LobeChat's source at 1.143.3 (Auth.js) and 2.2.10 (Better Auth); see
``../shared/docs/lobechat.md``. The table is the single place that knows variable names, so a
misspelled name (the classic ``invalid_client``) can only be fixed here, once.

Each provider takes its credentials from two config keys named after it
(``lobechat-logto:sso<Name>ClientId`` and ``...ClientSecret``, set with
``pulumi config set --secret``) and its non-secret settings (issuer, tenant id, ...) from its entry in
``lobechat-logto:ssoProviders``. ``logto`` is special: the stack creates its application, so its
variables come from the Logto resources, not from config.
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class ProviderField:
    """One environment variable of a provider and where its value comes from.

    Attributes:
        env_var: the variable LobeChat reads.
        source: ``"clientId"`` / ``"clientSecret"`` (secret config keys) or the name of a setting in the
            provider's ``ssoProviders`` entry (``"issuer"``, ``"tenantId"``, ...).
        required: whether LobeChat needs it; a missing required value is a config error.
    """

    env_var: str
    source: str
    required: bool = True

    @property
    def from_secret_key(self) -> bool:
        """True when the value comes from a secret config key rather than the provider entry."""
        return self.source in ("clientId", "clientSecret")


@dataclass(frozen=True)
class ProviderSpec:
    """One SSO provider id as the user writes it in ``ssoProviders``.

    Attributes:
        id: the id in config (``github``, ``azure-ad``, ...).
        fields: per generation, the variables it emits; a generation missing from the mapping does not
            know this id.
        emitted_id: per generation, the id written into ``NEXT_AUTH_SSO_PROVIDERS`` /
            ``AUTH_SSO_PROVIDERS`` (2.x accepts ``microsoft-entra-id`` as an alias of ``microsoft``;
            the canonical id is emitted).
        instead: per generation that does not know the id, the id to use instead (for the error).
    """

    id: str
    fields: dict[int, tuple[ProviderField, ...]]
    emitted_id: dict[int, str]
    instead: dict[int, str]

    def supports(self, generation: int) -> bool:
        """True when LobeChat of this generation knows the id."""
        return generation in self.fields

    def secret_key(self, source: str) -> str:
        """Config key (without namespace) holding ``source`` (``clientId`` / ``clientSecret``)."""
        return f"sso{pascal_case(self.id)}{source[0].upper()}{source[1:]}"


def pascal_case(provider_id: str) -> str:
    """``generic-oidc`` -> ``GenericOidc``: the provider's part of its config key names."""
    return "".join(part[:1].upper() + part[1:] for part in provider_id.split("-"))


def _issuer_provider(provider_id: str) -> ProviderSpec:
    prefix = "AUTH_" + provider_id.upper().replace("-", "_")
    fields = (
        ProviderField(f"{prefix}_ID", "clientId"),
        ProviderField(f"{prefix}_SECRET", "clientSecret"),
        ProviderField(f"{prefix}_ISSUER", "issuer"),
    )
    return ProviderSpec(provider_id, {1: fields, 2: fields}, {1: provider_id, 2: provider_id}, {})


def _build_table() -> dict[str, ProviderSpec]:
    table: dict[str, ProviderSpec] = {}
    for provider_id in (
        "auth0",
        "authentik",
        "authelia",
        "zitadel",
        "casdoor",
        "keycloak",
        "okta",
        "generic-oidc",
        "cloudflare-zero-trust",
    ):
        table[provider_id] = _issuer_provider(provider_id)

    # Logto's variables come from the application the stack creates (see lobechat_env.py).
    table["logto"] = ProviderSpec("logto", {1: (), 2: ()}, {1: "logto", 2: "logto"}, {})

    github = (ProviderField("AUTH_GITHUB_ID", "clientId"), ProviderField("AUTH_GITHUB_SECRET", "clientSecret"))
    table["github"] = ProviderSpec("github", {1: github, 2: github}, {1: "github", 2: "github"}, {})

    table["google"] = ProviderSpec(
        "google",
        {
            1: (
                ProviderField("AUTH_GOOGLE_CLIENT_ID", "clientId"),
                ProviderField("AUTH_GOOGLE_CLIENT_SECRET", "clientSecret"),
            ),
            2: (ProviderField("AUTH_GOOGLE_ID", "clientId"), ProviderField("AUTH_GOOGLE_SECRET", "clientSecret")),
        },
        {1: "google", 2: "google"},
        {},
    )

    table["azure-ad"] = ProviderSpec(
        "azure-ad",
        {
            1: (
                ProviderField("AUTH_AZURE_AD_ID", "clientId"),
                ProviderField("AUTH_AZURE_AD_SECRET", "clientSecret"),
                ProviderField("AUTH_AZURE_AD_TENANT_ID", "tenantId"),
            )
        },
        {1: "azure-ad"},
        {2: "microsoft"},
    )
    microsoft_2x = (
        ProviderField("AUTH_MICROSOFT_ID", "clientId"),
        ProviderField("AUTH_MICROSOFT_SECRET", "clientSecret"),
        ProviderField("AUTH_MICROSOFT_TENANT_ID", "tenantId"),
        ProviderField("AUTH_MICROSOFT_AUTHORITY_URL", "authorityUrl", required=False),
    )
    table["microsoft"] = ProviderSpec("microsoft", {2: microsoft_2x}, {2: "microsoft"}, {1: "azure-ad"})
    table["microsoft-entra-id"] = ProviderSpec(
        "microsoft-entra-id",
        {
            1: (
                ProviderField("AUTH_MICROSOFT_ENTRA_ID_ID", "clientId"),
                ProviderField("AUTH_MICROSOFT_ENTRA_ID_SECRET", "clientSecret"),
                ProviderField("AUTH_MICROSOFT_ENTRA_ID_TENANT_ID", "tenantId"),
            ),
            2: microsoft_2x,
        },
        {1: "microsoft-entra-id", 2: "microsoft"},
        {},
    )

    cognito_1x = (
        ProviderField("AUTH_COGNITO_ID", "clientId"),
        ProviderField("AUTH_COGNITO_SECRET", "clientSecret"),
        ProviderField("AUTH_COGNITO_ISSUER", "issuer"),
    )
    table["cognito"] = ProviderSpec(
        "cognito",
        {
            1: cognito_1x,
            2: cognito_1x
            + (
                ProviderField("AUTH_COGNITO_DOMAIN", "domain"),
                ProviderField("AUTH_COGNITO_REGION", "region"),
                ProviderField("AUTH_COGNITO_USERPOOL_ID", "userPoolId"),
            ),
        },
        {1: "cognito", 2: "cognito"},
        {},
    )

    wechat = (ProviderField("AUTH_WECHAT_ID", "clientId"), ProviderField("AUTH_WECHAT_SECRET", "clientSecret"))
    table["wechat"] = ProviderSpec("wechat", {1: wechat, 2: wechat}, {1: "wechat", 2: "wechat"}, {})
    feishu = (
        ProviderField("AUTH_FEISHU_APP_ID", "clientId"),
        ProviderField("AUTH_FEISHU_APP_SECRET", "clientSecret"),
    )
    table["feishu"] = ProviderSpec("feishu", {1: feishu, 2: feishu}, {1: "feishu", 2: "feishu"}, {})
    return table


PROVIDERS: dict[str, ProviderSpec] = _build_table()
"""Every provider id this package knows, whatever the generation."""


def provider_ids() -> list[str]:
    """All known provider ids, sorted (for error messages)."""
    return sorted(PROVIDERS)


def provider_env_vars(generation: int) -> set[str]:
    """Every variable any provider can emit in ``generation`` (Logto's own come from lobechat_env)."""
    return {f.env_var for spec in PROVIDERS.values() if spec.supports(generation) for f in spec.fields[generation]}
