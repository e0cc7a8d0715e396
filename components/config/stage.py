"""The typed configuration of one stage: frozen dataclasses built only by the loader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pulumi

from components.config.logto_database import LogtoDatabaseConfig
from components.config.verification import VerificationConfig
from components.config.storage import STORAGE_NONE, StorageConfig
from components.config.rotation import RotationConfig
if TYPE_CHECKING:  # data_safety imports errors, which imports this module
    from components.config.data_safety import DataSafetyConfig

if TYPE_CHECKING:
    from components.config.front import FrontConfig

NAMESPACE = "lobechat-logto"

LOBECHAT_IMAGES = {
    1: "lobehub/lobe-chat-database:1.143.3",
    2: "lobehub/lobehub:2.2.10",
}
"""Default LobeChat image per generation (the last 1.x; a pinned 2.x)."""

POSTGRES_IMAGES = {
    1: "pgvector/pgvector:pg16",
    2: "paradedb/paradedb:0.25.5-pg17",
}
"""Default Postgres image per generation: pgvector for 1.x, ParadeDB (pgvector + pg_search) for 2.x."""

LOGTO_IMAGE = "svhd/logto:1.43.0"
"""Pinned Logto image; ``@logto/cli`` 1.43.0 exists, so the bootstrap SQL is tested against its seed."""

LOBECHAT_CONTAINER_PORT = 3210
LOGTO_DEFAULT_PORT = 3001
LOGTO_DEFAULT_ADMIN_PORT = 3002




@dataclass(frozen=True)
class Origin:
    """A parsed origin URL (``scheme://host[:port]``, no trailing slash)."""

    url: str
    scheme: str
    host: str
    port: int
    explicit_port: bool

    @property
    def is_localhost(self) -> bool:
        """``*.localhost``: loopback in the browser, a network alias inside Docker (the dev pattern)."""
        return self.host == "localhost" or self.host.endswith(".localhost")


@dataclass(frozen=True)
class LobeChatUrls:
    """Every URL derived from the one LobeChat URL."""

    base: str

    @property
    def app_url(self) -> str:
        """``APP_URL``: the base, never with a trailing slash."""
        return self.base

    @property
    def nextauth_url(self) -> str:
        """``NEXTAUTH_URL`` (1.x): Auth.js callback base."""
        return f"{self.base}/api/auth"

    @property
    def redirect_uri(self) -> str:
        """The Logto application's redirect URI."""
        return f"{self.base}/api/auth/callback/logto"

    @property
    def post_sign_out_redirect_uri(self) -> str:
        """The Logto application's post sign-out redirect URI."""
        return f"{self.base}/"

    @property
    def cors_origin(self) -> str:
        """The Logto application's CORS allowed origin."""
        return self.base

    @property
    def webhook_url(self) -> str:
        """Where Logto delivers webhook events."""
        return f"{self.base}/api/webhooks/logto"


@dataclass(frozen=True)
class LogtoConfig:
    """Where Logto runs and how the stack reaches it.

    ``mode`` is ``container`` (the stack runs Logto) or ``external`` (Logto Cloud or an existing Logto,
    reached with the M2M credentials from secret config).
    """

    mode: str
    endpoint: Origin
    admin_endpoint: Origin | None
    image: str
    trust_proxy_header: bool
    tenant_id: str | None
    api_endpoint: str
    """Where this program (on the operator's machine) calls the Management API; see :func:`components.config.logto.api_endpoint_for`."""
    api_endpoint_explicit: bool
    m2m_client_id: pulumi.Input[str] | None = None
    m2m_client_secret: pulumi.Input[str] | None = None
    expose_admin_console: bool = True
    """``logto.exposeAdminConsole``: publish the admin console like the other ports (on
    ``publish.bindAddress``, reachable through the operator's proxy). When False (the default off the
    stack 'dev') its port is published on 127.0.0.1 only, ``ADMIN_ENDPOINT`` is that loopback address,
    and the console is reached through an SSH tunnel (README): nobody outside the Docker host can
    register the first administrator."""

    @property
    def admin_endpoint_url(self) -> str | None:
        """Logto's ``ADMIN_ENDPOINT``: the configured admin endpoint, or the loopback URL when closed."""
        if self.mode != "container":
            return self.admin_endpoint.url if self.admin_endpoint is not None else None
        if not self.expose_admin_console:
            return f"http://127.0.0.1:{self.container_admin_port}"
        return self.admin_endpoint.url if self.admin_endpoint is not None else None

    @property
    def issuer(self) -> str:
        """``<ENDPOINT>/oidc``: exactly the ``iss`` Logto advertises."""
        return f"{self.endpoint.url}/oidc"

    @property
    def admin_console_url(self) -> str | None:
        """The admin console's URL, when known (through the SSH tunnel when the console is closed)."""
        if self.admin_endpoint_url is not None:
            return f"{self.admin_endpoint_url}/console"
        if self.tenant_id and self.tenant_id != "default":
            return f"https://cloud.logto.io/{self.tenant_id}"
        return None

    @property
    def container_port(self) -> int:
        """Port Logto listens on inside its container (``PORT``)."""
        return self.endpoint.port if self.endpoint.is_localhost else LOGTO_DEFAULT_PORT

    @property
    def container_admin_port(self) -> int:
        """Port of the admin console inside the container (``ADMIN_PORT``)."""
        if self.admin_endpoint is not None and self.admin_endpoint.is_localhost:
            return self.admin_endpoint.port
        return LOGTO_DEFAULT_ADMIN_PORT


@dataclass(frozen=True)
class PostgresConfig:
    """The database: ``container`` (one Postgres for both) or ``external`` (secret connection strings)."""

    mode: str
    image: str
    command: tuple[str, ...]
    logto_database_url: pulumi.Input[str] | None = None
    lobechat_database_url: pulumi.Input[str] | None = None
    major: int | None = None
    """The PostgreSQL major of the stage's data (``dataSafety.postgresMajor``), for a container."""


@dataclass(frozen=True)
class SsoProvider:
    """One enabled SSO provider: its id as emitted for the generation and its variables."""

    id: str
    emitted_id: str
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishConfig:
    """Host ports the containers publish (dev: the browser's ports; prod: for the operator's proxy)."""

    enabled: bool
    bind_address: str
    lobechat_port: int
    logto_port: int
    logto_admin_port: int


@dataclass(frozen=True)
class MemoryLimits:
    """Memory limit per container, MiB (``memoryLimits``; see :mod:`components.config.memory`)."""

    postgres: int = 1024
    logto: int = 1024
    lobechat: int = 2048
    one_shot: int = 256


@dataclass(frozen=True)
class StageConfig:
    """Everything one stage needs, validated. Built by :func:`load_stage_config` only."""

    stack: str
    generation: int
    lobechat_image: str
    lobechat_url: Origin
    urls: LobeChatUrls
    logto: LogtoConfig
    postgres: PostgresConfig
    sso_providers: tuple[SsoProvider, ...]
    access_code: pulumi.Input[str] | None
    publish: PublishConfig
    docker_host: str | None
    extra_env: Mapping[str, str]
    extra_secret_env: Mapping[str, pulumi.Input[str]]
    webhook_enabled: bool
    require_https: bool
    resource_prefix: str
    proxy_on_docker_host: bool = False
    front: FrontConfig | None = None
    """The front door (``front.*``); None only for configs built by hand (treated as ``none``)."""
    health_start_interval: bool = False
    """``dockerHealthStartInterval``: Docker Engine 25+, health checks get a 1 s start interval."""
    memory_limits: MemoryLimits = field(default_factory=MemoryLimits)
    verification: VerificationConfig = field(default_factory=VerificationConfig)
    logto_database: LogtoDatabaseConfig = field(default_factory=LogtoDatabaseConfig)
    storage: StorageConfig = STORAGE_NONE
    rotation: RotationConfig = field(default_factory=RotationConfig)
    data_safety: DataSafetyConfig | None = None

    @property
    def proxied_host_names(self) -> tuple[str, ...]:
        """Public host names the containers reach through the proxy on the Docker host.

        Empty unless ``proxyOnDockerHost`` is on; ``*.localhost`` names are network aliases instead, and
        an external Logto's names are not on this host.
        """
        if not self.proxy_on_docker_host:
            return ()
        origins = [self.lobechat_url]
        if self.logto.mode == "container":
            origins.append(self.logto.endpoint)
            if self.logto.admin_endpoint is not None and self.logto.expose_admin_console:
                origins.append(self.logto.admin_endpoint)
        names: list[str] = []
        for origin in origins:
            if not origin.is_localhost and origin.host not in names:
                names.append(origin.host)
        return tuple(names)

    @property
    def lobechat_proxied_host_names(self) -> tuple[str, ...]:
        """:attr:`proxied_host_names` plus the storage's public name (LobeChat's server calls S3 there)."""
        names = list(self.proxied_host_names)
        storage = self.storage
        if self.proxy_on_docker_host and storage.mode == "container" and storage.public_host \
                and not storage.public_host_is_localhost and storage.public_host not in names:
            names.append(storage.public_host)
        return tuple(names)

    @property
    def webhook_events(self) -> tuple[str, ...]:
        """The events LobeChat handles (it answers 400 to any other)."""
        if self.generation == 2:
            return ("User.Data.Updated", "User.SuspensionStatus.Updated")
        return ("User.Data.Updated",)
