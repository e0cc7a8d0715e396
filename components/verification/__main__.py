"""``python -m components.verification --stack <stage>``: verify a deployed stage from this machine.

Reads ``pulumi stack output --json --show-secrets --stack <stage>`` (or ``--outputs-file``, e.g. a
file saved from that command, ``-`` for stdin), runs every check and prints one line per check; the
in-network probe runs with ``docker run`` on the stage network when a Docker CLI is here (it uses the
stack's ``dockerHost``). Exit status: 0 all passed, 1 a check failed, 2 the stage could not be read.
Secrets are read from the outputs or the environment, never from the command line, and never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from components.verification.checks import DEFAULT_EXPIRY_WARNING_DAYS, run_verification
from components.verification.probe import run_probe_with_docker
from components.verification.target import ManagementAccess, TargetError, VerificationTarget, from_stack_outputs

OutputsReader = Callable[[str, str | None], dict[str, Any]]


def read_stack_outputs(stack: str, cwd: str | None) -> dict[str, Any]:
    """``pulumi stack output --json --show-secrets`` of ``stack`` (TargetError when it fails)."""
    argv = ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack]
    try:
        completed = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise TargetError("the pulumi CLI is not on PATH: save the outputs elsewhere with "
                          "`pulumi stack output --json --show-secrets > outputs.json` and pass --outputs-file") from None
    except subprocess.TimeoutExpired:
        raise TargetError("`pulumi stack output` did not answer within 120 s") from None
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no message"])[-1]
        raise TargetError(f"`pulumi stack output --stack {stack}` failed: {last[:300]}")
    return _parse_outputs(completed.stdout, "pulumi stack output")


def _parse_outputs(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise TargetError(f"{where} is not JSON (use `pulumi stack output --json --show-secrets`)") from None
    if not isinstance(data, dict):
        raise TargetError(f"{where} is not a JSON object of stack outputs")
    return data


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m components.verification", description=__doc__.split("\n\n")[0])
    p.add_argument("--stack", required=True, help="the stage (Pulumi stack) to verify, e.g. dev")
    p.add_argument("--cwd", help="the project directory for `pulumi stack output` (default: here)")
    p.add_argument("--outputs-file", help="read the stack outputs from this JSON file ('-': stdin) instead of the pulumi CLI")
    p.add_argument("--logto-url", help="where this machine reaches Logto (default: the stack's logto.apiEndpoint)")
    p.add_argument("--lobechat-url", help="where this machine reaches LobeChat (default: the stack's verification.lobechatCheckUrl)")
    p.add_argument("--m2m-client-id", help="an M2M app with the Management API role (secret: LOGTO_M2M_CLIENT_SECRET in the environment)")
    p.add_argument("--no-probe", action="store_true", help="skip the in-network probe (docker run on the stage network)")
    p.add_argument("--expiry-warning-days", type=int, default=DEFAULT_EXPIRY_WARNING_DAYS,
                   help="a client secret expiring sooner fails (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    return p


def build_target(args: argparse.Namespace, outputs: dict[str, Any], environ: dict[str, str]) -> VerificationTarget:
    target = from_stack_outputs(args.stack, outputs)
    changes: dict[str, Any] = {}
    if args.logto_url:
        changes["logto_url"] = args.logto_url.rstrip("/")
    if args.lobechat_url:
        changes["lobechat_url"] = args.lobechat_url.rstrip("/")
    if args.m2m_client_id:
        secret = environ.get("LOGTO_M2M_CLIENT_SECRET")
        if not secret:
            raise TargetError("--m2m-client-id needs the secret in the environment variable LOGTO_M2M_CLIENT_SECRET")
        endpoint = changes.get("logto_url", target.logto_url)
        resource = target.management.resource if target.management else "https://default.logto.app/api"
        changes["management"] = ManagementAccess(endpoint, args.m2m_client_id, secret, resource)
    elif args.logto_url and target.management is not None:
        changes["management"] = replace(target.management, endpoint=changes["logto_url"])
    return replace(target, **changes) if changes else target


def main(argv: Sequence[str] | None = None, *, read_outputs: OutputsReader = read_stack_outputs,
         environ: dict[str, str] | None = None, probe_runner: Any = None, out: Any = None) -> int:
    args = parser().parse_args(argv)
    out = out or sys.stdout
    environ = dict(os.environ if environ is None else environ)
    try:
        if args.outputs_file:
            text = sys.stdin.read() if args.outputs_file == "-" else open(args.outputs_file, encoding="utf-8").read()
            outputs = _parse_outputs(text, args.outputs_file)
        else:
            outputs = read_outputs(args.stack, args.cwd)
        target = build_target(args, outputs, environ)
    except (TargetError, OSError) as error:
        print(f"cannot verify stage '{args.stack}': {error}", file=sys.stderr)
        return 2
    probe: Any
    if args.no_probe:
        probe = "--no-probe"
    elif not target.network or not target.lobechat_image:
        probe = "the stack outputs name no stage network (external or older stack)"
    else:
        kwargs = {"runner": probe_runner} if probe_runner is not None else {}
        probe = run_probe_with_docker(image=target.lobechat_image, network=target.network, url=target.discovery_url,
                                      proxied_host_names=target.proxied_host_names, docker_host=target.docker_host, **kwargs)
    report = run_verification(target, probe=probe, expiry_warning_days=args.expiry_warning_days)
    if args.json:
        json.dump({"stage": report.stage, "ok": report.ok, "results": [r.__dict__ for r in report.results]}, out, indent=2)
        out.write("\n")
    else:
        out.write(report.text() + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
