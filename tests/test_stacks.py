"""Every stack file in stacks/: the whole resource graph under Pulumi mocks."""

from __future__ import annotations

import base64
import re

import pytest

from components.config import LOBECHAT_IMAGES, POSTGRES_IMAGES, STORAGE_IMAGE
from components.generated_secrets import RandomSecretProvider
from tests.pulumi_mocks import (
    CONTAINER,
    DOCKER_PROVIDER,
    LOGTO_APPLICATION,
    LOGTO_WEBHOOK,
    NETWORK,
    RANDOM_SECRET,
    REMOTE_IMAGE,
    RSA_JWKS,
    S3_BUCKET,
    VOLUME,
    ProgramRun,
    run_program,
    stack_config,
    stack_names,
)

STACKS = stack_names()
DATA_SAFETY_OUTPUTS = {
    "preChangeSnapshot", "backupVolume", "dataVolume", "postgresMajor", "postgresPassword", "rebuildFingerprint",
    "rebuildSecrets", "snapshotCommand", "restoreCommand", "listSnapshotsCommand",
}

ENV_1X = {
    "NEXT_AUTH_SECRET", "NEXT_AUTH_SSO_PROVIDERS", "AUTH_LOGTO_ID", "AUTH_LOGTO_SECRET", "AUTH_LOGTO_ISSUER",
    "NEXTAUTH_URL", "LOGTO_WEBHOOK_SIGNING_KEY", "APP_URL", "DATABASE_URL", "KEY_VAULTS_SECRET",
}
ENV_2X = {
    "AUTH_SECRET", "AUTH_SSO_PROVIDERS", "JWKS_KEY", "APP_URL", "AUTH_LOGTO_ID", "AUTH_LOGTO_SECRET",
    "AUTH_LOGTO_ISSUER", "LOGTO_WEBHOOK_SIGNING_KEY", "DATABASE_URL", "KEY_VAULTS_SECRET",
}
ENV_S3 = {
    "S3_ENDPOINT", "S3_BUCKET", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_PUBLIC_DOMAIN",
    "S3_ENABLE_PATH_STYLE", "S3_SET_ACL",
}
FORBIDDEN_2X = re.compile(
    r"^(NEXT_AUTH|NEXTAUTH|AZURE_AD_|AUTH_AZURE_AD_|AUTH_MICROSOFT_ENTRA_ID_|ZITADEL_CLIENT_|CLERK_|NEXT_PUBLIC_CLERK_)"
    r"|^(AUTH_URL|NEXT_PUBLIC_AUTH_URL|ACCESS_CODE|NEXT_PUBLIC_SERVICE_MODE|OIDC_JWKS_KEY)$"
)


def test_there_are_dev_staging_and_prod_stacks():
    assert {"dev", "staging", "prod"} <= set(STACKS)


@pytest.fixture(scope="module", params=STACKS)
def run(request) -> ProgramRun:
    return run_program(request.param, stack_config(request.param))


def cfg(run: ProgramRun, key: str, default=None):
    return stack_config(run.stack).get(f"lobechat-logto:{key}", default)


def generation(run: ProgramRun) -> int:
    return int(cfg(run, "lobechatGeneration", "1"))


def management_endpoint(run: ProgramRun) -> str:
    """Where the program calls Logto: the endpoint, or its published loopback port for *.localhost."""
    endpoint = cfg(run, "logto")["endpoint"]
    host_port = endpoint.split("://", 1)[1]
    if host_port.split(":", 1)[0].endswith(".localhost"):
        return f"http://127.0.0.1:{host_port.split(':', 1)[1]}"
    return endpoint


def storage_on(run: ProgramRun) -> bool:
    return (cfg(run, "storage") or {}).get("mode", "none") != "none"


def container(run: ProgramRun, name: str):
    return run.one(CONTAINER, name)


def behind_front(run: ProgramRun) -> bool:
    """front.mode caddy (the default on staging and prod): the stack's Caddy publishes the ports."""
    front = cfg(run, "front") or {}
    return front.get("mode", "caddy" if run.stack in ("staging", "prod") else "none") == "caddy"


FRONT_WRITERS = ("front-config-base", "front-config")


# --- structure -----------------------------------------------------------------------------------


def test_every_resource_sits_under_the_platform_component(run):
    platform = run.one("lobechat-logto:platform:Platform", "platform")
    for resource in run.resources:
        if resource is platform or resource.type == DOCKER_PROVIDER:
            continue
        assert platform in run.ancestors(resource), resource.name


def test_components_use_the_project_type_namespace(run):
    components = [r for r in run.resources if not r.custom]
    assert components and all(r.type.startswith("lobechat-logto:") for r in components)


def test_one_bridge_network_carries_every_container(run):
    networks = run.of_type(NETWORK)
    assert len(networks) == 1 and networks[0].plain("driver") == "bridge"
    name = networks[0].plain("name")
    caddy = [c for c in run.of_type(CONTAINER) if c.name == "front"]
    for c in run.of_type(CONTAINER):
        if c.name in FRONT_WRITERS:
            # The config writers join Caddy's network namespace (its admin API is on its loopback).
            assert c.plain("networkMode") == f"container:{caddy[0].name}-id" and not c.plain("networksAdvanced")
            continue
        assert [n["name"] for n in c.plain("networksAdvanced")] == [name], c.name


def test_every_image_is_pinned(run):
    for image in run.of_type(REMOTE_IMAGE):
        ref = image.plain("name")
        tag = ref.rsplit("/", 1)[-1].partition(":")[2]
        assert "@" in ref or (tag and tag != "latest"), ref


def test_long_running_containers_carry_the_stack_prefix(run):
    fixed = ("postgres", "logto", "storage") + (() if behind_front(run) else ("lobechat",))
    for name in fixed:
        assert container(run, name).plain("name") == f"lobechat-logto-{run.stack}-{name}"
    if behind_front(run):
        # Rolled out create-before-delete: Pulumi names it (a new name per replacement); the
        # stage is on its label.
        lobechat = container(run, "lobechat")
        assert not lobechat.plain("name")
        assert {"label": "lobechat-logto.stage", "value": f"lobechat-logto-{run.stack}"} in lobechat.plain("labels")
        assert container(run, "front").plain("name") == f"lobechat-logto-{run.stack}-caddy"


def test_long_running_containers_restart_and_are_waited_on(run):
    for name in ("postgres", "logto", "lobechat", "storage"):
        c = container(run, name)
        # Our readiness wait, not the provider's (which notices "healthy" up to an interval late).
        assert c.plain("restart") == "unless-stopped" and c.plain("wait") is False, name
        assert c.plain("healthcheck")["tests"], name
        # Set explicitly either way: the Docker provider asks for delete-first on every container.
        assert c.delete_before_replace_defined, name
        assert c.delete_before_replace == (name != "lobechat" or not behind_front(run)), name
        wait = container(run, f"{name}-ready-wait")
        assert run.depends_on(wait, c), name
        assert wait.plain("attach") is True and wait.plain("mustRun") is False and wait.plain("restart") == "no"


def test_health_checks_are_calm_and_have_no_start_interval_by_default(run):
    intervals = {name: container(run, name).plain("healthcheck") for name in ("postgres", "logto", "lobechat", "storage")}
    assert {n: h["interval"] for n, h in intervals.items()} == {"postgres": "10s", "logto": "30s", "lobechat": "30s", "storage": "10s"}
    # Docker 20.10 (Debian 12's docker.io): the provider's client refuses a start interval there.
    assert all(h.get("startInterval") in (None, "") for h in intervals.values())


def test_remote_docker_host_is_used_by_every_docker_resource_when_configured(run):
    host = cfg(run, "dockerHost")
    providers = run.of_type(DOCKER_PROVIDER)
    if host is None:
        assert providers == []
        return
    assert [p.plain("host") for p in providers] == [host]
    for r in run.resources:
        if r.type.startswith("docker:"):
            assert r.provider.startswith(providers[0].urn), r.name


# --- Postgres --------------------------------------------------------------------------------------


def test_postgres_image_follows_generation_at_the_pinned_major(run):
    image = run.one(REMOTE_IMAGE, "postgres-image").plain("name")
    # Every stack file pins its data's major; today each is the generation's default.
    assert cfg(run, "dataSafety")["postgresMajor"] in (16, 17)
    assert image == POSTGRES_IMAGES[generation(run)]
    command = container(run, "postgres").plain("command")
    if generation(run) == 2:
        assert image.startswith("paradedb/paradedb:") and "shared_preload_libraries=pg_search,pg_cron,pg_stat_statements" in command
    else:
        assert image == "pgvector/pgvector:pg16" and not command


def test_postgres_data_volume_is_protected_and_retained(run):
    volume = run.one(VOLUME, "postgres-data")
    assert volume.protect and volume.retain_on_delete
    mounts = container(run, "postgres").plain("volumes")
    assert mounts == [{"volumeName": volume.plain("name"), "containerPath": "/var/lib/postgresql/data"}]


def test_postgres_creates_both_databases(run):
    pg = container(run, "postgres")
    assert "POSTGRES_DB=lobechat" in pg.plain("envs")
    uploads = {u["file"]: u["content"] for u in pg.plain("uploads")}
    assert uploads["/docker-entrypoint-initdb.d/10-create-logto-database.sql"] == "CREATE DATABASE logto;\n"


def test_postgres_password_is_generated_and_secret(run):
    pg = container(run, "postgres")
    assert pg.is_secret("envs")
    password = run.one(RANDOM_SECRET, "postgres-password")
    assert "value" in password.additional_secret_outputs


def test_postgres_password_is_protected_because_the_volume_keeps_the_first_one(run):
    assert run.one(RANDOM_SECRET, "postgres-password").protect


def test_postgres_health_is_pg_isready_over_tcp(run):
    tests = container(run, "postgres").plain("healthcheck")["tests"]
    assert tests[0] == "CMD-SHELL" and tests[1].startswith("pg_isready -h 127.0.0.1")


# --- Logto -----------------------------------------------------------------------------------------


def test_logto_environment_has_endpoints_database_and_ci(run):
    logto_cfg = cfg(run, "logto")
    env = container(run, "logto").env()
    assert set(env) == {"DB_URL", "ENDPOINT", "ADMIN_ENDPOINT", "TRUST_PROXY_HEADER", "PORT", "ADMIN_PORT", "CI"}
    assert env["ENDPOINT"] == logto_cfg["endpoint"]
    if run.stack == "dev":
        assert env["ADMIN_ENDPOINT"] == logto_cfg["adminEndpoint"]
    else:  # the admin console is closed off 'dev': a loopback ADMIN_ENDPOINT, reached through a tunnel
        assert env["ADMIN_ENDPOINT"] == f"http://127.0.0.1:{env['ADMIN_PORT']}"
    # Logto's own role (least privilege), not the superuser.
    assert env["DB_URL"].startswith("postgresql://logto:") and env["DB_URL"].endswith("@postgres:5432/logto")
    assert env["CI"] == "true"
    assert env["TRUST_PROXY_HEADER"] == ("1" if logto_cfg["endpoint"].startswith("https://") else "0")
    assert container(run, "logto").is_secret("envs")


def test_logto_starts_by_seeding_and_deploying_alterations(run):
    entry = container(run, "logto").plain("entrypoints")
    assert entry == ["sh", "-c", "npm run cli db seed -- --swe && npm run alteration deploy latest && npm start"]


def test_logto_image_is_the_pinned_one(run):
    assert run.one(REMOTE_IMAGE, "logto-image").plain("name") == cfg(run, "logto").get("image", "svhd/logto:1.43.0")


def test_logto_health_is_api_status_204_with_node(run):
    c = container(run, "logto")
    tests = c.plain("healthcheck")["tests"]
    port = c.env()["PORT"]
    assert tests[:3] == ["CMD", "node", "-e"]
    assert f"http://127.0.0.1:{port}/api/status" in tests[3] and "204" in tests[3]


def test_logto_aliases_cover_localhost_endpoint_names(run):
    aliases = container(run, "logto").plain("networksAdvanced")[0]["aliases"]
    endpoint, admin = cfg(run, "logto")["endpoint"], cfg(run, "logto")["adminEndpoint"]
    assert "logto" in aliases
    for url in (endpoint, admin):
        host = url.split("://", 1)[1].split(":", 1)[0]
        # Behind the front every public name is an alias of Caddy instead.
        assert (host in aliases) == (host.endswith(".localhost") and not behind_front(run)), host


def test_logto_publishes_its_two_ports_on_the_bind_address(run):
    ports = container(run, "logto").plain("ports")
    if behind_front(run):
        # Caddy publishes the public ports; a closed admin console stays on loopback for the SSH tunnel.
        assert [(p["internal"], p["external"], p["ip"]) for p in ports] == [(3002, 3002, "127.0.0.1")]
        return
    assert {(p["internal"], p["external"], p["ip"]) for p in ports} == {
        (3001, 3001, "127.0.0.1"),
        (3002, 3002, "127.0.0.1"),
    }


def test_logto_starts_after_postgres_is_ready(run):
    # The seed needs the database: without this order Logto crash-loops until Postgres is up, and
    # `pulumi destroy` may remove Postgres while the Logto objects are still being deleted.
    assert run.depends_on(container(run, "logto"), container(run, "postgres"))
    # Ready = the roles step ran: Logto connects (and seeds) as its own role.
    assert container(run, "postgres-roles-psql").urn in container(run, "logto").dependencies


# --- the first Management API credential ---------------------------------------------------------


def test_bootstrap_runs_after_logto_is_ready(run):
    bootstrap = container(run, "logto-bootstrap-psql")
    assert run.depends_on(bootstrap, container(run, "logto"))
    assert container(run, "logto-ready-wait").urn in bootstrap.dependencies


def test_bootstrap_uses_the_postgres_image_and_logto_database(run):
    bootstrap = container(run, "logto-bootstrap-psql")
    assert bootstrap.plain("image") == container(run, "postgres").plain("image")
    env = bootstrap.env()
    assert env["PGHOST"] == "postgres" and env["PGDATABASE"] == "logto"
    assert bootstrap.is_secret("envs")


def test_logto_resources_use_the_bootstrapped_credential(run):
    uploads = {u["file"]: u["content"] for u in container(run, "logto-bootstrap-psql").plain("uploads")}
    for resource in (run.one(LOGTO_APPLICATION, "lobechat-application"), run.one(LOGTO_WEBHOOK, "lobechat-webhook")):
        assert resource.plain("logto_client_id") == "lobechat-logto-m2m"
        assert resource.is_secret("logto_client_secret")
        assert resource.plain("logto_client_secret") == uploads["/run/lobechat-logto/app-secret"]
        assert resource.plain("logto_endpoint") == management_endpoint(run)
        assert resource.plain("logto_resource") == "https://default.logto.app/api"
        assert run.depends_on(resource, container(run, "logto-bootstrap-psql"))


def test_m2m_secret_is_generated_secret(run):
    assert "value" in run.one(RANDOM_SECRET, "logto-m2m-secret").additional_secret_outputs


# --- the Logto application and webhook -----------------------------------------------------------


def test_application_uris_derive_from_lobechat_url(run):
    url = cfg(run, "lobechatUrl")
    app = run.one(LOGTO_APPLICATION, "lobechat-application")
    assert app.plain("redirect_uris") == [f"{url}/api/auth/callback/logto"]
    assert app.plain("post_sign_out_redirect_uris") == [f"{url}/"]
    assert app.plain("cors_allowed_origins") == [url]
    assert app.plain("app_type") == "Traditional"
    assert "client_secret" in app.additional_secret_outputs


def test_webhook_url_and_events_follow_lobechat_url_and_generation(run):
    hook = run.one(LOGTO_WEBHOOK, "lobechat-webhook")
    if "webhookSigningKey" in (cfg(run, "rotation", {}) or {}).get("maxAge", {}):
        # Key rotation: each key generation's hook reaches only the LobeChat containers holding its key.
        assert hook.plain("url") == "http://lobechat-hook-0:3210/api/webhooks/logto"
        aliases = container(run, "lobechat").plain("networksAdvanced")[0]["aliases"]
        assert "lobechat-hook-0" in aliases
    else:
        assert hook.plain("url") == f"{cfg(run, 'lobechatUrl')}/api/webhooks/logto"
    expected = ["User.Data.Updated"] + (["User.SuspensionStatus.Updated"] if generation(run) == 2 else [])
    assert hook.plain("events") == expected


def test_verification_expects_the_url_the_hook_really_delivers_to(run):
    # With webhook-key rotation (staging, prod) the hook delivers to an in-network alias, not to
    # lobechatUrl: verification at the end of `pulumi up` must expect that URL, or every up fails.
    hook = run.one(LOGTO_WEBHOOK, "lobechat-webhook")
    assert run.outputs["verificationTarget"]["webhookUrl"] == hook.plain("url")
    assert "signing_key" in hook.additional_secret_outputs


# --- LobeChat --------------------------------------------------------------------------------------


def test_lobechat_image_follows_generation(run):
    assert run.one(REMOTE_IMAGE, "lobechat-image").plain("name") == cfg(run, "lobechatImage", LOBECHAT_IMAGES[generation(run)])


def test_lobechat_environment_is_exactly_the_generations_set(run):
    env = container(run, "lobechat").env()
    expected = (ENV_2X if generation(run) == 2 else ENV_1X) | (ENV_S3 if storage_on(run) else set())
    assert set(env) == expected


def test_lobechat_environment_carries_nothing_of_the_other_generation(run):
    env = container(run, "lobechat").env()
    if generation(run) == 2:
        assert [name for name in env if FORBIDDEN_2X.search(name)] == []
        assert not env["APP_URL"].endswith("/")
    else:
        assert not set(env) & (ENV_2X - ENV_1X)


def test_lobechat_environment_is_secret(run):
    assert container(run, "lobechat").is_secret("envs")


def test_lobechat_urls_and_issuer_derive_from_config(run):
    env = container(run, "lobechat").env()
    url = cfg(run, "lobechatUrl")
    assert env["APP_URL"] == url
    assert env["AUTH_LOGTO_ISSUER"] == cfg(run, "logto")["endpoint"] + "/oidc"
    if generation(run) == 1:
        assert env["NEXTAUTH_URL"] == f"{url}/api/auth"
        assert env["NEXT_AUTH_SSO_PROVIDERS"].split(",")[0] == "logto"
    else:
        assert env["AUTH_SSO_PROVIDERS"].split(",")[0] == "logto"


def test_lobechat_environment_is_wired_from_logto_outputs(run):
    env = container(run, "lobechat").env()
    assert env["AUTH_LOGTO_ID"] == run.outputs["clientId"]
    assert env["AUTH_LOGTO_SECRET"] == run.outputs["clientSecret"]
    assert env["LOGTO_WEBHOOK_SIGNING_KEY"] == run.outputs["webhookSigningKey"]
    assert env["DATABASE_URL"].endswith("@postgres:5432/lobechat")


def test_generation_2_gets_a_generated_rs256_jwks(run):
    jwks = run.of_type(RSA_JWKS)
    if generation(run) == 1:
        assert jwks == []
        return
    assert len(jwks) == 1 and "jwks" in jwks[0].additional_secret_outputs
    assert '"alg": "RS256"' in container(run, "lobechat").env()["JWKS_KEY"]


def test_lobechat_starts_after_the_logto_resources(run):
    lobechat = container(run, "lobechat")
    for resource in (run.one(LOGTO_APPLICATION, "lobechat-application"), run.one(LOGTO_WEBHOOK, "lobechat-webhook")):
        assert run.depends_on(lobechat, resource), resource.name
    assert run.depends_on(lobechat, container(run, "postgres"))


def test_lobechat_health_probe_follows_generation(run):
    script = container(run, "lobechat").plain("healthcheck")["tests"]
    assert script[:3] == ["CMD", "/bin/node", "-e"]
    path = "/api/version" if generation(run) == 2 else "/'"
    assert f"http://127.0.0.1:3210{path}" in script[3]


def test_lobechat_alias_is_its_host_name_on_localhost(run):
    aliases = container(run, "lobechat").plain("networksAdvanced")[0]["aliases"]
    host = cfg(run, "lobechatUrl").split("://", 1)[1].split(":", 1)[0]
    assert "lobechat" in aliases and (host in aliases) == (host.endswith(".localhost") and not behind_front(run))


def test_lobechat_publishes_3210(run):
    ports = container(run, "lobechat").plain("ports")
    if behind_front(run):
        assert not ports
        return
    assert [(p["internal"], p["external"]) for p in ports] == [(3210, 3210)]


# --- file storage (S3) -----------------------------------------------------------------------------


def storage_cfg(run: ProgramRun) -> dict:
    return cfg(run, "storage") or {}


def test_every_stack_file_runs_container_storage(run):
    assert storage_cfg(run)["mode"] == "container"


def test_storage_server_is_the_pinned_rustfs_with_a_protected_retained_volume(run):
    assert run.one(REMOTE_IMAGE, "storage-image").plain("name") == STORAGE_IMAGE == "rustfs/rustfs:1.0.0"
    volume = run.one(VOLUME, "storage-data")
    assert volume.protect and volume.retain_on_delete and volume.plain("name") == f"lobechat-logto-{run.stack}-storage-data"
    server = container(run, "storage")
    assert server.plain("volumes") == [{"volumeName": volume.plain("name"), "containerPath": "/data"}]
    assert server.plain("name") == f"lobechat-logto-{run.stack}-storage"
    assert server.plain("restart") == "unless-stopped" and server.delete_before_replace


def test_storage_server_health_is_its_health_route_on_the_s3_port(run):
    server = container(run, "storage")
    port = server.env()["RUSTFS_ADDRESS"].lstrip(":")
    assert server.plain("healthcheck")["tests"] == ["CMD-SHELL", f"wget -qO- http://127.0.0.1:{port}/health >/dev/null 2>&1 || exit 1"]


def test_storage_readiness_wait_polls_the_health_route_by_container_name_from_the_same_image(run):
    server, wait = container(run, "storage"), container(run, "storage-ready-wait")
    entry = wait.plain("entrypoints")
    assert wait.plain("image") == server.plain("image") and entry[:2] == ["sh", "-c"]
    assert entry[-1] == server.plain("name") and "/health" in entry[2] and "sleep 0.25" in entry[2]


def test_storage_root_credentials_are_generated_protected_secrets(run):
    env = container(run, "storage").env()
    for name, variable in (("storage-root-access-key", "RUSTFS_ACCESS_KEY"), ("storage-root-secret-key", "RUSTFS_SECRET_KEY")):
        secret = run.one(RANDOM_SECRET, name)
        assert secret.protect and secret.additional_secret_outputs == ["value"]
        assert env[variable] and env[variable].startswith("random-")
    assert container(run, "storage").is_secret("envs") and env["RUSTFS_CONSOLE_ENABLE"] == "false"


def test_storage_server_is_reached_at_its_public_name_inside_the_network(run):
    public = storage_cfg(run)["publicEndpoint"]
    host = public.split("://", 1)[1].split(":", 1)[0]
    aliases = container(run, "storage").plain("networksAdvanced")[0]["aliases"]
    if behind_front(run):
        # The public name is an alias of the stage's Caddy, which routes it to the server.
        assert aliases == ["storage"] and host in container(run, "front").plain("networksAdvanced")[0]["aliases"]
        return
    assert "storage" in aliases and (host in aliases) == host.endswith(".localhost")
    if not host.endswith(".localhost"):
        # Through the TLS proxy on the Docker host, like the other public names.
        assert {"host": host, "ip": "host-gateway"} in container(run, "lobechat").plain("hosts")


def test_storage_port_is_published_on_the_bind_address(run):
    ports = container(run, "storage").plain("ports")
    if behind_front(run):
        assert not ports  # Caddy publishes 80/443 and routes the S3 endpoint
        return
    assert [(p["internal"], p["external"], p["ip"]) for p in ports] == [(9000, 9000, "127.0.0.1")]


def test_bucket_is_protected_retained_and_created_after_the_server_is_healthy(run):
    bucket = run.one(S3_BUCKET, "storage-bucket")
    assert bucket.protect and bucket.retain_on_delete
    assert container(run, "storage-ready-wait").urn in bucket.dependencies
    if behind_front(run):
        # Created through the public endpoint: after the front routes it.
        assert container(run, "front-config-base").urn in bucket.dependencies
    assert bucket.plain("cors_origins") == [cfg(run, "lobechatUrl")]
    assert bucket.plain("public_read") is False and bucket.plain("bucket") == "lobechat"
    assert bucket.is_secret("access_key_id") and bucket.is_secret("secret_access_key")
    assert set(bucket.additional_secret_outputs) == {"access_key_id", "secret_access_key"}
    assert bucket.plain("secret_access_key") == container(run, "storage").env()["RUSTFS_SECRET_KEY"]


def test_bucket_is_managed_where_the_program_reaches_the_server(run):
    public = storage_cfg(run)["publicEndpoint"]
    expected = "http://127.0.0.1:9000" if ".localhost" in public else public
    assert run.one(S3_BUCKET, "storage-bucket").plain("s3_endpoint") == expected


def test_lobechat_s3_environment_comes_from_the_bucket_and_the_server(run):
    env = container(run, "lobechat").env()
    server = container(run, "storage").env()
    public = storage_cfg(run)["publicEndpoint"]
    assert env["S3_ENDPOINT"] == env["S3_PUBLIC_DOMAIN"] == public
    assert env["S3_BUCKET"] == "lobechat" and env["S3_REGION"] == "us-east-1"
    assert env["S3_ACCESS_KEY_ID"] == server["RUSTFS_ACCESS_KEY"] and env["S3_SECRET_ACCESS_KEY"] == server["RUSTFS_SECRET_KEY"]
    assert env["S3_ENABLE_PATH_STYLE"] == "1"
    # Private bucket: written out for both generations (1.x would set ACLs unless it is 0).
    assert env["S3_SET_ACL"] == "0"


def test_lobechat_starts_after_its_bucket(run):
    assert run.depends_on(container(run, "lobechat"), run.one(S3_BUCKET, "storage-bucket"))


def test_storage_outputs_name_the_bucket_endpoint_and_secret_credentials(run):
    assert run.outputs["storageBucket"] == "lobechat"
    assert run.outputs["storageEndpoint"] == storage_cfg(run)["publicEndpoint"]
    assert run.outputs["storageInternalEndpoint"] == f"http://storage:{9000}"
    assert run.outputs["storageSecretAccessKey"] == container(run, "storage").env()["RUSTFS_SECRET_KEY"]


# --- secrets and outputs ---------------------------------------------------------------------------


def test_key_vaults_secret_is_protected_and_secret(run):
    secret = run.one(RANDOM_SECRET, "lobechat-key-vaults-secret")
    assert secret.protect and "value" in secret.additional_secret_outputs
    assert secret.plain("length") == 43  # 32 bytes once LobeChat base64-decodes it


def test_key_vaults_secret_decodes_to_an_aes_256_key(run):
    # LobeChat does Buffer.from(KEY_VAULTS_SECRET, "base64") and imports it as a raw AES-256 key.
    inputs = run.one(RANDOM_SECRET, "lobechat-key-vaults-secret").inputs
    value = RandomSecretProvider().create({k: inputs[k] for k in ("length", "alphabet", "keepers") if k in inputs}).outs["value"]
    assert len(base64.b64decode(value + "=" * (-len(value) % 4))) == 32


def test_session_secret_is_generated_secret(run):
    assert "value" in run.one(RANDOM_SECRET, "lobechat-session-secret").additional_secret_outputs


STORAGE_OUTPUTS = {"storageBucket", "storageEndpoint", "storageRegion", "storageAccessKeyId", "storageSecretAccessKey"}


def test_stack_exports_every_output(run):
    expected = {
        "lobechatUrl", "logtoEndpoint", "logtoAdminUrl", "issuer", "clientId", "clientSecret",
        "webhookSigningKey", "lobechatEnvironment", "verificationTarget", "rotation",
    } | DATA_SAFETY_OUTPUTS
    if storage_on(run):
        expected |= STORAGE_OUTPUTS | ({"storageInternalEndpoint"} if cfg(run, "storage")["mode"] == "container" else set())
    closed = run.stack != "dev"
    if closed:  # the closed admin console comes with its tunnel command
        expected |= {"logtoAdminTunnel"}
    assert set(run.outputs) == expected
    assert run.outputs["lobechatUrl"] == cfg(run, "lobechatUrl")
    assert run.outputs["logtoEndpoint"] == cfg(run, "logto")["endpoint"]
    assert run.outputs["issuer"] == cfg(run, "logto")["endpoint"] + "/oidc"
    if closed:
        assert run.outputs["logtoAdminUrl"] == "http://127.0.0.1:3002/console"
        host = cfg(run, "dockerHost").removeprefix("ssh://")
        assert run.outputs["logtoAdminTunnel"] == f"ssh -N -L 3002:127.0.0.1:3002 {host}"
    else:
        assert run.outputs["logtoAdminUrl"] == cfg(run, "logto")["adminEndpoint"] + "/console"


def test_secret_outputs_are_secret(run):
    expected = {"clientSecret", "webhookSigningKey", "lobechatEnvironment", "verificationTarget", "postgresPassword", "rebuildSecrets"}
    if storage_on(run):
        expected |= {"storageAccessKeyId", "storageSecretAccessKey"}
    assert run.secret_outputs == expected


def test_exported_environment_equals_the_containers(run):
    assert run.outputs["lobechatEnvironment"] == container(run, "lobechat").env()
