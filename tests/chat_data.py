"""A LobeChat-like database (users, sessions, topics, messages) and a Logto-like one, for backup tests.

The shape follows LobeChat's database edition: text ids, ``user_id`` foreign keys, ``jsonb`` columns,
timestamps, and a per-app role owning the tables (as issue 8's least-privilege roles do), so a
restore has to bring back the roles, the owners and the rows. ``fingerprint`` summarises the data
(row counts and an md5 over every row in a fixed order) so "intact" is one comparison.
"""

from __future__ import annotations

from tests.real_postgres import RealPostgres

APP_ROLE = "lobechat_app"

LOBECHAT_SCHEMA = f"""
DO $$ BEGIN CREATE ROLE {APP_ROLE} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
CREATE TABLE users (id text PRIMARY KEY, email text UNIQUE, preference jsonb NOT NULL DEFAULT '{{}}',
                    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE user_settings (id text PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
                            key_vaults text);
CREATE TABLE sessions (id text PRIMARY KEY, user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                       title text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE topics (id text PRIMARY KEY, session_id text REFERENCES sessions(id) ON DELETE CASCADE,
                     user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE, title text);
CREATE TABLE messages (id text PRIMARY KEY, role text NOT NULL, content text,
                       user_id text NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                       session_id text REFERENCES sessions(id) ON DELETE CASCADE,
                       topic_id text REFERENCES topics(id) ON DELETE CASCADE,
                       metadata jsonb, created_at timestamptz NOT NULL);
CREATE INDEX messages_topic_idx ON messages (topic_id, created_at);
ALTER TABLE users OWNER TO {APP_ROLE};
ALTER TABLE user_settings OWNER TO {APP_ROLE};
ALTER TABLE sessions OWNER TO {APP_ROLE};
ALTER TABLE topics OWNER TO {APP_ROLE};
ALTER TABLE messages OWNER TO {APP_ROLE};
"""


def lobechat_seed_sql(messages: int, users: int = 50) -> str:
    """Rows for ``users`` users, 4 sessions each, 5 topics per session and ``messages`` messages."""
    return f"""
INSERT INTO users (id, email, preference, created_at)
SELECT 'user_' || u, 'user' || u || '@example.com', jsonb_build_object('lang', 'en', 'n', u),
       timestamptz '2025-01-01' + u * interval '1 minute'
FROM generate_series(1, {users}) u;
INSERT INTO user_settings (id, key_vaults)
SELECT 'user_' || u, 'encrypted:' || md5('vault' || u) FROM generate_series(1, {users}) u;
INSERT INTO sessions (id, user_id, title)
SELECT 'ssn_' || u || '_' || s, 'user_' || u, 'Session ' || s
FROM generate_series(1, {users}) u, generate_series(1, 4) s;
INSERT INTO topics (id, session_id, user_id, title)
SELECT 'tpc_' || u || '_' || s || '_' || t, 'ssn_' || u || '_' || s, 'user_' || u, 'Topic ' || t
FROM generate_series(1, {users}) u, generate_series(1, 4) s, generate_series(1, 5) t;
INSERT INTO messages (id, role, content, user_id, session_id, topic_id, metadata, created_at)
SELECT 'msg_' || m,
       CASE WHEN m % 2 = 0 THEN 'assistant' ELSE 'user' END,
       repeat('Chat message ' || m || ' with some text in it. ', 6),
       'user_' || (m % {users} + 1),
       'ssn_' || (m % {users} + 1) || '_' || (m % 4 + 1),
       'tpc_' || (m % {users} + 1) || '_' || (m % 4 + 1) || '_' || (m % 5 + 1),
       jsonb_build_object('tokens', m % 997, 'model', 'gpt-4o-mini'),
       timestamptz '2025-01-01' + m * interval '1 second'
FROM generate_series(1, {messages}) m;
"""


LOGTO_SCHEMA_AND_SEED = """
CREATE TABLE users (tenant_id varchar(21) NOT NULL, id varchar(12) PRIMARY KEY, username varchar(128),
                    password_encrypted varchar(128), created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users (tenant_id, id, username, password_encrypted)
SELECT 'default', 'u' || n, 'user' || n, 'argon2:' || md5('pw' || n) FROM generate_series(1, 50) n;
"""

TABLES = {"lobechat": ("users", "user_settings", "sessions", "topics", "messages"), "logto": ("users",)}


def seed(server: RealPostgres, messages: int = 2000) -> None:
    """Create and fill both databases on ``server``."""
    for database in ("lobechat", "logto"):
        run_sql(server, "postgres", f"CREATE DATABASE {database}")
    run_sql(server, "lobechat", LOBECHAT_SCHEMA + lobechat_seed_sql(messages))
    run_sql(server, "logto", LOGTO_SCHEMA_AND_SEED)


def run_sql(server: RealPostgres, database: str, sql: str) -> str:
    """Run ``sql`` with ON_ERROR_STOP; return its unaligned output; raise with psql's error."""
    result = server.psql(database, ["-v", "ON_ERROR_STOP=1", "-At", "-q"], stdin=sql, timeout=600)
    if result.returncode != 0:
        raise AssertionError(f"psql failed on {database}: {result.stderr.strip()[-1500:]}")
    return result.stdout.strip()


def fingerprint(server: RealPostgres) -> dict[str, str]:
    """``database.table`` -> "rows:md5" over every row in primary-key order, and each table's owner."""
    found: dict[str, str] = {}
    for database, tables in TABLES.items():
        for table in tables:
            value = run_sql(
                server,
                database,
                f"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') "
                f"FROM {table} t",
            )
            owner = run_sql(server, database, f"SELECT tableowner FROM pg_tables WHERE tablename = '{table}'")
            found[f"{database}.{table}"] = f"{value} owner={owner}"
    return found
