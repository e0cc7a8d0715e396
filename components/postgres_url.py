"""PostgreSQL connection URLs: parsed the way libpq reads them, without ever quoting them back.

Used by the stage config (to reject a malformed external database URL before anything is declared)
and by the Logto bootstrap (to hand the URL to psql as ``PG*`` environment variables, so the password
never sits on a command line).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote


# libpq connection parameters that have an environment variable (PostgreSQL 15-17 docs, "Environment
# Variables"). A URL parameter without one cannot be passed without a command line, so it is refused.
_LIBPQ_ENV = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "channel_binding": "PGCHANNELBINDING",
    "service": "PGSERVICE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "requiressl": "PGREQUIRESSL",
    "sslcompression": "PGSSLCOMPRESSION",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR",
    "sslsni": "PGSSLSNI",
    "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION",
    "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE",
    "krbsrvname": "PGKRBSRVNAME",
    "gsslib": "PGGSSLIB",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "load_balance_hosts": "PGLOADBALANCEHOSTS",
}


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def libpq_environment(database_url: str) -> dict[str, str]:
    """Split a ``postgres(ql)://`` URL into libpq's ``PG*`` environment variables.

    The URL's password then reaches psql through its environment instead of its command line.
    Raises ValueError whose message completes "the URL …" (e.g. "must start with postgresql://"),
    so each caller can name its own setting; it never quotes the URL, which holds a password.
    """
    if not isinstance(database_url, str):
        raise ValueError("must be a postgresql:// URL string")
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise ValueError("must start with postgresql:// or postgres://")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in database_url):
        raise ValueError("contains a control character (a line break?)")
    # A '?', '#' or '@' in the password must be percent-encoded (%3F, %23, %40); unencoded, libpq and
    # this parser would split the URL elsewhere and part of the password would become a host name or a
    # parameter name, which must never be quoted back.
    authority_end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    if "#" in database_url or rest.count("@") > 1 or "@" in rest[authority_end:]:
        raise ValueError(
            "has an unencoded '?', '#' or '@' (in the password?): percent-encode them as %3F, %23 and %40"
        )
    rest, _, query = rest.partition("?")
    authority, slash, database = rest.partition("/")
    userinfo, at, hostlist = authority.rpartition("@")
    if not at:
        hostlist = authority
    env: dict[str, str] = {}
    if userinfo:
        user, colon, password = userinfo.partition(":")
        if user:
            env["PGUSER"] = unquote(user)
        if colon:
            env["PGPASSWORD"] = unquote(password)
    hosts: list[str] = []
    ports: list[str] = []
    for entry in hostlist.split(",") if hostlist else []:
        if entry.startswith("["):
            host, bracket, after = entry[1:].partition("]")
            if not bracket or (after and not after.startswith(":")):
                raise ValueError("has a malformed IPv6 host (expected [address]:port)")
            port = after[1:]
        else:
            host, _, port = entry.partition(":")
        if port and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError("has a port that is not a number 1-65535")
        hosts.append(unquote(host))
        ports.append(port)
    if any(hosts):
        env["PGHOST"] = ",".join(hosts)
    if any(ports):
        env["PGPORT"] = ",".join(ports)
    if slash and database:
        env["PGDATABASE"] = unquote(database)
    for key, value in parse_qsl(query, keep_blank_values=True):
        variable = _LIBPQ_ENV.get(key)
        if variable is None:
            # Named only when it looks like a parameter name: the checks above keep the password out
            # of the query, and anything else is not quoted at all.
            name = f" {key!r}" if key.isascii() and key.replace("_", "").isalpha() and len(key) <= 40 else ""
            raise ValueError(
                f"has the parameter{name}, which has no libpq environment variable (and cannot be passed to psql "
                f"without a command line); supported: {', '.join(sorted(_LIBPQ_ENV))}"
            )
        if key == "sslmode" and value not in _SSLMODES:
            raise ValueError(f"has an sslmode that libpq does not know; use one of {', '.join(_SSLMODES)}")
        if key == "port" and not (value.isascii() and value.isdigit() and 1 <= int(value) <= 65535):
            raise ValueError("has a port that is not a number 1-65535")
        env[variable] = value
    return env
