"""The Logto admin console (issue 8, item 1): closed off 'dev' unless the stage opts in.

Closed means nobody outside the Docker host can reach ``<adminEndpoint>/console`` and register the
first administrator: its port is published on 127.0.0.1 only (whatever ``publish.bindAddress`` says),
``ADMIN_ENDPOINT`` is that loopback URL (Logto reaches it inside its own container; the operator
through an SSH tunnel), and the admin host name is not sent to the proxy on the Docker host.
"""

from __future__ import annotations

from tests.pulumi_mocks import CONTAINER, run_program, stack_config

NS = "lobechat-logto"


def prod_with(**changes) -> dict:
    config = stack_config("prod")
    config.update({f"{NS}:{k}": v for k, v in changes.items()})
    return config


def ports(run, name: str) -> dict[int, str]:
    return {p["internal"]: p["ip"] for p in run.one(CONTAINER, name).plain("ports")}


def test_closed_console_is_published_on_loopback_even_when_the_stage_binds_every_interface():
    publish = {"bindAddress": "0.0.0.0", "allowNonLoopbackBind": True}
    run = run_program("prod", prod_with(publish=publish))
    assert ports(run, "logto") == {3001: "0.0.0.0", 3002: "127.0.0.1"}
    env = run.one(CONTAINER, "logto").env()
    assert env["ADMIN_ENDPOINT"] == "http://127.0.0.1:3002" and env["ADMIN_PORT"] == "3002"
    assert run.outputs["logtoAdminTunnel"] == "ssh -N -L 3002:127.0.0.1:3002 deploy@prod.example.com"
    assert run.outputs["logtoAdminUrl"] == "http://127.0.0.1:3002/console"


def test_closed_console_host_is_not_sent_to_the_proxy_on_the_docker_host():
    run = run_program("prod", prod_with())
    hosts = [h["host"] for h in run.one(CONTAINER, "logto").plain("hosts")]
    assert "auth-admin.example.com" not in hosts and "auth.example.com" in hosts


def test_opened_console_is_published_like_the_other_ports_with_its_public_endpoint():
    logto = {**stack_config("prod")[f"{NS}:logto"], "exposeAdminConsole": True}
    run = run_program("prod", prod_with(logto=logto, publish={"bindAddress": "0.0.0.0", "allowNonLoopbackBind": True}))
    assert ports(run, "logto") == {3001: "0.0.0.0", 3002: "0.0.0.0"}
    assert run.one(CONTAINER, "logto").env()["ADMIN_ENDPOINT"] == "https://auth-admin.example.com"
    assert "logtoAdminTunnel" not in run.outputs


def test_dev_console_stays_open_on_its_localhost_name():
    run = run_program("dev", stack_config("dev"))
    assert run.one(CONTAINER, "logto").env()["ADMIN_ENDPOINT"] == "http://auth-admin.localhost:3002"
    assert ports(run, "logto") == {3001: "127.0.0.1", 3002: "127.0.0.1"}
    assert "logtoAdminTunnel" not in run.outputs
