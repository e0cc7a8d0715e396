"""How the bootstrap container invokes psql: URL splitting, arguments, exit checks, script invariants.

Plain Python, no database: the real-database behaviour is in test_logto_bootstrap_sql.py.
"""

from __future__ import annotations

import re

import pytest

from components.logto_bootstrap import (
    MANAGEMENT_ROLE_NAME,
    SECRET_ENV_VAR,
    LogtoBootstrapError,
    bootstrap_environment,
    bootstrap_sql,
    check_bootstrap_exit,
    management_link_id,
    psql_arguments,
    readable_container_logs,
    validate_id,
)
from components.postgres_url import libpq_environment

SECRET = "aSecretOfSufficientLength0123"


def test_url_is_split_into_libpq_variables() -> None:
    env = libpq_environment("postgresql://logto:pw@postgres:5432/logto")

    assert env == {
        "PGUSER": "logto",
        "PGPASSWORD": "pw",
        "PGHOST": "postgres",
        "PGPORT": "5432",
        "PGDATABASE": "logto",
    }


def test_percent_encoded_parts_are_decoded() -> None:
    env = libpq_environment("postgres://us%40er:p%3Aw%2Fd%40%25@db.example.com/my%20db")

    assert env["PGUSER"] == "us@er"
    assert env["PGPASSWORD"] == "p:w/d@%"
    assert env["PGDATABASE"] == "my db"


def test_query_parameters_map_to_their_variables() -> None:
    env = libpq_environment("postgresql://u:p@ep-x.neon.tech/neondb?sslmode=require&connect_timeout=5")

    assert env["PGSSLMODE"] == "require"
    assert env["PGCONNECT_TIMEOUT"] == "5"


def test_ipv6_and_multiple_hosts_are_kept() -> None:
    env = libpq_environment("postgresql://u:p@[::1]:5433,db2:5434/x")

    assert env["PGHOST"] == "::1,db2"
    assert env["PGPORT"] == "5433,5434"


def test_url_without_credentials_sets_no_user_or_password() -> None:
    env = libpq_environment("postgresql://postgres/logto")

    assert "PGUSER" not in env and "PGPASSWORD" not in env
    assert env["PGHOST"] == "postgres"


def test_non_postgres_url_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError, match="must start with postgresql://") as raised:
        libpq_environment("mysql://u:hunter2secret@db/x")
    assert "hunter2secret" not in str(raised.value)


def test_unsupported_url_parameter_is_named_and_the_url_not_quoted() -> None:
    with pytest.raises(ValueError, match="'keepalives'") as raised:
        libpq_environment("postgresql://u:hunter2secret@db/x?keepalives=1")
    assert "hunter2secret" not in str(raised.value)


def test_non_numeric_port_is_refused() -> None:
    with pytest.raises(ValueError, match="port that is not a number"):
        libpq_environment("postgresql://u:p@db:abc/x")


def test_environment_carries_the_secret_and_timeouts() -> None:
    env = bootstrap_environment("postgresql://u:p@db/x", SECRET)

    assert env[SECRET_ENV_VAR] == SECRET
    assert env["PGCONNECT_TIMEOUT"] == "15"


def test_environment_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="app_secret must be 16 to 64 characters"):
        bootstrap_environment("postgresql://u:p@db/x", "short")


def test_arguments_pass_values_as_psql_variables() -> None:
    args = psql_arguments(app_id="app1", app_name="My 'App'", link_id="link1", script_path="/s.sql")

    assert args == [
        "--no-psqlrc",
        "--set",
        "app_id=app1",
        "--set",
        "app_name=My 'App'",
        "--set",
        "link_id=link1",
        "--file",
        "/s.sql",
    ]


@pytest.mark.parametrize("bad", ["", "x" * 22, "has space", "semi;colon", "quo'te"])
def test_invalid_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="app_id must be 1 to 21 characters"):
        validate_id(bad, "app_id")


def test_link_id_is_stable_and_a_valid_id() -> None:
    first = management_link_id("lobechat-logto-m2m")

    assert first == management_link_id("lobechat-logto-m2m")
    assert validate_id(first, "link_id") == first
    assert first != management_link_id("another-app")


def test_exit_zero_passes() -> None:
    check_bootstrap_exit(0, "COMMIT")


@pytest.mark.parametrize(
    ("code", "meaning"),
    [(2, "could not connect"), (3, "a statement of the script failed"), (1, "psql itself failed"), (137, "unexpected")],
)
def test_non_zero_exit_raises_with_its_meaning_and_psql_output(code: int, meaning: str) -> None:
    with pytest.raises(LogtoBootstrapError) as raised:
        check_bootstrap_exit(code, "psql: error: something specific", container="c1")

    message = str(raised.value)
    assert f"exited with code {code} (container c1)" in message
    assert meaning in message
    assert "something specific" in message


def test_docker_stream_headers_are_removed_from_the_logs() -> None:
    framed = "\x01\x00\x00\x00\x00\x00\x00\x06BEGIN\n\x02\x00\x00\x00\x00\x00\x00\x2aERROR:  role missing\n"

    assert readable_container_logs(framed) == "BEGIN\nERROR:  role missing"


def test_error_shows_readable_psql_output() -> None:
    with pytest.raises(LogtoBootstrapError) as raised:
        check_bootstrap_exit(3, "\x02\x00\x00\x00\x00\x00\x00\x10ERROR:  boom\n")

    assert "psql said:\nERROR:  boom\n" in str(raised.value)
    assert "\x00" not in str(raised.value)


def test_missing_exit_code_raises() -> None:
    with pytest.raises(LogtoBootstrapError, match="reported no exit code"):
        check_bootstrap_exit(None, None)


def test_script_stops_on_the_first_error_and_runs_in_one_transaction() -> None:
    sql = bootstrap_sql()

    assert sql.splitlines()[4] == r"\set ON_ERROR_STOP 1"
    assert sql.count("\nBEGIN;\n") == 1
    assert sql.count("\nCOMMIT;\n") == 1
    assert sql.index("BEGIN;") < sql.index("INSERT INTO applications ") < sql.index("COMMIT;")


def test_script_names_the_management_role_exactly() -> None:
    assert f"'{MANAGEMENT_ROLE_NAME}'" in bootstrap_sql()


def test_script_takes_every_value_as_a_quoted_psql_variable() -> None:
    sql = bootstrap_sql()
    # In SQL only :'name' (psql quotes the value as a literal), never a bare :name pasted as SQL text.
    statements = "\n".join(line for line in sql.splitlines() if not line.startswith("\\"))
    assert not re.search(r"(?<![:'\w]):(app_id|app_name|app_secret|link_id)\b", statements)
    assert statements.count(":'app_secret'") >= 2
