"""``python -m components.verification``: reads the stack outputs, runs the checks, prints, exits 0/1/2."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.verification.__main__ import main
from components.verification.probe import docker_run_argv, run_probe_with_docker
from tests.verification_stage import closed_port_url, deployed_stage, secrets_absent

REPO = Path(__file__).resolve().parent.parent


def stack_outputs(stage) -> dict:
    """What `pulumi stack output --json --show-secrets` prints for the stage."""
    t = stage.target
    return {
        "lobechatUrl": t.app_url, "logtoEndpoint": stage.logto.endpoint, "issuer": t.issuer,
        "clientId": stage.app_id, "clientSecret": t.environment["AUTH_LOGTO_SECRET"],
        "lobechatEnvironment": dict(t.environment),
        "verificationTarget": {
            "generation": t.generation, "logtoUrl": t.logto_url, "lobechatUrl": t.lobechat_url,
            "management": {"endpoint": t.logto_url, "clientId": stage.logto.m2m_client_id,
                           "clientSecret": stage.logto.m2m_client_secret, "resource": "https://default.logto.app/api"},
            "applicationId": stage.app_id, "webhookId": stage.hook_id, "network": "lobechat-logto-dev-net",
            "lobechatImage": "lobehub/lobe-chat-database:1.143.3", "proxiedHostNames": [], "dockerHost": None,
        },
    }


class FakeDocker:
    """Plays `docker run` of the probe: records the argv, prints what the probe would print."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.calls: list[list[str]] = []

    def __call__(self, argv, env):
        self.calls.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, stdout=self.line + "\n", stderr="")


def run_main(stage, *args, outputs=None, probe=None):
    out = io.StringIO()
    code = main(["--stack", "dev", *args], read_outputs=lambda stack, cwd: outputs if outputs is not None else stack_outputs(stage),
                environ={}, probe_runner=probe, out=out)
    return code, out.getvalue()


def good_probe(stage) -> FakeDocker:
    body = {"status": 200, "contentType": "application/json", "json": True, "issuer": stage.target.issuer}
    return FakeDocker("LOBECHAT_LOGTO_PROBE " + json.dumps(body))


def test_a_well_wired_stage_exits_0_and_prints_every_check():
    with deployed_stage() as stage:
        probe = good_probe(stage)
        code, text = run_main(stage, probe=probe)
    assert code == 0
    assert "PASS issuer-discovery-in-network" in text and "0 failed" in text
    assert probe.calls and probe.calls[0][:5] == ["docker", "run", "--rm", "--network", "lobechat-logto-dev-net"]
    assert secrets_absent(text, stage.secrets())


def test_a_failed_check_exits_1_with_the_fix():
    with deployed_stage() as stage:
        outputs = stack_outputs(stage)
        outputs["lobechatEnvironment"]["AUTH_LOGTO_SECRET"] = "WrongSecretValue0123456789abcdef"
        code, text = run_main(stage, "--no-probe", outputs=outputs)
    assert code == 1
    assert "FAIL client-authentication" in text and "fix:" in text
    assert secrets_absent(text, stage.secrets() + ["WrongSecretValue0123456789abcdef"])


def test_json_output_lists_results():
    with deployed_stage() as stage:
        code, text = run_main(stage, "--no-probe", "--json")
    data = json.loads(text)
    assert code == 0 and data["ok"] is True
    assert {"name", "passed", "detail", "fix", "skipped"} <= set(data["results"][0])


def test_url_overrides_reach_logto_elsewhere():
    with deployed_stage() as stage:
        code, text = run_main(stage, "--no-probe", "--logto-url", closed_port_url())
    assert code == 1 and "FAIL logto-status" in text


def test_outputs_without_the_verification_target_exit_2_with_what_to_do(capsys):
    with deployed_stage() as stage:
        outputs = stack_outputs(stage)
        del outputs["verificationTarget"]
        code, _ = run_main(stage, outputs=outputs)
    assert code == 2
    assert "verificationTarget" in capsys.readouterr().err


def test_outputs_without_show_secrets_are_refused(capsys):
    with deployed_stage() as stage:
        outputs = stack_outputs(stage)
        outputs["lobechatEnvironment"] = {k: "[secret]" for k in outputs["lobechatEnvironment"]}
        code, _ = run_main(stage, outputs=outputs)
    assert code == 2 and "--show-secrets" in capsys.readouterr().err


def test_m2m_override_needs_its_secret_from_the_environment(capsys):
    with deployed_stage() as stage:
        code, _ = run_main(stage, "--m2m-client-id", "someid")
    assert code == 2 and "LOGTO_M2M_CLIENT_SECRET" in capsys.readouterr().err


def test_outputs_file_is_read(tmp_path):
    with deployed_stage() as stage:
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(stack_outputs(stage)))
        out = io.StringIO()
        code = main(["--stack", "dev", "--outputs-file", str(path), "--no-probe"], environ={}, out=out)
    assert code == 0


def test_the_module_runs_as_a_command_and_explains_its_flags():
    completed = subprocess.run([sys.executable, "-m", "components.verification", "--help"], cwd=REPO,
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0 and "--stack" in completed.stdout and "--outputs-file" in completed.stdout


def test_without_the_pulumi_cli_the_command_says_to_save_the_outputs(monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    code = main(["--stack", "dev"], environ={})
    assert code == 2 and "--outputs-file" in capsys.readouterr().err


def test_docker_probe_argv_carries_network_hosts_and_the_images_node():
    argv = docker_run_argv(image="lobehub/lobehub:2.2.10", network="net", url="https://auth.example.com/oidc/x",
                           proxied_host_names=["auth.example.com"])
    assert argv[:5] == ["docker", "run", "--rm", "--network", "net"]
    assert ["--add-host", "auth.example.com:host-gateway"] == argv[argv.index("--add-host"):argv.index("--add-host") + 2]
    assert argv[argv.index("--entrypoint") + 1] == "/bin/node" and argv[-1] == "https://auth.example.com/oidc/x"


def test_a_probe_that_prints_nothing_says_why():
    result = run_probe_with_docker(image="i", network="n", url="u", runner=lambda argv, env: subprocess.CompletedProcess(argv, 125, "", "Error: No such network: n"))
    assert isinstance(result, str) and "No such network" in result


@pytest.mark.parametrize("docker_host", ["ssh://deploy@prod.example.com"])
def test_the_probe_uses_the_stages_docker_host(docker_host):
    seen = {}

    def runner(argv, env):
        seen.update(env)
        return subprocess.CompletedProcess(argv, 0, "LOBECHAT_LOGTO_PROBE {\"error\":\"ENOTFOUND\"}\n", "")

    result = run_probe_with_docker(image="i", network="n", url="u", docker_host=docker_host, runner=runner)
    assert seen["DOCKER_HOST"] == docker_host and result.error == "ENOTFOUND"
