"""The in-network probe: the discovery URL fetched from inside the stage network, as LobeChat fetches it.

LobeChat's server fetches ``<issuer>/.well-known/openid-configuration`` itself; when that fails the
user lands on ``/api/auth/error?error=Configuration`` with ``TypeError: fetch failed`` in the log.
Fetching it from the operator's machine proves nothing about the container's resolver and network,
so the probe runs a one-shot container of LobeChat's own image (its ``/bin/node`` and its resolver)
on the stage network, with the same ``/etc/hosts`` entries as the LobeChat container, and prints one
line the checks read back: ``LOBECHAT_LOGTO_PROBE {"status":200,"contentType":...,"issuer":...}`` or
``LOBECHAT_LOGTO_PROBE {"error":"ENOTFOUND"}``.

Inside ``pulumi up`` the probe is a ``docker.Container`` (attached, logs kept); the standalone command
runs the same script with ``docker run --rm`` when a Docker CLI is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PROBE_PREFIX = "LOBECHAT_LOGTO_PROBE "
NODE_IN_LOBECHAT_IMAGE = "/bin/node"
PROBE_TIMEOUT_MS = 10_000

# process.argv[1] is the URL (``node -e <script> <url>``). It always exits 0 once it printed its line:
# the checks read the line, not the exit code, so a failed fetch is a result, not a crash.
PROBE_SCRIPT = (
    "const u=process.argv[1];"
    f"const o=x=>console.log('{PROBE_PREFIX}'+JSON.stringify(x));"
    f"fetch(u,{{redirect:'manual',signal:AbortSignal.timeout({PROBE_TIMEOUT_MS})}})"
    ".then(async r=>{const t=await r.text();let i=null,j=false;"
    "try{const d=JSON.parse(t);j=d!==null&&typeof d==='object';i=j&&typeof d.issuer==='string'?d.issuer:null}catch(e){}"
    "o({status:r.status,contentType:r.headers.get('content-type'),json:j,issuer:i})})"
    ".catch(e=>o({error:String((e&&e.cause&&(e.cause.code||e.cause.message))||(e&&(e.name||e.message))||e)}))"
)


@dataclass(frozen=True)
class ProbeResult:
    """What a fetch of the discovery URL saw (``error`` set when no HTTP answer came)."""

    status: int | None = None
    content_type: str | None = None
    is_json: bool = False
    issuer: str | None = None
    error: str | None = None


def probe_command(url: str) -> list[str]:
    """The probe's argv after the entrypoint ``/bin/node``: ``-e <script> <url>``."""
    return ["-e", PROBE_SCRIPT, url]


def parse_probe_output(output: str | None) -> ProbeResult | None:
    """The probe's result from its output (Docker frame headers may surround it), None when absent."""
    for line in reversed((output or "").splitlines()):
        index = line.find(PROBE_PREFIX)
        if index < 0:
            continue
        try:
            data = json.loads(line[index + len(PROBE_PREFIX):])
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        status = data.get("status")
        return ProbeResult(
            status=status if isinstance(status, int) else None,
            content_type=data.get("contentType") if isinstance(data.get("contentType"), str) else None,
            is_json=data.get("json") is True,
            issuer=data.get("issuer") if isinstance(data.get("issuer"), str) else None,
            error=str(data["error"]) if data.get("error") is not None else None,
        )
    return None


Runner = Callable[[Sequence[str], dict[str, str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=120, check=False)


def docker_run_argv(*, image: str, network: str, url: str, proxied_host_names: Sequence[str] = ()) -> list[str]:
    """``docker run`` of the probe on the stage network, with the LobeChat container's extra hosts."""
    argv = ["docker", "run", "--rm", "--network", network, "--label", "lobechat-logto.role=issuer-probe"]
    for name in proxied_host_names:
        argv += ["--add-host", f"{name}:host-gateway"]
    return argv + ["--entrypoint", NODE_IN_LOBECHAT_IMAGE, image, *probe_command(url)]


def run_probe_with_docker(
    *,
    image: str,
    network: str,
    url: str,
    proxied_host_names: Sequence[str] = (),
    docker_host: str | None = None,
    runner: Runner = _run,
) -> ProbeResult | str:
    """Run the probe with the Docker CLI; a ProbeResult, or why it could not run (a string)."""
    if runner is _run and shutil.which("docker") is None:
        return "no docker CLI on this machine"
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    argv = docker_run_argv(image=image, network=network, url=url, proxied_host_names=proxied_host_names)
    try:
        completed = runner(argv, env)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"docker run failed: {type(error).__name__}"
    result = parse_probe_output(completed.stdout)
    if result is None:
        tail = (completed.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return f"docker run exited {completed.returncode} without a probe result ({tail[0][:200]})"
    return result
