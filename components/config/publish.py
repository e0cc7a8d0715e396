"""The ``publish`` section: the host ports the containers publish and the address they bind."""

from __future__ import annotations

from components.config.errors import Problems
from components.config.fields import parse_bool, parse_ip, parse_port, read_object, unknown_fields
from components.config.sources import ConfigSource
from components.config.stage import (
    LOBECHAT_CONTAINER_PORT,
    LOGTO_DEFAULT_ADMIN_PORT,
    LOGTO_DEFAULT_PORT,
    LogtoConfig,
    Origin,
    PublishConfig,
)

KEYS = frozenset({"publish"})

_PUBLISH_FIELDS = {"enabled", "bindAddress", "lobechatPort", "logtoPort", "logtoAdminPort", "allowNonLoopbackBind"}


def read_publish(
    source: ConfigSource,
    problems: Problems,
    lobechat_url: Origin | None,
    logto: LogtoConfig | None,
    require_https: bool = False,
) -> PublishConfig | None:
    obj = read_object(source, problems, "publish")
    unknown_fields(problems, "publish", obj, _PUBLISH_FIELDS)
    enabled = parse_bool(obj.get("enabled"), "publish.enabled", problems, True)
    bind = obj.get("bindAddress", "127.0.0.1")
    address = parse_ip(bind)
    if address is None:
        problems.add("publish.bindAddress", "must be an IP address such as 127.0.0.1 (only the local proxy) or 0.0.0.0 (every interface)")
        bind = "127.0.0.1"
    allow_open = parse_bool(obj.get("allowNonLoopbackBind"), "publish.allowNonLoopbackBind", problems, False)
    if address is not None and not address.is_loopback and require_https and enabled and not allow_open:
        # Docker writes its own iptables rules for published ports: they bypass the host's firewall.
        problems.add(
            "publish.bindAddress",
            "is not a loopback address on a stage that requires https: ports Docker publishes bypass the "
            "host firewall, so LobeChat and Logto would be reachable over plain http, around your TLS proxy; "
            "use 127.0.0.1, or opt in with `pulumi config set --path lobechat-logto:publish.allowNonLoopbackBind true`",
        )

    def port(name: str, origin: Origin | None, default: int) -> int:
        # For *.localhost URLs the browser connects to the URL's port, so the published port must be it.
        wanted = origin.port if origin is not None and origin.is_localhost else default
        raw = obj.get(name)
        if raw is None:
            return wanted
        value = parse_port(raw)
        if value is None:
            problems.add(f"publish.{name}", "must be a port number: a whole number 1-65535")
            return wanted
        if origin is not None and origin.is_localhost and value != origin.port:
            problems.add(f"publish.{name}", f"must equal the port of the *.localhost URL it serves ({origin.port}); remove it")
        return value

    lobechat_port = port("lobechatPort", lobechat_url, LOBECHAT_CONTAINER_PORT)
    logto_port = port("logtoPort", logto.endpoint if logto else None, LOGTO_DEFAULT_PORT)
    admin_port = port("logtoAdminPort", logto.admin_endpoint if logto else None, LOGTO_DEFAULT_ADMIN_PORT)
    # Equal *.localhost ports of Logto's two URLs are already reported on logto.adminEndpoint.
    same_logto_urls = logto is not None and logto.endpoint.is_localhost and logto.admin_endpoint is not None \
        and logto.admin_endpoint.is_localhost and logto.endpoint.port == logto.admin_endpoint.port
    if enabled and not same_logto_urls:
        used = [lobechat_port] + ([logto_port, admin_port] if logto is not None and logto.mode == "container" else [])
        if len(set(used)) != len(used):
            problems.add("publish", "the published ports of LobeChat, Logto and the Logto admin console must differ")
    return PublishConfig(enabled, bind, lobechat_port, logto_port, admin_port)


