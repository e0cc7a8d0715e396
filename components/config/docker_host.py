"""``dockerHost``: the Docker daemon the stage deploys to."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from components.config.errors import Problems
from components.config.fields import has_unsafe_characters, is_valid_host, parse_port
from components.config.sources import ConfigSource

KEYS = frozenset({"dockerHost"})

_SSH_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}", re.IGNORECASE)
_SOCKET_PATH = re.compile(r"/[A-Za-z0-9_./-]+")
_USAGE = (
    "must be a Docker host URL such as ssh://deploy@docker.example.com, tcp://docker.example.com:2376 "
    "or unix:///var/run/docker.sock"
)


def read_docker_host(source: ConfigSource, problems: Problems) -> str | None:
    raw = source.get("dockerHost")
    if raw is None or raw == "":
        return None
    problem = docker_host_problem(raw)
    if problem:
        problems.add("dockerHost", problem)
        return None
    return raw


def docker_host_problem(url: str) -> str | None:
    """Why ``url`` is not a safe Docker host URL, or None.

    The Docker provider hands an ``ssh://`` host to the ``ssh`` command: a host or user that starts
    with ``-`` would be read as an option (``ssh://-oProxyCommand=...`` runs a command), so both
    follow strict grammars. Passwords are refused (they would sit in the stack file in clear text;
    use an SSH key or agent), and so are paths, queries and fragments on network hosts.
    """
    if has_unsafe_characters(url):
        return f"{_USAGE}; no spaces or control characters"
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("ssh", "tcp", "unix", "npipe"):
        return _USAGE
    if scheme in ("unix", "npipe"):
        if not _SOCKET_PATH.fullmatch(rest) and not (scheme == "npipe" and re.fullmatch(r"//\./pipe/[A-Za-z0-9_.-]+", rest)):
            return f"{_USAGE}; a {scheme}:// URL takes an absolute socket path (letters, digits, '_', '.', '-', '/')"
        return None
    try:
        parts = urlsplit(url)
        port_text = parts.netloc.rpartition(":")[2] if parts.netloc.rpartition("]")[2].count(":") else ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return f"{_USAGE}; the port is not a number 1-65535"
    if parts.password is not None:
        return "must not contain a password (it would sit in the stack file in clear text); use an SSH key or agent"
    if parts.username is not None and (scheme != "ssh" or not _SSH_USER.fullmatch(parts.username)):
        if scheme != "ssh":
            return "must not contain credentials: a tcp:// host authenticates with TLS client certificates"
        return "has an invalid SSH user name (letters, digits, '_', '.', '-'; not starting with '-')"
    host = parts.hostname
    if not host or host.startswith("-") or not is_valid_host(host):
        return f"{_USAGE}; the host must be a DNS name or an IP address"
    if port_text and parse_port(port_text) is None:
        return f"{_USAGE}; the port is not a number 1-65535"
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in url or "#" in url:
        return f"{_USAGE}; no path, query or fragment"
    return None
