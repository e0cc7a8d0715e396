"""Caddy's JSON configuration, generated from the stage config (never written by hand).

Pure functions: :func:`front_sites` lists what the front serves (one site per public origin, with its
upstream and whether the public listener carries it), :func:`caddy_config` turns that into Caddy's
native JSON. The same function produces what the stack loads into its Caddy container and what the
tests load into a real Caddy on 127.0.0.1 (with the listen ports and upstreams remapped).

Listeners (inside the Caddy container):

- https names: ``:443`` is the *internal* listener (the public names are network aliases of Caddy, so
  LobeChat fetching the issuer, Logto calling its ``ADMIN_ENDPOINT`` and Logto delivering the webhook
  arrive there); ``:8443`` is the *public* listener (published as ``front.httpsPort``, 443) and
  ``:8080`` the public HTTP listener (published as ``front.httpPort``, 80) that redirects to https and
  answers ACME HTTP-01 challenges. A site that is not public (the Logto admin console when the stage
  does not expose it) is routed on the internal listener only, so Logto still reaches its own admin
  endpoint while the Internet does not.
- ``*.localhost`` names (dev): one plain-HTTP listener per URL port; a port is published on the host
  only when its site is public.

Every site answers exactly its own host name (``Host`` header, port ignored); any other host gets 404.
Upstreams are dialled by container name; requests that cannot reach an upstream (a container going
away or not yet listening) are retried for ``try_duration`` before failing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

INTERNAL_HTTPS_PORT = 443
PUBLIC_HTTPS_PORT = 8443
PUBLIC_HTTP_PORT = 8080
ADMIN_LISTEN = "127.0.0.1:2019"
"""Caddy's admin API: loopback inside Caddy's network namespace (shared only with the config writer)."""
STORAGE_ROOT = "/data/caddy"
CONFIG_DIR = "/etc/lobechat-logto-front"
TLS_CERT_FILE = f"{CONFIG_DIR}/tls/certificate.pem"
TLS_KEY_FILE = f"{CONFIG_DIR}/tls/private-key.pem"
HSTS_VALUE = "max-age=31536000"


@dataclass(frozen=True)
class Site:
    """One public origin the front serves."""

    role: str
    """``lobechat``, ``logto`` or ``logto-admin``."""
    scheme: str
    host: str
    port: int
    upstream: str
    """``host:port`` Caddy dials (a container name on the stage network)."""
    public: bool = True
    try_duration_s: int = 30
    health_uri: str | None = None


@dataclass(frozen=True)
class TlsSettings:
    """How https names get their certificates."""

    mode: str = "acme"
    acme_email: str | None = None
    acme_ca: str | None = None
    cert_file: str = TLS_CERT_FILE
    key_file: str = TLS_KEY_FILE


@dataclass(frozen=True)
class Listen:
    """Where Caddy listens (the stack uses the defaults; tests remap to free loopback ports)."""

    host: str = ""
    internal_https: int = INTERNAL_HTTPS_PORT
    public_https: int = PUBLIC_HTTPS_PORT
    public_http: int = PUBLIC_HTTP_PORT
    http_sites: Mapping[int, int] = field(default_factory=dict)
    """URL port of a ``*.localhost`` site -> port Caddy listens on (default: the same port)."""

    def addr(self, port: int) -> str:
        return f"{self.host}:{port}"

    def http_site_port(self, port: int) -> int:
        return self.http_sites.get(port, port)


def caddy_config(
    sites: Sequence[Site],
    *,
    tls: TlsSettings,
    hsts: bool,
    listen: Listen | None = None,
    admin: str = ADMIN_LISTEN,
    storage_root: str = STORAGE_ROOT,
    grace_period_s: int = 60,
) -> dict[str, Any]:
    """Caddy's JSON config for ``sites``."""
    listen = listen or Listen()
    _check_sites(sites)
    https = [s for s in sites if s.scheme == "https"]
    http = [s for s in sites if s.scheme == "http"]
    servers: dict[str, Any] = {}
    own = tls.mode == "files"
    if https:
        servers["https-internal"] = _server(
            [listen.addr(listen.internal_https)], https, hsts=hsts, tls=True, host_match=True, own_certs=own
        )
        servers["https-public"] = _server(
            [listen.addr(listen.public_https)], [s for s in https if s.public], hsts=hsts, tls=True, host_match=True,
            own_certs=own,
        )
        servers["http-public"] = {
            "listen": [listen.addr(listen.public_http)],
            "routes": [
                *(
                    [{
                        "match": [{"host": sorted({s.host for s in https if s.public})}],
                        "handle": [{
                            "handler": "static_response",
                            "status_code": 308,
                            "headers": {"Location": ["https://{http.request.host}{http.request.uri}"]},
                        }],
                        "terminal": True,
                    }]
                    if any(s.public for s in https) else []
                ),
                _not_found(),
            ],
            "automatic_https": {"disable": True},
        }
    for port in sorted({s.port for s in http}):
        on_port = [s for s in http if s.port == port]
        # One site on its own port (the dev pattern) answers any Host there, as the container did when
        # it published the port itself (`pulumi up` calls Logto at 127.0.0.1:<port>).
        servers[f"http-{port}"] = _server(
            [listen.addr(listen.http_site_port(port))], on_port, hsts=False, tls=False, host_match=len(on_port) > 1
        )

    http_app: dict[str, Any] = {
        "http_port": listen.public_http,
        "https_port": listen.public_https,
        "grace_period": f"{grace_period_s}s",
        "servers": servers,
    }
    config: dict[str, Any] = {
        "admin": {"listen": admin, "config": {"persist": False}},
        "storage": {"module": "file_system", "root": storage_root},
        "apps": {"http": http_app},
    }
    if https:
        config["apps"]["tls"] = _tls_app(sorted({s.host for s in https}), tls)
        if tls.mode == "internal":
            config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
    return config


def caddy_config_json(sites: Sequence[Site], **kwargs: Any) -> str:
    """:func:`caddy_config` as canonical JSON text (sorted keys: equal configs are equal strings)."""
    return json.dumps(caddy_config(sites, **kwargs), sort_keys=True, separators=(",", ":"))


def _check_sites(sites: Sequence[Site]) -> None:
    seen: set[tuple[str, str, int]] = set()
    for site in sites:
        key = (site.scheme, site.host, site.port)
        if key in seen:
            raise ValueError(f"two front sites for {site.scheme}://{site.host}:{site.port}")
        seen.add(key)
        if site.scheme not in ("http", "https"):
            raise ValueError(f"front site {site.host}: scheme must be http or https")


def _server(
    listen: list[str], sites: Sequence[Site], *, hsts: bool, tls: bool, host_match: bool, own_certs: bool = False
) -> dict[str, Any]:
    routes = [_route(site, hsts=hsts, host_match=host_match) for site in sites]
    server: dict[str, Any] = {"listen": listen, "routes": [*routes, _not_found()], "protocols": ["h1", "h2"]}
    if tls:
        # Certificates are managed by the tls app below; redirects are the http-public server's job.
        server["automatic_https"] = {"disable_redirects": True, **({"disable_certificates": True} if own_certs else {})}
        server["tls_connection_policies"] = [{}]
    else:
        server["automatic_https"] = {"disable": True}
    return server


def _route(site: Site, *, hsts: bool, host_match: bool) -> dict[str, Any]:
    handlers: list[dict[str, Any]] = []
    if hsts and site.scheme == "https":
        handlers.append({"handler": "headers", "response": {"set": {"Strict-Transport-Security": [HSTS_VALUE]}}})
    proxy: dict[str, Any] = {
        "handler": "reverse_proxy",
        "upstreams": [{"dial": site.upstream}],
        # A request that cannot reach the upstream (container restarting, replaced, not listening yet)
        # waits and is retried instead of failing at once.
        "load_balancing": {"try_duration": f"{site.try_duration_s}s", "try_interval": "250ms"},
    }
    if site.health_uri:
        proxy["health_checks"] = {
            "active": {"uri": site.health_uri, "interval": "5s", "timeout": "3s", "passes": 1, "fails": 2}
        }
    handlers.append(proxy)
    route: dict[str, Any] = {"handle": handlers, "terminal": True}
    if host_match:
        route["match"] = [{"host": [site.host]}]
    return route


def _not_found() -> dict[str, Any]:
    return {"handle": [{"handler": "static_response", "status_code": 404, "body": "unknown host\n"}], "terminal": True}


def _tls_app(hosts: list[str], tls: TlsSettings) -> dict[str, Any]:
    if tls.mode == "files":
        # The supplied certificate (secret config, written next to the config by the writer) serves
        # every name; the servers do not ask for others (automatic_https.disable_certificates).
        return {"certificates": {"load_files": [{"certificate": tls.cert_file, "key": tls.key_file, "tags": ["lobechat-logto"]}]}}
    if tls.mode == "internal":
        issuer: dict[str, Any] = {"module": "internal"}
    elif tls.mode == "acme":
        issuer = {"module": "acme"}
        if tls.acme_email:
            issuer["email"] = tls.acme_email
        if tls.acme_ca:
            issuer["ca"] = tls.acme_ca
    else:
        raise ValueError(f"unknown TLS mode {tls.mode!r}")
    return {"automation": {"policies": [{"subjects": hosts, "issuers": [issuer]}]}}
