"""Checks shared by every config section: booleans, ports, host names, IPs, origin URLs, images.

Every check matches the whole value (never a prefix: a trailing newline is refused like any other
character) and checks the type first (a YAML ``true`` is not a port, ``3210.7`` is not one either).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from components.config.errors import Problems, full_key, secret_set_command
from components.config.sources import ConfigSource
from components.config.stage import Origin


def parse_bool(value: Any, key: str, problems: Problems, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        problems.add(key, "must be true or false")
        return default
    text = value.lower()
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


_NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[^:@\[\]/]+)(?::[0-9]{1,5})?")


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
    if not isinstance(raw, str):
        problems.add(key, f"must be a URL string, like {example}")
        return None
    if has_unsafe_characters(raw):
        # urlsplit silently drops tabs and newlines, and a space or a backslash in a host name ends up
        # in /etc/hosts entries and redirect URIs: refuse them before parsing.
        problems.add(
            key,
            "must not contain spaces, control characters or non-ASCII characters (write an international "
            f"name in punycode, xn--...); expected an origin like {example}",
        )
        return None
    text = raw
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
    if not _NETLOC.fullmatch(parts.netloc):
        problems.add(key, f"is not a valid URL (host[:port] expected after the scheme); expected an origin like {example}")
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
    if not is_valid_host(host):
        problems.add(key, f"has an invalid host name: it {HOST_RULE}")
        return None
    if port == 0:
        problems.add(key, "has port 0; use a port number 1-65535 or none")
        return None
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
    problem = image_reference_problem(image)
    if problem is not None:
        problems.add(key, problem)
        return None
    _, tag = split_image(image)
    if "@" not in image and tag in ("", "latest"):
        problems.add(
            key,
            f"must pin a version (a tag other than 'latest', or a digest): an unpinned image changes under "
            f"you on the next pull (got '{image}')",
        )
        return None
    return image




# --- host names, IP addresses, ports --------------------------------------------------------------

_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_UNSAFE_TEXT = re.compile(r"[^\x21-\x7e]")

HOST_RULE = (
    "must be a DNS name (letters, digits, '-' and '.'; punycode 'xn--...' for international names) "
    "or an IP address"
)


def has_unsafe_characters(text: str) -> bool:
    """True when ``text`` holds whitespace, a control character or anything outside printable ASCII."""
    return bool(_UNSAFE_TEXT.search(text))


def parse_ip(text: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address as :mod:`ipaddress` reads it (no ``256.0.0.1``, no ``01.02.03.004``), else None."""
    if not isinstance(text, str) or has_unsafe_characters(text):
        return None
    candidate = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return None
    if text.startswith("[") and address.version != 6:
        return None
    if "%" in candidate:  # a zone id is local to one machine, and an injection point for /etc/hosts
        return None
    return address


def is_dns_name(host: Any) -> bool:
    """A host name by the DNS grammar: dot-separated labels of ``a-z 0-9 -`` (1-63, no edge hyphen).

    The last label may not be all digits (``256.0.0.1`` is a bad IP address, not a name).
    """
    if not isinstance(host, str) or not host or len(host) > 253:
        return False
    labels = host.split(".")
    if not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return False
    return not labels[-1].isdigit()


def is_valid_host(host: Any) -> bool:
    """A DNS name (lower-case, as URL parsing leaves it) or an IP address (IPv6 without brackets)."""
    if not isinstance(host, str):
        return False
    if ":" in host:
        address = parse_ip(host)
        return address is not None and address.version == 6
    return parse_ip(host) is not None or is_dns_name(host)


def parse_port(value: Any) -> int | None:
    """A TCP port 1-65535 from an integer or a string of digits; None for anything else.

    Refused: booleans (``True`` is an int in Python), floats (``3210.7``), ``"1_000"``, ``" 80"``, ``"+80"``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        number = int(value)
    else:
        return None
    return number if 1 <= number <= 65535 else None


# --- Docker image references ----------------------------------------------------------------------

# Docker's reference grammar (distribution/reference): [domain[:port]/]path[:tag][@digest]; path
# components are lower-case; upper case is allowed only in the registry's domain.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?)"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
_IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?"
)


def image_reference_problem(image: str) -> str | None:
    """Why ``image`` is not a pinned Docker image reference, or None when it is one."""
    match = _IMAGE_REFERENCE.fullmatch(image)
    if match is None:
        return (
            "is not a Docker image reference ([registry/]repository:tag or ...@sha256:<64 hex>; the "
            "repository in lower case, no spaces)"
        )
    domain = match.group("domain")
    if domain is not None and not ("." in domain or ":" in domain or domain == "localhost"):
        # Docker reads such a first component as part of the repository path, where upper case is invalid.
        if domain != domain.lower():
            return "has an upper-case repository name; Docker repositories are lower case"
    if len((f"{domain}/" if domain else "") + match.group("path")) > 255:
        return "has a repository name longer than 255 characters"
    return None


# --- secret keys ----------------------------------------------------------------------------------


def read_secret(source: ConfigSource, problems: Problems, key: str, stack: str) -> tuple[bool, Any]:
    """``(present, value)`` of a secret key; ``value`` is None when absent or refused.

    Refused, with the command to run: a value set without ``--secret`` (it sits in clear text in the
    committed stack file) and an empty or whitespace-only value. The value is never quoted.
    """
    value = source.get_secret(key)
    if value is None:
        return False, None
    if not source.is_secret(key):
        problems.add(
            key,
            "is stored in clear text in the stack file (it was set without --secret); set it again as a "
            f"secret: `{secret_set_command(key, stack)}`",
        )
        return True, None
    text = source.peek_secret(key)
    if text is None or not str(text).strip():
        problems.add(key, f"is empty or only whitespace; set the real value: `{secret_set_command(key, stack)}`")
        return True, None
    return True, value


def check_url(raw: Any, key: str, problems: Problems, require_https: bool, *, what: str) -> str | None:
    """An http(s) URL that may have a path (an OIDC issuer), kept exactly as written; None if refused.

    Same host rules as origins: no whitespace, control or non-ASCII characters, a DNS name or an IP
    address, no credentials, no fragment; https where the stage requires it.
    """
    if not isinstance(raw, str) or not raw:
        problems.add(key, f"must be an http(s) URL (the provider's {what})")
        return None
    if has_unsafe_characters(raw) or "\\" in raw:
        problems.add(key, "must not contain spaces, backslashes, control or non-ASCII characters (punycode for international names)")
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        problems.add(key, f"is not a valid URL (the provider's {what})")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or not raw.startswith(f"{parts.scheme}://"):
        problems.add(key, f"must be an http(s) URL (the provider's {what})")
        return None
    if parts.username is not None or parts.password is not None or not _NETLOC.fullmatch(parts.netloc):
        problems.add(key, "must be scheme://host[:port]/path, without credentials")
        return None
    if not is_valid_host(parts.hostname) or port == 0:
        problems.add(key, f"has an invalid host name: it {HOST_RULE}")
        return None
    if parts.fragment or "#" in raw:
        problems.add(key, "must not have a fragment")
        return None
    if require_https and parts.scheme != "https":
        problems.add(key, "must use https:// on this stage (requireHttps is on; the stack 'prod' always requires it)")
        return None
    return raw
