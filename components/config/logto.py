"""The ``logto`` section (where Logto runs) and the external Logto's M2M credentials."""

from __future__ import annotations

import re

from components.config.errors import Problems, secret_set_command
from components.config.fields import parse_origin, parse_bool, pinned_image, read_object, unknown_fields
from components.config.sources import ConfigSource
from components.config.stage import LOGTO_IMAGE, LogtoConfig, PublishConfig

KEYS = frozenset({"logto", "logtoM2mClientId", "logtoM2mClientSecret"})

_LOGTO_FIELDS = {"mode", "endpoint", "adminEndpoint", "image", "trustProxyHeader", "tenantId", "apiEndpoint"}


def read_logto(source: ConfigSource, problems: Problems, stack: str, require_https: bool) -> LogtoConfig | None:
    obj = read_object(source, problems, "logto")
    unknown_fields(problems, "logto", obj, _LOGTO_FIELDS)
    mode = str(obj.get("mode", "container"))
    if mode not in ("container", "external"):
        problems.add("logto.mode", "must be \"container\" (the stack runs Logto) or \"external\" (Logto Cloud or an existing Logto)")
        return None
    tenant_id = obj.get("tenantId")
    if tenant_id is not None:
        tenant_id = str(tenant_id)
        if not re.match(r"^[a-z0-9-]{1,64}$", tenant_id):
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
    image = LOGTO_IMAGE
    if "image" in obj:
        image = pinned_image(problems, "logto.image", obj["image"]) or LOGTO_IMAGE
    default_trust = endpoint is not None and endpoint.scheme == "https"
    trust = parse_bool(obj.get("trustProxyHeader"), "logto.trustProxyHeader", problems, default_trust)

    m2m_id = m2m_secret = None
    if mode == "external":
        m2m_id = source.get_secret("logtoM2mClientId")
        m2m_secret = source.get_secret("logtoM2mClientSecret")
        for key, value in (("logtoM2mClientId", m2m_id), ("logtoM2mClientSecret", m2m_secret)):
            if value is None:
                problems.add(
                    key,
                    "is required when logto.mode is \"external\" (an M2M application with the role "
                    f"'Logto Management API access'): run `{secret_set_command(key, stack)}`",
                )
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


