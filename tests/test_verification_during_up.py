"""Verification at the end of ``pulumi up``: the dev program under the engine-like mocks, against the
Logto stand-in (answering as ``http://auth.localhost:3001``) and a LobeChat stand-in that gets the
environment the LobeChat container gets.

The mocks do what the stage network does: the in-network probe container runs the real probe script
with a real Node 22, its ``auth.localhost:3001`` reaching the Logto stand-in (the Logto container's
alias), and Logto's deliveries to ``lobe.localhost:3210`` reach the LobeChat stand-in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pulumi
import pytest

from components.verification import VerificationFailed
from components.verification.during_up import PROBE_ROLE, PROBE_ROLE_LABEL, evaluate, verify_after_up
from components.config.verification import VerificationConfig
from tests.lobechat_standin import LobeChatStandIn
from tests.logto_standin import LogtoStandIn
from tests.prereqs import require_or_skip
from tests.pulumi_mocks import CONTAINER, PROJECT
from tests.test_program_against_standin import EngineLikeMocks, _plain, dev_config, failing_run_quietly, run_against
from tests.verification_stage import node_binary, rebased, run_node_probe, secrets_absent

PUBLIC_LOGTO = "http://auth.localhost:3001"


class StageNetworkMocks(EngineLikeMocks):
    """EngineLikeMocks plus the two containers verification talks to: LobeChat and the probe."""

    def __init__(self, standin: LogtoStandIn, lobe: LobeChatStandIn, *, key_override: str | None = None, **kwargs: Any) -> None:
        super().__init__(standin, **kwargs)
        self.lobe = lobe
        self.key_override = key_override
        self.probe_urls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        if args.typ == CONTAINER and args.name == "lobechat":
            env = dict(item.split("=", 1) for item in _plain(args.inputs.get("envs")) or [])
            if self.key_override is not None:
                env["LOGTO_WEBHOOK_SIGNING_KEY"] = self.key_override
            generation = 2 if "AUTH_SSO_PROVIDERS" in env else 1
            self.lobe.configure(env, generation)
        resource_id, outs = super().new_resource(args)
        labels = {item.get("label"): item.get("value") for item in _plain(args.inputs.get("labels")) or []}
        if args.typ == CONTAINER and labels.get(PROBE_ROLE_LABEL) == PROBE_ROLE:
            url = _plain(args.inputs.get("command"))[-1]
            self.probe_urls.append(url)
            result = run_node_probe(rebased(url, self.standin.endpoint))
            outs["containerLogs"] = "" if result is None else (
                "LOBECHAT_LOGTO_PROBE " + __import__("json").dumps(
                    {"status": result.status, "contentType": result.content_type, "json": result.is_json,
                     "issuer": result.issuer, "error": result.error})
            )
        return resource_id, outs


@contextlib.contextmanager
def stage_servers() -> Iterator[tuple[LogtoStandIn, LobeChatStandIn]]:
    require_or_skip(node_binary().is_file(), f"Node 22 not found at {node_binary()}: run .ci/install-test-deps")
    with LogtoStandIn(public_endpoint=PUBLIC_LOGTO) as logto, LobeChatStandIn() as lobe:
        logto.state.delivery_aliases["lobe.localhost:3210"] = lobe.host_port
        yield logto, lobe
        violations = list(logto.openapi_violations)
        assert violations == []


def verified_config(logto: LogtoStandIn, lobe: LobeChatStandIn, **verification: Any) -> dict[str, Any]:
    return dev_config(logto, verification={"lobechatCheckUrl": lobe.url, **verification})


def test_a_well_wired_dev_stage_passes_verification_at_the_end_of_up():
    with stage_servers() as (logto, lobe):
        mocks = StageNetworkMocks(logto, lobe)
        run = run_against(logto, verified_config(logto, lobe), mocks)
        summary = run.outputs["verification"]
        assert summary.startswith("verification of stage 'dev':") and " 0 failed" in summary
        assert mocks.probe_urls == [f"{PUBLIC_LOGTO}/oidc/.well-known/openid-configuration"]
        assert lobe.webhook_results == [200]
        assert ("POST", "/api/auth/signin/logto") in lobe.requests


def test_the_probe_runs_lobechats_image_on_the_stage_network_after_lobechat():
    with stage_servers() as (logto, lobe):
        mocks = StageNetworkMocks(logto, lobe)
        run = run_against(logto, verified_config(logto, lobe), mocks)
        probe = run.one(CONTAINER, "lobechat-issuer-probe-run")
        lobechat = run.one(CONTAINER, "lobechat")
        assert probe.plain("image") == lobechat.plain("image")
        assert probe.plain("entrypoints") == ["/bin/node"]
        networks = [n["name"] for n in probe.plain("networksAdvanced")]
        assert networks == [n["name"] for n in lobechat.plain("networksAdvanced")]
        assert probe.plain("attach") is True and probe.plain("mustRun") is False
        assert run.depends_on(probe, lobechat)
        # Hardened and bounded like every container (it had neither until the one-shot helper).
        assert probe.plain("securityOpts") == ["no-new-privileges:true"]
        assert probe.plain("memory") == 256 and probe.plain("restart") == "no"


def test_a_failed_check_fails_up_with_the_list_and_no_secret():
    with stage_servers() as (logto, lobe):
        mocks = StageNetworkMocks(logto, lobe, key_override="a-key-lobechat-holds-by-mistake")
        with failing_run_quietly(VerificationFailed), pytest.raises(VerificationFailed) as failure:
            run_against(logto, verified_config(logto, lobe), mocks)
        message = str(failure.value)
        assert "FAIL webhook-delivery" in message and "fix:" in message
        assert [r.name for r in failure.value.report.failures] == ["webhook-delivery"]
        secrets = [logto.m2m_client_secret, "a-key-lobechat-holds-by-mistake"]
        secrets += [h["signingKey"] for h in logto.state.hooks.values()]
        secrets += [s["value"] for values in logto.state.secrets.values() for s in values]
        assert secrets_absent(message, secrets)


def test_on_failure_warn_lets_up_finish_and_reports_the_failure_in_the_output():
    with stage_servers() as (logto, lobe):
        mocks = StageNetworkMocks(logto, lobe, key_override="a-key-lobechat-holds-by-mistake")
        run = run_against(logto, verified_config(logto, lobe, onFailure="warn"), mocks)
        assert " 1 failed" in run.outputs["verification"]


def test_verification_off_declares_no_probe_and_exports_no_verification():
    with stage_servers() as (logto, lobe):
        mocks = StageNetworkMocks(logto, lobe)
        run = run_against(logto, verified_config(logto, lobe, enabled=False), mocks)
        assert "verification" not in run.outputs and mocks.probe_urls == []
        assert "verificationTarget" in run.outputs


def test_probe_off_skips_the_in_network_check_only():
    with stage_servers() as (logto, lobe):
        mocks = StageNetworkMocks(logto, lobe)
        run = run_against(logto, verified_config(logto, lobe, inNetworkProbe=False), mocks)
        assert mocks.probe_urls == [] and "1 skipped" in run.outputs["verification"]


def test_no_verification_in_a_preview(monkeypatch):
    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: True)
    output = verify_after_up("dev", outputs={}, probe=None, wait_for=[], config=VerificationConfig())
    assert isinstance(output, pulumi.Output)


def test_evaluate_warns_instead_of_raising_under_warn():
    warnings: list[str] = []
    outputs = {"lobechatUrl": "http://lobe.localhost:3210", "lobechatEnvironment": {"APP_URL": "http://lobe.localhost:3210"},
               "verificationTarget": {"generation": 1, "logtoUrl": "http://127.0.0.1:9", "lobechatUrl": "http://127.0.0.1:9"}}
    summary = evaluate("dev", outputs, None, VerificationConfig(on_failure="warn", in_network_probe=False),
                       probe_ran=False, warn=warnings.append, info=warnings.append)
    assert "failed" in summary and warnings and "onFailure is warn" in warnings[0]
