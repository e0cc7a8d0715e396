"""Checks shared by every config section: booleans, mappings, unknown fields, origin URLs, images."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from components.config.errors import Problems, full_key
from components.config.sources import ConfigSource
from components.config.stage import Origin


def parse_bool(value: Any, key: str, problems: Problems, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    problems.add(key, "must be true or false")
    return default


def read_object(source: ConfigSource, problems: Problems, key: str) -> dict[str, Any]:
    try:
        value = source.get_object(key)
    except Exception:  # pulumi raises on malformed JSON; say which key, not the parser's text
        problems.add(key, "is not valid structured config (YAML mapping expected)")
        return {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add(key, "must be a mapping (YAML object) of settings")
        return {}
    return value


def unknown_fields(problems: Problems, key: str, obj: Mapping[str, Any], known: set[str]) -> None:
    for name in obj:
        if name not in known:
            problems.add(f"{key}.{name}", f"unknown setting; the settings of {key} are: {', '.join(sorted(known))}")


def parse_origin(
    raw: Any,
    key: str,
    problems: Problems,
    require_https: bool,
    *,
    required: bool,
    example: str,
    trailing_slash_error: bool = False,
) -> Origin | None:
    if raw is None or str(raw).strip() == "":
        if required:
            path = " --path" if "." in key else ""
            problems.add(key, f"is required: set it with `pulumi config set{path} {full_key(key)} {example}`")
        return None
    text = str(raw).strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        problems.add(key, f"is not a valid URL; expected an origin like {example}")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "://" not in text:
        problems.add(key, f"must be an http:// or https:// URL with a host name, like {example}")
        return None
    if parts.username is not None or parts.password is not None:
        problems.add(key, "must not contain credentials (user:password@)")
        return None
    if parts.query or parts.fragment or "?" in text or "#" in text:
        problems.add(key, f"must not have a query or fragment; expected an origin like {example}")
        return None
    if parts.path == "/":
        if trailing_slash_error:
            problems.add(
                key,
                "must not end with '/': LobeChat 2.x exits at start when APP_URL ends with a slash; "
                f"set it to '{text.rstrip('/')}'",
            )
            return None
    elif parts.path:
        problems.add(
            key,
            f"must be an origin without a path (got path '{parts.path}'); the stack appends the paths it "
            f"needs; use '{parts.scheme}://{parts.netloc}'",
        )
        return None
    if require_https and parts.scheme != "https":
        problems.add(
            key,
            f"must use https:// on this stage (requireHttps is on; the stack 'prod' always requires it); "
            f"use 'https://{parts.netloc}' behind your TLS proxy",
        )
        return None
    host = parts.hostname.lower()
    if parts.scheme == "https" and (host == "localhost" or host.endswith(".localhost")):
        problems.add(
            key,
            "a *.localhost name is served directly by the container over plain http; use http:// for "
            "*.localhost names, or a real host name behind a TLS proxy",
        )
        return None
    default_port = 443 if parts.scheme == "https" else 80
    bracketed = f"[{host}]" if ":" in host else host
    netloc = bracketed if port is None else f"{bracketed}:{port}"
    return Origin(
        url=f"{parts.scheme}://{netloc}",
        scheme=parts.scheme,
        host=host,
        port=port if port is not None else default_port,
        explicit_port=port is not None,
    )


def split_image(image: str) -> tuple[str, str]:
    """``repo:tag@digest`` -> (``repo``, ``tag``); the tag is "" when absent."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last, tag = last.split(":", 1)
    else:
        tag = ""
    return (f"{head}/{last}" if head else last), tag


def pinned_image(problems: Problems, key: str, image: Any) -> str | None:
    if not isinstance(image, str) or not image.strip():
        problems.add(key, "must be an image reference like 'repository:tag'")
        return None
    image = image.strip()
    _, tag = split_image(image)
    if "@" not in image and tag in ("", "latest"):
        problems.add(
            key,
            f"must pin a version (a tag other than 'latest', or a digest): an unpinned image changes under "
            f"you on the next pull (got '{image}')",
        )
        return None
    return image


