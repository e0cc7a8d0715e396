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
        if port and not port.isdigit():
            raise ValueError("has a port that is not a number")
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
            raise ValueError(
                f"has the parameter {key!r}, which has no libpq environment variable and cannot be "
                f"passed to psql without a command line; supported: {', '.join(sorted(_LIBPQ_ENV))}"
            )
        env[variable] = value
    return env
