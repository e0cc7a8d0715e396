"""Hardened containers (issue 8): no-new-privileges and a memory limit on every container, limits per
stage, the bootstrap leaving no secret behind, TRUST_PROXY_HEADER only behind a proxy."""

from __future__ import annotations

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from tests.pulumi_mocks import CONTAINER, run_program, stack_config

NS = "lobechat-logto"
DEFAULTS = {"postgres": 1024, "logto": 1024, "lobechat": 2048, "logto-bootstrap-psql": 256, "postgres-roles-psql": 256,
            "postgres-logins-psql": 256,
            "logto-database-preflight": 256, "logto-database-setup": 1024, "storage": 512,
            # the data safety steps (issue 9): one-shot dumps and checks, and the scheduled backups
            "data-safety-snapshot": 256, "postgres-volume-check": 256, "data-safety-scheduled-backups": 256,
            # The front (staging and prod): Caddy and its one-shot config writers.
            "front": 256, "front-config-base": 256, "front-config": 256}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_container_has_no_new_privileges_and_a_memory_limit(stack):
    run = run_program(stack, stack_config(stack))
    containers = run.of_type(CONTAINER)
    front = {"front", "front-config-base", "front-config"} if stack in ("staging", "prod") else set()
    optional = {"storage", "data-safety-scheduled-backups", "front", "front-config-base", "front-config"}
    assert {c.name for c in containers} >= set(DEFAULTS) - optional | front
    for container in containers:
        assert container.plain("securityOpts") == ["no-new-privileges:true"], container.name
        # Readiness waits (one-shot pollers) get the one-shot default.
        expected = 256 if container.name.endswith("-ready-wait") else DEFAULTS[container.name]
        assert container.plain("memory") == expected, container.name


def test_memory_limits_are_configurable_per_stage():
    limits = {"postgres": 4096, "logto": 768, "lobechat": 3072, "oneShot": 128}
    run = run_program("dev", {**stack_config("dev"), f"{NS}:memoryLimits": limits})
    memory = {c.name: c.plain("memory") for c in run.of_type(CONTAINER) if not c.name.endswith("-ready-wait")}
    assert {k: memory[k] for k in ("postgres", "logto", "lobechat", "logto-bootstrap-psql", "postgres-roles-psql")} == {
        "postgres": 4096, "logto": 768, "lobechat": 3072, "logto-bootstrap-psql": 128, "postgres-roles-psql": 128}


@pytest.mark.parametrize("value", [0, 32, True, "1024", 1024.5, -1, 2**31])
def test_bad_memory_limits_are_one_config_error_naming_the_key(value):
    values = {
        "lobechatUrl": "http://lobe.localhost:3210",
        "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
        "memoryLimits": {"lobechat": value},
    }
    with pytest.raises(ConfigError) as info:
        load_stage_config(MappingConfigSource(values), "dev")
    assert [p.key for p in info.value.problems] == [f"{NS}:memoryLimits.lobechat"]


def test_bootstrap_container_environment_holds_no_secret():
    run = run_program("prod", stack_config("prod"))
    bootstrap = run.one(CONTAINER, "logto-bootstrap-psql")
    env = bootstrap.env()
    assert "PGPASSWORD" not in env and "LOGTO_BOOTSTRAP_APP_SECRET" not in env
    postgres_password = run.one(CONTAINER, "postgres").env()["POSTGRES_PASSWORD"]
    assert all(postgres_password not in value for value in env.values())
    uploads = {u["file"]: u for u in bootstrap.plain("uploads")}
    assert uploads["/run/lobechat-logto/pgpass"]["permissions"] == "0600"
    assert bootstrap.is_secret("uploads")


BACKUP_STEPS = ("data-safety-snapshot", "postgres-volume-check", "data-safety-restore", "data-safety-scheduled-backups")


def test_no_backup_step_holds_the_superuser_password_in_its_environment():
    config = stack_config("dev")
    config[f"{NS}:dataSafety"] = {
        "postgresMajor": 17, "dataVolume": "lobechat-logto-dev-postgres-data-pg17", "restoreFrom": "20261201T120000Z-manual",
    }
    config[f"{NS}:backups"] = {"enabled": True}
    run = run_program("dev", config)
    postgres_password = run.one(CONTAINER, "postgres").env()["POSTGRES_PASSWORD"]
    steps = {c.name: c for c in run.of_type(CONTAINER) if c.name in BACKUP_STEPS}
    assert set(steps) == set(BACKUP_STEPS)
    for container in run.of_type(CONTAINER):
        if container.name == "postgres":
            continue  # the server itself: POSTGRES_PASSWORD initialises an empty volume
        env = container.env()
        assert all(postgres_password not in value for value in env.values()), container.name
    for name, step in steps.items():
        env = step.env()
        assert "PGPASSWORD" not in env, name
        assert env["PGPASSFILE"] == "/run/lobechat-logto/pgpass", name
        uploads = {u["file"]: u for u in step.plain("uploads")}
        assert uploads["/run/lobechat-logto/pgpass"]["permissions"] == "0600", name
        assert uploads["/run/lobechat-logto/pgpass"]["content"] == f"*:*:*:*:{postgres_password}\n", name
        assert step.is_secret("uploads"), name
        # One-shot steps delete the file when they end; the long-running backups keep it (0600).
        assert env.get("REMOVE_PGPASSFILE") == ("1" if name != "data-safety-scheduled-backups" else None), name


def test_trust_proxy_header_is_refused_where_no_proxy_can_be_in_front():
    values = {
        "lobechatUrl": "http://lobe.localhost:3210",
        "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002",
                  "trustProxyHeader": True},
    }
    with pytest.raises(ConfigError) as info:
        load_stage_config(MappingConfigSource(values), "dev")
    assert [p.key for p in info.value.problems] == [f"{NS}:logto.trustProxyHeader"]


@pytest.mark.parametrize(("stack", "expected"), [("dev", "0"), ("staging", "1"), ("prod", "1")])
def test_trust_proxy_header_follows_the_tls_proxy(stack, expected):
    run = run_program(stack, stack_config(stack))
    assert run.one(CONTAINER, "logto").env()["TRUST_PROXY_HEADER"] == expected


def test_logto_and_lobechat_connect_as_their_own_roles_with_separate_generated_passwords():
    run = run_program("dev", stack_config("dev"))
    logto_url = run.one(CONTAINER, "logto").env()["DB_URL"]
    lobechat_url = run.one(CONTAINER, "lobechat").env()["DATABASE_URL"]
    assert logto_url.startswith("postgresql://logto:") and logto_url.endswith("@postgres:5432/logto")
    assert lobechat_url.startswith("postgresql://lobechat:") and lobechat_url.endswith("@postgres:5432/lobechat")
    superuser_password = run.one(CONTAINER, "postgres").env()["POSTGRES_PASSWORD"]
    assert superuser_password not in logto_url and superuser_password not in lobechat_url
    logto_password = logto_url.split(":")[2].split("@")[0]
    lobechat_password = lobechat_url.split(":")[2].split("@")[0]
    assert len({superuser_password, logto_password, lobechat_password}) == 3
    # The roles step: superuser only here, its passwords as files, none in its environment.
    roles = run.one(CONTAINER, "postgres-roles-psql")
    env = roles.env()
    assert env["PGUSER"] == "postgres" and "PGPASSWORD" not in env
    assert all(p not in str(env) for p in (superuser_password, logto_password, lobechat_password))
    assert roles.is_secret("uploads")
    assert run.depends_on(roles, run.one(CONTAINER, "postgres-ready-wait"))


# The containers whose upstream images read their configuration (secrets among it) from the
# environment only, for as long as they run; every other container gets its secrets as files.
SECRET_ENV_ALLOWED = {
    "logto": {"DB_URL"},
    "lobechat": None,  # its whole environment (one secret): LobeChat reads nothing else
    "postgres": {"POSTGRES_PASSWORD"},
    "storage": {"RUSTFS_ACCESS_KEY", "RUSTFS_SECRET_KEY"},
}
# What the mocks generate for secrets (tests/pulumi_mocks.py fake_value): random secrets, Logto
# application secrets, webhook keys, storage keys.
_GENERATED_SECRET = __import__("re").compile(r"(random|client-secret|signing-key|app-secret|key-secret)-[0-9a-f]{6,}")


def _secret_variant_configs():
    from tests.test_front_config import ca_signed_pem

    _, cert, key = ca_signed_pem(["chat.example.com", "auth.example.com"])
    yield "dev", stack_config("dev"), {}, []
    yield "staging", stack_config("staging"), {}, []
    prod = stack_config("prod")
    front = {k: v for k, v in prod.get(f"{NS}:front", {}).items() if not k.startswith("acme")}
    prod[f"{NS}:front"] = {**front, "tls": "files"}
    yield "prod", prod, {f"{NS}:frontTlsCertificate": cert, f"{NS}:frontTlsKey": key}, [key.strip().splitlines()[1]]
    dev = stack_config("dev")
    dev[f"{NS}:dataSafety"] = {"postgresMajor": 17, "dataVolume": "lobechat-logto-dev-postgres-data-pg17",
                               "restoreFrom": "20261201T120000Z-manual"}
    dev[f"{NS}:backups"] = {"enabled": True}
    yield "dev", dev, {}, []
    external = {**stack_config("dev"), f"{NS}:postgres": {"mode": "external"}}
    yield "dev", external, {
        f"{NS}:postgresLogtoUrl": "postgresql://logto:ExternalLogtoPassw0rd@db.example.com:5432/logto",
        f"{NS}:postgresLobechatUrl": "postgresql://lobe:ExternalLobePassw0rd@db.example.com:5432/lobechat",
    }, ["ExternalLogtoPassw0rd", "ExternalLobePassw0rd"]


@pytest.mark.parametrize("variant", range(5))
def test_no_container_but_the_upstream_long_running_ones_holds_a_secret_in_what_docker_inspect_shows(variant):
    stack, config, secrets, config_secrets = list(_secret_variant_configs())[variant]
    run = run_program(stack, config, secrets)
    found: dict[str, set[str]] = {}
    for container in run.of_type(CONTAINER):
        for key in ("envs", "entrypoints", "command", "labels"):
            for item in container.plain(key) or []:
                text = str(item)
                if _GENERATED_SECRET.search(text) or any(s in text for s in config_secrets):
                    name = text.split("=", 1)[0] if key == "envs" else f"<{key}>"
                    found.setdefault(container.name, set()).add(name)
    # Names only (never the values): a failure must not print a secret.
    unexpected = {c: names for c, names in found.items()
                  if c not in SECRET_ENV_ALLOWED or (SECRET_ENV_ALLOWED[c] is not None and not names <= SECRET_ENV_ALLOWED[c])}
    assert unexpected == {}
    assert "logto" in found and "lobechat" in found  # the scan finds what is there
