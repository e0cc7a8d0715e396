"""Each verification check, passing and failing, against the Logto stand-in and a LobeChat stand-in."""

from __future__ import annotations

import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from components.verification import VerificationFailed, run_verification
from components.verification.probe import ProbeResult
from tests.prereqs import require_or_skip
from tests.verification_stage import (
    closed_port_url,
    deployed_stage,
    node_binary,
    rebased,
    run_node_probe,
    secrets_absent,
)

EVERY_CHECK = [
    "logto-status", "issuer-discovery", "issuer-discovery-in-network", "redirect-uri", "sign-out-uri",
    "cors-origin", "client-secret-expiry", "client-authentication", "webhook-delivery", "lobechat-answers",
    "sign-in-redirect", "environment-generation", "environment-providers", "environment-urls",
    "environment-names", "cookies-https",
]
GOOD_PROBE = None  # set per test from the stage's issuer


def probe_for(stage) -> ProbeResult:
    return ProbeResult(status=200, content_type="application/json", is_json=True, issuer=stage.target.issuer)


@pytest.fixture(params=[1, 2], ids=["gen1", "gen2"])
def stage(request):
    with deployed_stage(request.param) as deployed:
        yield deployed


@pytest.fixture
def stage1():
    with deployed_stage(1) as deployed:
        yield deployed


def verdict(stage, target=None, **kwargs):
    kwargs.setdefault("probe", probe_for(stage))
    kwargs.setdefault("now_ms", stage.logto.state.clock_ms)
    report = run_verification(target or stage.target, **kwargs)
    assert secrets_absent(report.text(), stage.secrets()), "a secret appears in the report"
    return report


def failed_names(report) -> list[str]:
    return [r.name for r in report.failures]


# --- everything right ----------------------------------------------------------------------------


def test_a_well_wired_stage_passes_every_check(stage):
    report = verdict(stage)
    names = [r.name for r in report.results]
    assert names == EVERY_CHECK
    assert failed_names(report) == [] and report.ok


def test_the_webhook_test_delivery_reached_lobechat_and_was_accepted(stage):
    verdict(stage)
    assert stage.lobe.webhook_results == [200]


# --- Logto ------------------------------------------------------------------------------------------


def test_logto_down_fails_logto_status(stage1):
    report = verdict(stage1, replace(stage1.target, logto_url=closed_port_url()))
    result = report.result("logto-status")
    assert not result.passed and "docker logs" in result.fix


def test_a_issuer_differing_from_discovery_fails_with_both_values(stage1):
    report = verdict(stage1, stage1.with_env(AUTH_LOGTO_ISSUER=stage1.logto.issuer.replace("127.0.0.1", "localhost")))
    result = report.result("issuer-discovery")
    assert not result.passed
    assert stage1.logto.issuer in result.detail and "character for character" in result.fix


class _HtmlEverywhere(BaseHTTPRequestHandler):
    """A proxy that answers every path with its own login page."""

    def do_GET(self):  # noqa: N802
        body = b"<html>Please sign in to the proxy</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_proxy_answering_well_known_is_reported_as_non_conform_metadata(stage1):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlEverywhere)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        target = replace(stage1.target, logto_url=f"http://127.0.0.1:{server.server_address[1]}")
        result = verdict(stage1, target).result("issuer-discovery")
    finally:
        server.shutdown()
        server.server_close()
    assert not result.passed
    assert "not a conform Authorization Server Metadata response" in result.detail
    assert "text/html" in result.detail


def test_discovery_answering_404_fails(stage1):
    target = stage1.with_env(AUTH_LOGTO_ISSUER=stage1.logto.endpoint + "/wrong")
    result = verdict(stage1, target).result("issuer-discovery")
    assert not result.passed and "404" in result.detail


# --- the in-network probe (the real script, run by a real Node 22) -------------------------------------


def _require_node():
    require_or_skip(node_binary().is_file(), f"Node 22 not found at {node_binary()}: run .ci/install-test-deps")


def test_probe_script_reads_the_discovery_document(stage1):
    _require_node()
    probe = run_node_probe(stage1.target.discovery_url)
    assert probe is not None and probe.status == 200 and probe.issuer == stage1.logto.issuer
    result = verdict(stage1, probe=probe).result("issuer-discovery-in-network")
    assert result.passed and not result.skipped


def test_probe_that_cannot_connect_fails_with_the_fetch_failed_fix(stage1):
    _require_node()
    probe = run_node_probe(rebased(stage1.target.discovery_url, closed_port_url()))
    assert probe is not None and probe.error == "ECONNREFUSED"
    result = verdict(stage1, probe=probe).result("issuer-discovery-in-network")
    assert not result.passed
    assert "TypeError: fetch failed" in result.fix and "network aliases" in result.fix


def test_probe_seeing_another_issuer_fails(stage1):
    probe = ProbeResult(status=200, content_type="application/json", is_json=True, issuer="http://127.0.0.1:3001/oidc")
    result = verdict(stage1, probe=probe).result("issuer-discovery-in-network")
    assert not result.passed and "inside the stage network" in result.detail


def test_probe_that_did_not_run_is_skipped_with_the_reason(stage1):
    result = verdict(stage1, probe="no docker CLI on this machine").result("issuer-discovery-in-network")
    assert result.passed and result.skipped and "no docker CLI" in result.detail


# --- the application ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,check",
    [("redirectUris", "redirect-uri"), ("postLogoutRedirectUris", "sign-out-uri"), ("corsAllowedOrigins", "cors-origin")],
)
def test_a_missing_uri_on_the_application_fails_its_check(stage1, field, check):
    redirect = ["http://0.0.0.0:3210/api/auth/callback/logto"] if field == "redirectUris" else [f"{stage1.target.app_url}/api/auth/callback/logto"]
    sign_out = ["http://0.0.0.0:3210/"] if field == "postLogoutRedirectUris" else [f"{stage1.target.app_url}/"]
    cors = [] if field == "corsAllowedOrigins" else [stage1.target.app_url]
    stage1.api.applications.update(
        stage1.app_id,
        oidc_client_metadata={"redirectUris": redirect, "postLogoutRedirectUris": sign_out},
        custom_client_metadata={"corsAllowedOrigins": cors},
    )
    report = verdict(stage1)
    assert failed_names(report) == [check]


def test_a_deleted_application_fails_the_application_checks_with_the_refresh_fix(stage1):
    stage1.api.applications.delete(stage1.app_id)
    report = verdict(stage1)
    result = report.result("redirect-uri")
    assert not result.passed and "pulumi refresh" in result.fix
    assert not report.result("client-authentication").passed


def test_without_management_credentials_the_application_checks_are_skipped(stage1):
    report = verdict(stage1, replace(stage1.target, management=None))
    skipped = [r.name for r in report.results if r.skipped]
    assert skipped == ["redirect-uri", "sign-out-uri", "cors-origin", "client-secret-expiry", "webhook-delivery"]
    assert report.ok


# --- client credentials -----------------------------------------------------------------------------------


def test_a_wrong_client_secret_fails_client_authentication_with_invalid_client(stage1):
    report = verdict(stage1, stage1.with_env(AUTH_LOGTO_SECRET="WrongSecretValue0123456789abcdef"))
    result = report.result("client-authentication")
    assert not result.passed and "invalid_client" in result.detail
    assert not report.result("client-secret-expiry").passed


def test_a_secret_near_expiry_fails_and_an_expired_one_fails_both_checks(stage1):
    clock = stage1.logto.state.clock_ms
    now = clock()
    created = stage1.api.applications.create_secret(stage1.app_id, "rotation-soon", expires_at=now + 5 * 86_400_000)
    target = stage1.with_env(AUTH_LOGTO_SECRET=created["value"])
    soon = verdict(stage1, target, expiry_warning_days=14)
    assert failed_names(soon) == ["client-secret-expiry"] and "expires in 5.0 days" in soon.result("client-secret-expiry").detail
    relaxed = verdict(stage1, target, expiry_warning_days=3)
    assert relaxed.ok
    stage1.logto.state.clock_ms = lambda: now + 6 * 86_400_000
    expired = verdict(stage1, target)
    assert set(failed_names(expired)) == {"client-secret-expiry", "client-authentication"}
    assert "expired" in expired.result("client-secret-expiry").detail


# --- the webhook -----------------------------------------------------------------------------------------


def test_a_signing_key_mismatch_is_reported_as_400_key_mismatch(stage1):
    stage1.lobe.configure({**stage1.target.environment, "LOGTO_WEBHOOK_SIGNING_KEY": "not-the-hooks-key"}, 1)
    report = verdict(stage1)
    result = report.result("webhook-delivery")
    assert failed_names(report) == ["webhook-delivery"]
    assert "400" in result.detail and "signing key" in result.detail
    assert stage1.lobe.webhook_results == [400]


def test_a_key_rotated_in_logto_fails_the_webhook_check(stage1):
    stage1.api.hooks.rotate_signing_key(stage1.hook_id)
    result = verdict(stage1).result("webhook-delivery")
    assert not result.passed and "400" in result.detail


def test_lobechat_without_the_key_variable_answers_500(stage1):
    env = dict(stage1.target.environment)
    env.pop("LOGTO_WEBHOOK_SIGNING_KEY")
    stage1.lobe.configure(env, 1)
    result = verdict(stage1).result("webhook-delivery")
    assert not result.passed and "500" in result.detail


def test_an_unreachable_webhook_url_is_reported_with_the_network_fix(stage1):
    stage1.logto.state.delivery_aliases["lobe.localhost:3210"] = closed_port_url().removeprefix("http://")
    result = verdict(stage1).result("webhook-delivery")
    assert not result.passed and "could not deliver" in result.detail


def test_a_hook_pointing_elsewhere_fails(stage1):
    stage1.api.hooks.update(stage1.hook_id, url="http://chat.localhost:3210/api/webhooks/logto")
    result = verdict(stage1).result("webhook-delivery")
    assert not result.passed and "chat.localhost" in result.detail


def test_a_hook_on_a_rotation_alias_passes_when_the_target_names_that_url(stage1):
    # Webhook-key rotation: the hook delivers to the key generation's alias on the stage network.
    alias_url = "http://lobechat-hook-1:3210/api/webhooks/logto"
    stage1.logto.state.delivery_aliases["lobechat-hook-1:3210"] = stage1.lobe.host_port
    stage1.api.hooks.update(stage1.hook_id, url=alias_url)
    assert verdict(stage1, replace(stage1.target, hook_url=alias_url)).result("webhook-delivery").passed
    # a target that expects lobechatUrl's webhook path reports the alias as pointing elsewhere
    assert not verdict(stage1).result("webhook-delivery").passed


def test_the_hook_url_comes_from_the_verification_target_output():
    from components.verification.target import from_stack_outputs
    outputs = {
        "lobechatUrl": "https://chat.example.com", "lobechatEnvironment": {"APP_URL": "https://chat.example.com"},
        "verificationTarget": {"generation": 2, "logtoUrl": "https://auth.example.com", "lobechatUrl": "http://127.0.0.1:1",
                               "webhookUrl": "http://lobechat-hook-3:3210/api/webhooks/logto"},
    }
    assert from_stack_outputs("prod", outputs).webhook_url == "http://lobechat-hook-3:3210/api/webhooks/logto"
    del outputs["verificationTarget"]["webhookUrl"]
    assert from_stack_outputs("prod", outputs).webhook_url == "https://chat.example.com/api/webhooks/logto"


def test_the_hook_is_found_by_its_url_when_its_id_is_not_known(stage1):
    report = verdict(stage1, replace(stage1.target, webhook_id=None))
    assert report.result("webhook-delivery").passed


def test_webhook_check_is_skipped_when_the_webhook_is_off(stage1):
    result = verdict(stage1, stage1.with_env(LOGTO_WEBHOOK_SIGNING_KEY=None)).result("webhook-delivery")
    assert result.skipped


# --- LobeChat ---------------------------------------------------------------------------------------------


def test_lobechat_down_fails_lobechat_answers_and_sign_in(stage1):
    report = verdict(stage1, replace(stage1.target, lobechat_url=closed_port_url()))
    assert {"lobechat-answers", "sign-in-redirect"} <= set(failed_names(report))


def test_a_wrong_nextauth_url_sends_sign_in_elsewhere(stage1):
    env = {**stage1.target.environment, "NEXTAUTH_URL": "http://0.0.0.0:3210/api/auth"}
    stage1.lobe.configure(env, 1)
    report = verdict(stage1, stage1.with_env(NEXTAUTH_URL=env["NEXTAUTH_URL"]))
    result = report.result("sign-in-redirect")
    assert not result.passed and "http://0.0.0.0:3210/api/auth/callback/logto" in result.detail
    assert not report.result("environment-urls").passed


def test_gen2_sign_in_without_logto_among_providers_fails(stage):
    variable = "AUTH_SSO_PROVIDERS" if stage.target.generation == 2 else "NEXT_AUTH_SSO_PROVIDERS"
    env = {**stage.target.environment, variable: "github"}
    stage.lobe.configure(env, stage.target.generation)
    report = verdict(stage, stage.with_env(**{variable: "github"}))
    assert not report.result("environment-providers").passed
    if stage.target.generation == 2:
        assert not report.result("sign-in-redirect").passed


# --- the report -------------------------------------------------------------------------------------------


def test_verification_failed_lists_each_failure_with_its_fix_and_no_secret(stage1):
    report = verdict(stage1, stage1.with_env(AUTH_LOGTO_SECRET="WrongSecretValue0123456789abcdef", LOGTO_CLIENT_SECRETT="x" * 32))
    message = str(VerificationFailed(report))
    assert "FAIL client-authentication" in message and "fix:" in message
    assert "LOGTO_CLIENT_SECRETT" in message and "onFailure" in message
    assert "PASS" not in message
    assert secrets_absent(message, stage1.secrets() + ["WrongSecretValue0123456789abcdef", "x" * 32])


def test_lobechat_down_points_to_its_logs_by_label_not_by_a_fixed_name(stage1):
    # Behind Caddy the LobeChat container's name is generated: `docker logs <prefix>-lobechat` fails.
    report = verdict(stage1, replace(stage1.target, lobechat_url=closed_port_url()))
    fix = report.result("lobechat-answers").fix
    assert "-lobechat`" not in fix and "<prefix>-lobechat" not in fix
    assert "--filter label=lobechat-logto.stage=<prefix> --filter label=lobechat-logto.role=lobechat" in fix
