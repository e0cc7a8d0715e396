"""The front under Pulumi mocks: what the program declares for ``front.mode: caddy``."""

from __future__ import annotations

import json

import pytest

from tests.pulumi_mocks import CONTAINER, LOGTO_APPLICATION, VOLUME, ProgramRun, run_program, stack_config

NS = "lobechat-logto"
CADDY_STACKS = ["staging", "prod"]


@pytest.fixture(scope="module", params=CADDY_STACKS)
def run(request) -> ProgramRun:
    return run_program(request.param, stack_config(request.param))


def urls(stack: str) -> dict[str, str]:
    config = stack_config(stack)
    found = {
        "lobechat": config[f"{NS}:lobechatUrl"],
        "logto": config[f"{NS}:logto"]["endpoint"],
    }
    if config[f"{NS}:logto"].get("exposeAdminConsole"):  # closed by default on staging and prod: not routed
        found["logto-admin"] = config[f"{NS}:logto"]["adminEndpoint"]
    storage = config.get(f"{NS}:storage") or {}
    if storage.get("mode") == "container":
        found["storage"] = storage["publicEndpoint"]
    return found


PUBLIC_ROLES = ("lobechat", "logto", "logto-admin", "storage")


def host(url: str) -> str:
    return url.split("://", 1)[1].split(":", 1)[0]


def writer_config(run: ProgramRun, name: str = "front-config") -> dict:
    env = run.one(CONTAINER, name).env()
    return json.loads(env["FRONT_CONFIG"])


def routes_by_host(server: dict) -> dict[str, list[str]]:
    """host -> the upstreams its route dials (routes without a host matcher are the 404 fallback)."""
    found: dict[str, list[str]] = {}
    for route in server["routes"]:
        for match in route.get("match", []):
            for h in match.get("host", []):
                proxy = [x for x in route["handle"] if x["handler"] == "reverse_proxy"]
                found[h] = [u["dial"] for p in proxy for u in p["upstreams"]]
    return found


def test_caddy_is_the_only_container_publishing_ports(run):
    published = {c.name: c.plain("ports") for c in run.of_type(CONTAINER) if c.plain("ports")}
    # Besides Caddy only the closed admin console, on the Docker host's loopback (SSH tunnel).
    assert sorted(published) == ["front", "logto"]
    assert [(p["internal"], p["ip"]) for p in published["logto"]] == [(3002, "127.0.0.1")]
    assert {(p["internal"], p["external"], p["ip"]) for p in published["front"]} == {(8080, 80, "0.0.0.0"), (8443, 443, "0.0.0.0")}


def test_the_public_names_are_network_aliases_of_caddy_only(run):
    names = [host(u) for u in urls(run.stack).values()]
    # Logto's own ADMIN_ENDPOINT is its loopback when the console is closed: no alias needed.
    caddy = run.one(CONTAINER, "front")
    assert caddy.plain("networksAdvanced")[0]["aliases"] == ["front", *names]
    for c in run.of_type(CONTAINER):
        if c.name == "front":
            continue
        for network in c.plain("networksAdvanced") or []:
            assert not set(network.get("aliases") or []) & set(names), c.name
        assert not c.plain("hosts"), c.name  # no hosts-file entries: the names resolve to Caddy


def test_lobechat_is_replaced_create_before_delete(run):
    lobechat = run.one(CONTAINER, "lobechat")
    # The Docker provider asks for delete-first on every container: the program must say otherwise.
    assert lobechat.delete_before_replace_defined and not lobechat.delete_before_replace
    assert not lobechat.plain("name") and not lobechat.plain("ports")
    assert lobechat.plain("stopTimeout") == 30 and lobechat.plain("destroyGraceSeconds") == 30
    assert run.one(CONTAINER, "front").delete_before_replace  # fixed name and host ports


def test_routes_match_the_configured_urls_exactly(run):
    config = writer_config(run)
    servers = config["apps"]["http"]["servers"]
    wanted = urls(run.stack)
    internal = routes_by_host(servers["https-internal"])
    public = routes_by_host(servers["https-public"])
    assert {f"https://{h}" for h in internal} == set(wanted.values())
    assert {f"https://{h}" for h in public} == set(wanted.values())
    prefix = f"lobechat-logto-{run.stack}"
    assert internal[host(wanted["logto"])] == [f"{prefix}-logto:3001"]
    assert host(stack_config(run.stack)[f"{NS}:logto"]["adminEndpoint"]) not in internal
    if "storage" in wanted:
        assert internal[host(wanted["storage"])] == [f"{prefix}-storage:9000"]
    (lobe_upstream,) = internal[host(wanted["lobechat"])]
    # The LobeChat container's generated name (it has none in the program).
    assert lobe_upstream.startswith("lobechat-") and lobe_upstream.endswith(":3210")
    # Every other host: 404 (the last route has no matcher).
    for server in servers.values():
        last = server["routes"][-1]
        assert "match" not in last and last["handle"][0]["status_code"] == 404
    redirect = servers["http-public"]["routes"][0]
    assert set(redirect["match"][0]["host"]) == {host(u) for role, u in wanted.items() if role in PUBLIC_ROLES}
    assert redirect["handle"][0]["status_code"] == 308


def test_the_base_config_routes_logto_before_lobechat_exists(run):
    base = routes_by_host(writer_config(run, "front-config-base")["apps"]["http"]["servers"]["https-internal"])
    assert base[host(urls(run.stack)["lobechat"])] == ["lobechat:3210"]
    application = run.one(LOGTO_APPLICATION, "lobechat-application")
    assert run.depends_on(application, run.one(CONTAINER, "front-config-base"))


def test_traffic_moves_only_after_the_new_lobechat_is_ready(run):
    writer = run.one(CONTAINER, "front-config")
    assert run.depends_on(writer, run.one(CONTAINER, "lobechat-ready-wait"))
    assert run.depends_on(writer, run.one(CONTAINER, "front-config-base"))
    env = writer.env()
    assert env["FRONT_DRAIN_SECONDS"] == "60" and env["FRONT_ADMIN"] == "127.0.0.1:2019"
    assert writer.plain("networkMode") == "container:front-id"
    assert writer.plain("attach") is True and writer.plain("mustRun") is False
    # Nothing of the Caddy image's VOLUME paths is left behind per run, and no certificate reaches a writer.
    assert set(writer.plain("tmpfs")) == {"/data", "/config"}
    assert [v["containerPath"] for v in writer.plain("volumes")] == ["/etc/lobechat-logto-front"]


def test_tls_is_acme_with_the_configured_account_and_hsts_on_prod_only(run):
    config = writer_config(run)
    (policy,) = config["apps"]["tls"]["automation"]["policies"]
    assert set(policy["subjects"]) == {host(u) for u in urls(run.stack).values()}
    assert policy["issuers"] == [{"module": "acme", "email": "ops@example.com"}]
    headers = [h for r in config["apps"]["http"]["servers"]["https-public"]["routes"] for h in r["handle"] if h["handler"] == "headers"]
    assert bool(headers) == (run.stack == "prod")


def test_certificate_storage_is_a_protected_volume_kept_on_the_host(run):
    data = run.one(VOLUME, "front-data-volume")
    assert data.protect and data.retain_on_delete
    assert data.plain("name") == f"lobechat-logto-{run.stack}-caddy-data"
    mounts = {m["containerPath"]: m["volumeName"] for m in run.one(CONTAINER, "front").plain("volumes")}
    assert mounts["/data"] == data.plain("name")


def test_a_lobechat_change_replaces_the_lobechat_container_and_reloads_caddy_without_touching_it():
    before = run_program("prod", stack_config("prod"))
    after = run_program("prod", {**stack_config("prod"), f"{NS}:extraEnv": {"FEATURE_FLAGS": "-welcome_suggest"}})
    old, new = (r.one(CONTAINER, "lobechat") for r in (before, after))
    assert old.plain("envs") != new.plain("envs")
    for name in ("front", "front-config-base"):
        assert before.one(CONTAINER, name).inputs == after.one(CONTAINER, name).inputs, name
    old_config, new_config = writer_config(before), writer_config(after)
    assert old_config != new_config
    old_up = routes_by_host(old_config["apps"]["http"]["servers"]["https-public"])["chat.example.com"]
    new_up = routes_by_host(new_config["apps"]["http"]["servers"]["https-public"])["chat.example.com"]
    assert old_up != new_up  # the new container's (generated) name


def test_a_logto_image_bump_leaves_caddy_and_its_configs_alone():
    bumped = {**stack_config("prod")}
    bumped[f"{NS}:logto"] = {**bumped[f"{NS}:logto"], "image": "svhd/logto:1.43.1"}
    before, after = run_program("prod", stack_config("prod")), run_program("prod", bumped)
    assert before.one(CONTAINER, "logto").plain("image") != after.one(CONTAINER, "logto").plain("image")
    for name in ("front", "front-config-base"):
        assert before.one(CONTAINER, name).inputs == after.one(CONTAINER, name).inputs, name


def test_dev_can_run_the_prod_topology_with_no_hosts_file_edit():
    run = run_program("dev", {**stack_config("dev"), f"{NS}:front": {"mode": "caddy"}})
    caddy = run.one(CONTAINER, "front")
    assert {(p["internal"], p["external"], p["ip"]) for p in caddy.plain("ports")} == {
        (3210, 3210, "127.0.0.1"), (3001, 3001, "127.0.0.1"), (3002, 3002, "127.0.0.1"), (9000, 9000, "127.0.0.1"),
    }
    assert caddy.plain("networksAdvanced")[0]["aliases"] == [
        "front", "lobe.localhost", "auth.localhost", "auth-admin.localhost", "s3.localhost",
    ]
    assert run.one(CONTAINER, "storage").plain("networksAdvanced")[0]["aliases"] == ["storage"]
    assert not run.one(CONTAINER, "storage").plain("ports")
    assert run.one(CONTAINER, "logto").plain("networksAdvanced")[0]["aliases"] == ["logto"]
    assert not run.one(CONTAINER, "logto").plain("ports")
    servers = writer_config(run)["apps"]["http"]["servers"]
    assert set(servers) == {"http-3210", "http-3001", "http-3002", "http-9000"}
    # One site per port answers any Host there (`pulumi up` calls Logto at 127.0.0.1:3001).
    assert all("match" not in s["routes"][0] for s in servers.values())
    assert "tls" not in writer_config(run)["apps"]
    application = run.one(LOGTO_APPLICATION, "lobechat-application")
    assert application.plain("logto_endpoint") == "http://127.0.0.1:3001"


def test_external_and_none_fronts_declare_no_caddy():
    for stack, front in (("prod", {"mode": "external"}), ("dev", None)):
        config = {**stack_config(stack)}
        if front is not None:
            config[f"{NS}:front"] = front
        run = run_program(stack, config)
        assert not [c for c in run.of_type(CONTAINER) if c.name.startswith("front")]
        assert run.one(CONTAINER, "lobechat").delete_before_replace


def test_tls_files_reach_the_writers_as_0600_files_not_in_their_environment():
    from tests.test_front_config import ca_signed_pem

    _, cert, key = ca_signed_pem(["chat.example.com", "auth.example.com"])
    config = stack_config("prod")
    front = {k: v for k, v in config.get(f"{NS}:front", {}).items() if not k.startswith("acme")}
    config[f"{NS}:front"] = {**front, "tls": "files"}
    run = run_program("prod", config, {f"{NS}:frontTlsCertificate": cert, f"{NS}:frontTlsKey": key})
    key_body = key.strip().splitlines()[1]
    for name in ("front-config-base", "front-config"):
        writer = run.one(CONTAINER, name)
        shown = " ".join(str(writer.plain(k)) for k in ("envs", "entrypoints", "command", "labels"))
        leaked = key_body in shown or "PRIVATE KEY" in shown  # a boolean: a failure must not print the key
        assert not leaked, name
        assert writer.env()["FRONT_TLS_DIR"] == "/run/lobechat-logto/tls", name
        uploads = {u["file"]: u for u in writer.plain("uploads")}
        key_ok = uploads["/run/lobechat-logto/tls/private-key.pem"]["content"] == key.rstrip("\n") + "\n"
        assert key_ok, name
        assert uploads["/run/lobechat-logto/tls/certificate.pem"]["content"] == cert.rstrip("\n") + "\n", name
        assert {u["permissions"] for u in uploads.values()} == {"0600"} and writer.is_secret("uploads"), name
        assert "tls" in writer_config(run, name)["apps"], name


def test_without_tls_files_the_writers_get_no_uploads(run):
    for name in ("front-config-base", "front-config"):
        assert not run.one(CONTAINER, name).plain("uploads"), name
        assert "FRONT_TLS_DIR" not in run.one(CONTAINER, name).env(), name
