"""The ``rotation`` section of a stage: how old each secret may get, and one-shot rotation requests.

```yaml
lobechat-logto:rotation:
  maxAge:                      # a secret older than this rotates at the next `pulumi up`
    clientSecret: 90d          # the Logto application's client secret (AUTH_LOGTO_SECRET)
    webhookSigningKey: 90d     # the webhook's signing key (LOGTO_WEBHOOK_SIGNING_KEY)
    postgresPassword: 90d      # LobeChat's and Logto's Postgres logins (postgres.mode container only)
    m2mSecret: 90d             # the bootstrap M2M secret the stack manages Logto with (logto.mode container)
  expiryGrace: 30d             # a rotated client secret expires in Logto maxAge + expiryGrace after
                               # it was made (safety net if the old one is never deleted)
  rotateNow:                   # a new value (any word, e.g. today's date) rotates that secret once
    clientSecret: "2026-12-01"
```

Durations are a whole number and a unit: ``s``, ``m``, ``h``, ``d`` (``90d``, ``12h``), or ``never``.
``sessionSecret`` rotates only on request (``rotateNow``): it signs users out on LobeChat 1.x.
``keyVaultsSecret`` never rotates: it encrypts the API keys users stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # errors imports stage, which imports this module
    from components.config.errors import Problems
    from components.config.sources import ConfigSource
    from components.config.stage import LogtoConfig

KEYS = frozenset({"rotation"})

CLIENT_SECRET = "clientSecret"
WEBHOOK_SIGNING_KEY = "webhookSigningKey"
SESSION_SECRET = "sessionSecret"
KEY_VAULTS_SECRET = "keyVaultsSecret"
M2M_SECRET = "m2mSecret"
POSTGRES_PASSWORD = "postgresPassword"

SCHEDULABLE = (CLIENT_SECRET, WEBHOOK_SIGNING_KEY, M2M_SECRET, POSTGRES_PASSWORD)
"""Secrets that may have a ``maxAge`` (rotated by a scheduled ``pulumi up``)."""
REQUESTABLE = (CLIENT_SECRET, WEBHOOK_SIGNING_KEY, SESSION_SECRET, M2M_SECRET, POSTGRES_PASSWORD)
"""Secrets that ``rotateNow`` may name."""
KNOWN_SECRETS = (*REQUESTABLE, KEY_VAULTS_SECRET)

DEFAULT_EXPIRY_GRACE_SECONDS = 30 * 86400
MIN_MAX_AGE_SECONDS = 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhd])\s*$")
_REQUEST_TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:+-]{0,63}$")
_FIELDS = {"maxAge", "expiryGrace", "rotateNow", "awsSecretsManager"}
_AWS_FIELDS = {"region", "clientSecretName", "webhookSigningKeyName", "endpointUrl"}
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_AWS_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")

KEY_VAULTS_REFUSAL = (
    "KEY_VAULTS_SECRET is never rotated: LobeChat encrypts every API key users stored in its database "
    "with it, and this stack does not re-encrypt them, so a new value would make all of them unreadable "
    "(every user would have to enter them again); remove it"
)
SESSION_SCHEDULE_REFUSAL = (
    "the session secret rotates only on explicit request: on LobeChat 1.x (JWT sessions) a new "
    "NEXT_AUTH_SECRET signs every user out; use rotation.rotateNow.sessionSecret when you mean it"
)
POSTGRES_EXTERNAL_REFUSAL = (
    "postgresPassword rotation needs postgres.mode 'container': with an external database this stack "
    "does not manage its roles or passwords (rotate them where the database is run, then update "
    "postgres.lobechatDatabaseUrl / postgres.logtoDatabaseUrl); remove it"
)
M2M_EXTERNAL_REFUSAL = (
    "m2mSecret rotation needs logto.mode 'container': with an external Logto the Management API "
    "credential is yours (logto.m2mClientId / logto.m2mClientSecret), and this stack cannot create its "
    "successor; remove it, rotate the secret in the Logto console (Applications -> the M2M app -> "
    "add a new secret), set logto.m2mClientSecret to it with `pulumi config set --secret`, run "
    "`pulumi up`, then delete the old secret in the console"
)


@dataclass(frozen=True)
class SecretPolicy:
    """When one secret rotates: ``max_age_seconds`` (None: never by age) and the current ``request``."""

    max_age_seconds: int | None = None
    request: str | None = None

    @property
    def enabled(self) -> bool:
        """True when this secret can rotate at all (a schedule or a request)."""
        return self.max_age_seconds is not None or self.request is not None


@dataclass(frozen=True)
class AwsPublication:
    """Where the current client secret and signing key are published in AWS Secrets Manager."""

    region: str
    client_secret_name: str | None = None
    webhook_signing_key_name: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True)
class RotationConfig:
    """The rotation policy of one stage (the ``rotation`` config section)."""

    client_secret: SecretPolicy = field(default_factory=SecretPolicy)
    webhook_signing_key: SecretPolicy = field(default_factory=SecretPolicy)
    session_secret: SecretPolicy = field(default_factory=SecretPolicy)
    postgres_password: SecretPolicy = field(default_factory=SecretPolicy)
    m2m_secret: SecretPolicy = field(default_factory=SecretPolicy)
    expiry_grace_seconds: int = DEFAULT_EXPIRY_GRACE_SECONDS
    aws: AwsPublication | None = None

    def policy(self, secret: str) -> SecretPolicy:
        """The policy of ``clientSecret`` / ``webhookSigningKey`` / ``sessionSecret`` / ``m2mSecret``."""
        return {
            CLIENT_SECRET: self.client_secret,
            WEBHOOK_SIGNING_KEY: self.webhook_signing_key,
            SESSION_SECRET: self.session_secret,
            POSTGRES_PASSWORD: self.postgres_password,
            M2M_SECRET: self.m2m_secret,
        }[secret]

    def client_secret_lifetime_seconds(self) -> int | None:
        """How long a rotated client secret stays valid in Logto (None: no expiry without a maxAge)."""
        age = self.client_secret.max_age_seconds
        return None if age is None else age + self.expiry_grace_seconds

    def m2m_secret_lifetime_seconds(self) -> int | None:
        """How long a rotated M2M secret stays valid in Logto (None: no expiry without a maxAge)."""
        age = self.m2m_secret.max_age_seconds
        return None if age is None else age + self.expiry_grace_seconds


def parse_duration(value: Any) -> int | None:
    """``90d`` / ``12h`` / ``30m`` / ``45s`` -> seconds; ``never`` / null -> None; else ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError("must be a duration such as '90d', '12h' or 'never' (a number alone has no unit)")
    if value.strip().lower() == "never":
        return None
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration; write a whole number and a unit (s, m, h, d), e.g. '90d'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """Seconds as the largest whole unit that fits (``90d``, ``36h``), for reasons and messages."""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and (seconds % size == 0 or seconds >= 10 * size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _mapping(problems: Problems, key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(key, "must be a mapping of secret name -> value")
        return {}
    return value


def read_rotation(
    source: ConfigSource, problems: Problems, logto: LogtoConfig | None, webhook_enabled: bool,
    postgres: Any = None,
) -> RotationConfig:
    """The ``rotation`` section of ``source`` (see :func:`load_rotation`); ``postgres``: the PostgresConfig."""
    from components.config.fields import read_object

    return load_rotation(
        read_object(source, problems, "rotation"), problems,
        logto_container=logto is not None and logto.mode == "container", webhook_enabled=webhook_enabled,
        postgres_container=postgres is None or getattr(postgres, "mode", "container") == "container",
    )


def load_rotation(
    obj: Mapping[str, Any], problems: Problems, *, logto_container: bool, webhook_enabled: bool,
    postgres_container: bool = True,
) -> RotationConfig:
    """Validate the ``rotation`` object (already read as a mapping); every problem names its key."""
    for name in obj:
        if name not in _FIELDS:
            problems.add(f"rotation.{name}", f"unknown setting; the settings of rotation are: {', '.join(sorted(_FIELDS))}")

    ages: dict[str, int | None] = {}
    for secret, raw in _mapping(problems, "rotation.maxAge", obj.get("maxAge")).items():
        key = f"rotation.maxAge.{secret}"
        if secret == KEY_VAULTS_SECRET:
            problems.add(key, KEY_VAULTS_REFUSAL)
        elif secret == SESSION_SECRET:
            problems.add(key, SESSION_SCHEDULE_REFUSAL)
        elif secret not in SCHEDULABLE:
            problems.add(key, f"unknown secret; the secrets with a maxAge are: {', '.join(SCHEDULABLE)}")
        else:
            try:
                seconds = parse_duration(raw)
            except ValueError as exc:
                problems.add(key, str(exc))
                continue
            if seconds is not None and seconds < MIN_MAX_AGE_SECONDS:
                problems.add(key, "must be at least 1h (a rotation replaces the LobeChat container)")
                continue
            ages[secret] = seconds

    requests: dict[str, str] = {}
    for secret, raw in _mapping(problems, "rotation.rotateNow", obj.get("rotateNow")).items():
        key = f"rotation.rotateNow.{secret}"
        if secret == KEY_VAULTS_SECRET:
            problems.add(key, KEY_VAULTS_REFUSAL)
        elif secret not in REQUESTABLE:
            problems.add(key, f"unknown secret; rotateNow takes: {', '.join(REQUESTABLE)}")
        elif raw is None:
            continue
        elif isinstance(raw, bool) or not _REQUEST_TOKEN.match(str(raw)):
            problems.add(
                key,
                "must be a short word (letters, digits, . _ : + -), e.g. today's date; a new value rotates "
                "the secret once at the next `pulumi up`",
            )
        else:
            requests[secret] = str(raw)

    grace = DEFAULT_EXPIRY_GRACE_SECONDS
    if obj.get("expiryGrace") is not None:
        try:
            parsed = parse_duration(obj.get("expiryGrace"))
        except ValueError as exc:
            problems.add("rotation.expiryGrace", str(exc))
        else:
            if parsed is None or parsed < 86400:
                problems.add(
                    "rotation.expiryGrace",
                    "must be at least 1d: it is how long a missed scheduled run may be late before the "
                    "client secret expires in Logto",
                )
            else:
                grace = parsed

    webhook = SecretPolicy(ages.get(WEBHOOK_SIGNING_KEY), requests.get(WEBHOOK_SIGNING_KEY))
    if webhook.enabled and not webhook_enabled:
        problems.add("rotation", "webhookSigningKey is set but webhook.enabled is false; remove it")
    elif webhook.enabled and not logto_container:
        problems.add(
            "rotation",
            "webhookSigningKey rotation needs logto.mode 'container': during the overlap each of the two "
            "hooks delivers to the LobeChat container holding its key by that container's network alias, "
            "which an external Logto cannot reach; remove it (rotate the key in the Logto console instead)",
        )
    postgres_password = SecretPolicy(ages.get(POSTGRES_PASSWORD), requests.get(POSTGRES_PASSWORD))
    if postgres_password.enabled and not postgres_container:
        where = "maxAge" if POSTGRES_PASSWORD in ages else "rotateNow"
        problems.add(f"rotation.{where}.{POSTGRES_PASSWORD}", POSTGRES_EXTERNAL_REFUSAL)
        postgres_password = SecretPolicy()
    m2m = SecretPolicy(ages.get(M2M_SECRET), requests.get(M2M_SECRET))
    if m2m.enabled and not logto_container:
        where = "maxAge" if M2M_SECRET in ages else "rotateNow"
        problems.add(f"rotation.{where}.{M2M_SECRET}", M2M_EXTERNAL_REFUSAL)
        m2m = SecretPolicy()
    return RotationConfig(
        client_secret=SecretPolicy(ages.get(CLIENT_SECRET), requests.get(CLIENT_SECRET)),
        m2m_secret=m2m,
        webhook_signing_key=webhook,
        session_secret=SecretPolicy(None, requests.get(SESSION_SECRET)),
        postgres_password=postgres_password,
        expiry_grace_seconds=grace,
        aws=_aws(obj.get("awsSecretsManager"), problems, webhook_enabled),
    )


def _aws(value: Any, problems: Problems, webhook_enabled: bool) -> AwsPublication | None:
    """``rotation.awsSecretsManager``: publish the current client secret / signing key (boto3)."""
    if value is None:
        return None
    key = "rotation.awsSecretsManager"
    if not isinstance(value, Mapping):
        problems.add(key, "must be a mapping with region, clientSecretName and/or webhookSigningKeyName")
        return None
    for name in value:
        if name not in _AWS_FIELDS:
            problems.add(f"{key}.{name}", f"unknown setting; the settings of {key} are: {', '.join(sorted(_AWS_FIELDS))}")
    region = value.get("region")
    ok = True
    if not isinstance(region, str) or not _AWS_REGION.match(region):
        problems.add(f"{key}.region", "must be an AWS region such as eu-central-1")
        ok = False
    names = {}
    for field_name in ("clientSecretName", "webhookSigningKeyName"):
        raw = value.get(field_name)
        if raw is None:
            continue
        if not isinstance(raw, str) or not _AWS_SECRET_NAME.match(raw):
            problems.add(f"{key}.{field_name}", "must be a Secrets Manager secret name (letters, digits, /_+=.@-)")
            ok = False
        names[field_name] = raw
    if not names and ok:
        problems.add(key, "names nothing to publish: set clientSecretName and/or webhookSigningKeyName")
        ok = False
    if "webhookSigningKeyName" in names and not webhook_enabled:
        problems.add(f"{key}.webhookSigningKeyName", "webhook.enabled is false: there is no signing key to publish")
        ok = False
    endpoint = value.get("endpointUrl")
    if endpoint is not None and (not isinstance(endpoint, str) or not re.match(r"^https?://[^\s/]+(:\d+)?/?$", endpoint)):
        problems.add(f"{key}.endpointUrl", "must be an http(s) origin (a Secrets Manager-compatible endpoint)")
        ok = False
    if not ok:
        return None
    return AwsPublication(region=region, client_secret_name=names.get("clientSecretName"),
                          webhook_signing_key_name=names.get("webhookSigningKeyName"), endpoint_url=endpoint)
