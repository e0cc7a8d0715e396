"""The ``logto`` section (where Logto runs) and the external Logto's M2M credentials."""

from __future__ import annotations

import re

from components.config.errors import Problems, secret_set_command
from components.config.fields import (
    parse_bool,
    parse_ip,
    parse_origin,
    pinned_image,
    read_object,
    read_secret,
    unknown_fields,
)
from components.config.sources import ConfigSource
from components.config.stage import LOGTO_IMAGE, LogtoConfig, PublishConfig

KEYS = frozenset({"logto", "logtoM2mClientId", "logtoM2mClientSecret"})

_LOGTO_FIELDS = {
    "mode", "endpoint", "adminEndpoint", "image", "trustProxyHeader", "tenantId", "apiEndpoint", "exposeAdminConsole",
}
_TENANT_ID = re.compile(r"[a-z0-9-]{1,64}")


def is_loopback_host(host: str) -> bool:
    """``localhost``, ``*.localhost`` or a loopback IP address (127.0.0.0/8, ::1)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = parse_ip(host)
    return address is not None and address.is_loopback


def admin_console_default(stack: str) -> bool:
    """The admin console is reachable from outside the Docker host by default only on the stack 'dev'."""
    return stack == "dev"


def read_logto(source: ConfigSource, problems: Problems, stack: str, require_https: bool) -> LogtoConfig | None:
    obj = read_object(source, problems, "logto")
    unknown_fields(problems, "logto", obj, _LOGTO_FIELDS)
    mode = str(obj.get("mode", "container"))
    if mode not in ("container", "external"):
        problems.add("logto.mode", "must be \"container\" (the stack runs Logto) or \"external\" (Logto Cloud or an existing Logto)")
        return None
    tenant_id = obj.get("tenantId")
    if tenant_id is not None:
        if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
            problems.add("logto.tenantId", "must be the Logto tenant id (lower-case letters, digits, '-')")
            tenant_id = None
    raw_endpoint = obj.get("endpoint")
    if raw_endpoint is None and tenant_id and mode == "external":
        raw_endpoint = f"https://{tenant_id}.logto.app"
    endpoint = parse_origin(
        raw_endpoint, "logto.endpoint", problems, require_https, required=True,
        example="https://auth.example.com",
    )
    admin_endpoint = parse_origin(
        obj.get("adminEndpoint"), "logto.adminEndpoint", problems, require_https,
        required=(mode == "container"), example="https://auth-admin.example.com",
    )
    if endpoint and admin_endpoint and endpoint.url == admin_endpoint.url:
        problems.add("logto.adminEndpoint", "must differ from logto.endpoint (Logto serves the admin console on its own port)")
    api_raw = obj.get("apiEndpoint")
    api_endpoint = parse_origin(api_raw, "logto.apiEndpoint", problems, False, required=False, example="http://127.0.0.1:3001")
    if api_endpoint is not None and require_https and api_endpoint.scheme != "https" and not is_loopback_host(api_endpoint.host):
        # The M2M client secret and the Management API token travel to this address.
        api_endpoint = None
        problems.add(
            "logto.apiEndpoint",
            "must use https:// on this stage (requireHttps is on): the M2M secret and the Management API "
            "token travel to it; plain http is allowed only to a loopback address (127.0.0.1, ::1, localhost)",
        )
    image = LOGTO_IMAGE
    if "image" in obj:
        image = pinned_image(problems, "logto.image", obj["image"]) or LOGTO_IMAGE
    # Logto's container serves plain http, so an https endpoint means a TLS proxy in front of it: only
    # then are X-Forwarded-* headers the proxy's and not a client's.
    default_trust = endpoint is not None and endpoint.scheme == "https"
    trust = parse_bool(obj.get("trustProxyHeader"), "logto.trustProxyHeader", problems, default_trust)
    if trust and endpoint is not None and endpoint.is_localhost:
        problems.add(
            "logto.trustProxyHeader",
            "cannot be true for a *.localhost endpoint: the browser talks to the container directly, so "
            "X-Forwarded-* headers would come from clients; remove it",
        )
        trust = False
    expose_admin = parse_bool(
        obj.get("exposeAdminConsole"), "logto.exposeAdminConsole", problems, admin_console_default(stack)
    )
    if mode == "external" and "exposeAdminConsole" in obj:
        problems.add("logto.exposeAdminConsole", "only applies when logto.mode is \"container\"; remove it")

    m2m_id = m2m_secret = None
    if mode == "external":
        # The client id is an identifier, not a credential: it may be set plain; the secret may not.
        required = (
            "is required when logto.mode is \"external\" (an M2M application with the role "
            "'Logto Management API access'): run `{}`"
        )
        m2m_id = source.get_secret("logtoM2mClientId")
        if m2m_id is None:
            problems.add("logtoM2mClientId", required.format(secret_set_command("logtoM2mClientId", stack)))
        elif not str(source.peek_secret("logtoM2mClientId") or "").strip():
            problems.add("logtoM2mClientId", f"is empty; run `{secret_set_command('logtoM2mClientId', stack)}`")
            m2m_id = None
        present, m2m_secret = read_secret(source, problems, "logtoM2mClientSecret", stack)
        if not present:
            problems.add("logtoM2mClientSecret", required.format(secret_set_command("logtoM2mClientSecret", stack)))
    else:
        if tenant_id not in (None, "default"):
            problems.add("logto.tenantId", "only applies to an external Logto (Logto Cloud); remove it or set logto.mode to \"external\"")
        for origin, key in ((endpoint, "logto.endpoint"), (admin_endpoint, "logto.adminEndpoint")):
            if origin is not None and origin.is_localhost and not origin.explicit_port:
                problems.add(key, f"a *.localhost URL needs an explicit port, e.g. 'http://{origin.host}:3001'")
                return None
        if endpoint and admin_endpoint and endpoint.is_localhost and admin_endpoint.is_localhost:
            if endpoint.port == admin_endpoint.port:
                problems.add("logto.adminEndpoint", "must use a different port from logto.endpoint")
    if endpoint is None:
        return None
    return LogtoConfig(
        mode=mode,
        endpoint=endpoint,
        admin_endpoint=admin_endpoint,
        image=image,
        trust_proxy_header=trust,
        tenant_id=tenant_id,
        api_endpoint=api_endpoint.url if api_endpoint else endpoint.url,
        api_endpoint_explicit=api_endpoint is not None,
        m2m_client_id=m2m_id,
        m2m_client_secret=m2m_secret,
        expose_admin_console=expose_admin if mode == "container" else False,
    )


def api_endpoint_for(logto: LogtoConfig, publish: PublishConfig) -> str:
    # The program's own calls come from the operator's machine, where a *.localhost name may not
    # resolve (that is up to the OS resolver, unlike browsers); the published port on 127.0.0.1 is the
    # same Logto. Logto serves its default tenant on any host name that is not its admin endpoint, and
    # issues tokens with its configured issuer, so the API answers the same there.
    if logto.api_endpoint_explicit or logto.mode != "container" or not logto.endpoint.is_localhost:
        return logto.api_endpoint
    if not publish.enabled:
        return logto.api_endpoint
    address = "127.0.0.1" if publish.bind_address in ("0.0.0.0", "127.0.0.1") else publish.bind_address
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    return f"http://{address}:{publish.logto_port}"


