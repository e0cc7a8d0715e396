"""What the front serves for one stage: one :class:`Site` per public origin, from the stage config."""

from __future__ import annotations

from components.config import LOBECHAT_CONTAINER_PORT, Origin, StageConfig
from components.config.front import storage_origin
from components.front.caddy_config import Site
from components.front.exposure import admin_console_exposed

LOBECHAT_TRY_SECONDS = 30
"""How long a LobeChat request waits for an upstream it can reach (a replaced container going away)."""
LOGTO_TRY_SECONDS = 60
"""How long a sign-in request waits for Logto while its container restarts (an image bump: seed and
alterations run before it listens again)."""


def lobechat_health_uri(generation: int) -> str | None:
    """2.x answers ``GET /api/version`` 200; 1.x has no health route (its ``/`` redirects), so none."""
    return "/api/version" if generation == 2 else None


STORAGE_TRY_SECONDS = 30


def front_sites(
    config: StageConfig, *, lobechat_upstream: str, logto_upstream_host: str | None,
    storage_upstream_host: str | None = None,
) -> list[Site]:
    """The sites of ``config``: LobeChat, Logto's endpoint and admin endpoint when the stack runs Logto,
    and the S3 endpoint when the stack runs its S3 server.

    ``lobechat_upstream`` is ``host:port`` of the LobeChat container to route to;
    ``logto_upstream_host`` the Logto container's name (None for an external Logto: not routed);
    ``storage_upstream_host`` the S3 server's container name (None: not routed).
    """
    sites = [
        _site("lobechat", config.lobechat_url, lobechat_upstream, public=True,
              try_s=LOBECHAT_TRY_SECONDS, health=lobechat_health_uri(config.generation))
    ]
    logto = config.logto
    if logto.mode == "container" and logto_upstream_host is not None:
        sites.append(_site("logto", logto.endpoint, f"{logto_upstream_host}:{logto.container_port}",
                           public=True, try_s=LOGTO_TRY_SECONDS))
        if logto.admin_endpoint is not None and admin_console_exposed(config):
            # A closed console is not routed at all: Logto's ADMIN_ENDPOINT is then its own loopback
            # port and operators reach it through an SSH tunnel (`logtoAdminTunnel`).
            sites.append(_site("logto-admin", logto.admin_endpoint,
                               f"{logto_upstream_host}:{logto.container_admin_port}",
                               public=True, try_s=LOGTO_TRY_SECONDS))
    storage = getattr(config, "storage", None)
    origin = storage_origin(storage)
    if origin is not None and storage_upstream_host is not None:
        # Caddy keeps the Host header: presigned URLs are signed for the public name.
        sites.append(_site("storage", origin, f"{storage_upstream_host}:{storage.container_port}",
                           public=True, try_s=STORAGE_TRY_SECONDS))
    return sites


def lobechat_upstream(container_name: str) -> str:
    return f"{container_name}:{LOBECHAT_CONTAINER_PORT}"


def public_host_names(sites: list[Site]) -> list[str]:
    """Every site's host name once, in order: the network aliases of the Caddy container."""
    names: list[str] = []
    for site in sites:
        if site.host not in names:
            names.append(site.host)
    return names


def _site(role: str, origin: Origin, upstream: str, *, public: bool, try_s: int, health: str | None = None) -> Site:
    return Site(role=role, scheme=origin.scheme, host=origin.host, port=origin.port, upstream=upstream,
                public=public, try_duration_s=try_s, health_uri=health)
