"""When a container is ready: the engine's health check (calm) and a readiness wait of our own (fast).

Two jobs, two mechanisms:

- **Docker's health check** runs for the container's whole life, so its interval is calm (Postgres
  every 10 s, Logto and LobeChat every 30 s: each of their checks starts a ``node`` process). With
  ``dockerHealthStartInterval: true`` (Docker Engine 25+, API 1.44) it also gets a 1 s
  ``start_interval`` while starting, so ``docker ps`` shows ``healthy`` within a second. It is off by
  default because the Docker client inside the provider *refuses* to create a container with a
  start interval on an older engine ("specify health-check start interval" requires API version
  1.44), which would fail ``pulumi up`` on Debian 12's ``docker.io`` 20.10 (API 1.41).
- **``pulumi up`` does not wait on that health check** (``wait=False``): the provider would only see
  ``healthy`` at the first check after the container is ready (up to a whole interval late, 5-30 s),
  and on failure it says only "container failed to be in healthy state". Instead a one-shot
  container on the stage network (`ReadinessWait`, from the target's own image: no extra pull) polls
  the same readiness every 0.25 s from the moment the target starts, exits 0 as soon as it answers,
  and gives up after a bounded time. It runs only while the container starts, so steady-state
  checks cost nothing extra, and it works the same on every engine version.

What waits: `ReadinessWait.ready` is an ``Output`` of the wait container that resolves only when it
exited 0; pass it in ``depends_on``. Otherwise it raises `ContainerNotReadyError`, naming the
container, saying how long it waited, and showing the tail of the container's log with anything
that looks like a credential masked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from components.one_shot import ROLE_LABEL, one_shot_container

POLL_SECONDS = 0.25
"""How often a readiness wait probes (the delay between "ready" and "noticed" is at most this)."""

START_INTERVAL = "1s"
"""Docker's start interval while a container starts (Engine 25+ only, see the module docstring)."""

LOG_TAIL_LINES = 40
WAITS_FOR_LABEL = "lobechat-logto.waits-for"
"""Label holding the id of the container a wait is for: a replaced container gets a new wait."""


# --- Docker's own health check ------------------------------------------------------------------


def healthcheck(
    tests: Sequence[str], *, interval: str, start_period: str, start_interval: bool, retries: int = 3, timeout: str = "5s"
) -> docker.ContainerHealthcheckArgs:
    """The engine's health check: ``interval`` in steady state, 1 s while starting when ``start_interval``."""
    return docker.ContainerHealthcheckArgs(
        tests=list(tests),
        interval=interval,
        timeout=timeout,
        retries=retries,
        start_period=start_period,
        start_interval=START_INTERVAL if start_interval else None,
    )


# --- the probes a readiness wait runs ------------------------------------------------------------


def postgres_probe(host: str, *, user: str, database: str, timeout_seconds: int, port: int = 5432) -> list[str]:
    """``sh -c`` loop of ``pg_isready`` over TCP (the entrypoint's init server listens on the socket
    only, so this answers only once the real server is up with every database)."""
    script = (
        f"end=$(( $(date +%s) + {int(timeout_seconds)} )); "
        f"until pg_isready -q -h \"$1\" -p {int(port)} -U {user} -d {database}; do "
        f"if [ $(date +%s) -ge $end ]; then echo \"not ready after {int(timeout_seconds)} s: "
        f"pg_isready -h $1 -p {int(port)} never accepted\" >&2; exit 1; fi; sleep {POLL_SECONDS}; done; "
        f"echo \"ready: $1:{int(port)} accepts connections\""
    )
    return ["sh", "-c", script, "readiness", host]


def http_probe(node: str, url: str, *, ok: str, timeout_seconds: int) -> list[str]:
    """One ``node`` process polling ``url`` until ``ok`` (a JS expression on ``s``, the status) holds.

    node's fetch: the Logto and LobeChat images have no curl; one process for the whole wait, not one
    per probe.
    """
    script = (
        f"const url={json.dumps(url)},end=Date.now()+{int(timeout_seconds) * 1000},ok=(s)=>{ok};"
        "let last='no answer';"
        "const tick=()=>fetch(url,{redirect:'manual',signal:AbortSignal.timeout(2000)})"
        ".then(r=>{last='status '+r.status;if(ok(r.status)){console.log('ready: '+url+' answered '+r.status);"
        "process.exit(0)}}).catch(e=>{last=(e.cause&&(e.cause.code||e.cause.message))||e.message||String(e)})"
        f".then(()=>{{if(Date.now()>end){{console.error('not ready after {int(timeout_seconds)} s: '+url+' ('+last+')');"
        f"process.exit(1)}}setTimeout(tick,{int(POLL_SECONDS * 1000)})}});tick();"
    )
    return [node, "-e", script]


# --- the error when a container never gets ready ----------------------------------------------------

_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)[^@\s]+@")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:PASSWORD|SECRET|TOKEN|KEY)[A-Z0-9_]*)(\"?\s*[:=]\s*\"?)([^\s\"',]+)"
)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """``text`` with known secret values, URL passwords and ``*PASSWORD*=value``-style values masked."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


class ContainerNotReadyError(RuntimeError):
    """A container did not become ready in time (the message names it and shows its log's tail)."""


def not_ready_message(container: str, timeout_seconds: int, wait_output: str, log_lines: Sequence[str], secrets: Sequence[str] = ()) -> str:
    """What `ContainerNotReadyError` says: which container, how long, what the probe saw, its log."""
    tail = "\n".join(f"  | {line}" for line in log_lines[-LOG_TAIL_LINES:]) or "  | (the container logged nothing)"
    probe = " ".join(wait_output.split()) or "(no output)"
    return redact(
        f"container {container!r} did not become ready within {timeout_seconds} s ({probe}).\n"
        f"Last lines of its log (credentials masked):\n{tail}\n"
        f"See all of it with `docker logs {container}`; fix the cause and run `pulumi up` again.",
        secrets,
    )


def _log_lines(result: Any) -> list[str]:
    lines = getattr(result, "logs_list_strings", None) or []
    return [str(line).rstrip("\n") for line in lines]


@dataclass(frozen=True)
class ReadinessProbe:
    """How to tell from a container on the stage network that the target is ready."""

    image: pulumi.Input[str]
    entrypoint: Sequence[str]
    timeout_seconds: int


class ReadinessWait(pulumi.ComponentResource):
    """A one-shot container that returns when ``target`` is ready (see the module docstring).

    ``probe`` gets the target's container name (unique on the stage network) as its host.
    Output ``ready``: the wait container, resolved only once the target answered; put it in
    ``depends_on`` of whatever needs the target ready.
    """

    ready: pulumi.Output[pulumi.Resource]

    def __init__(
        self,
        name: str,
        *,
        target: docker.Container,
        probe: Callable[[str], ReadinessProbe],
        network_name: pulumi.Input[str],
        secrets: Sequence[pulumi.Input[str]] = (),
        memory_mb: int = 256,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("lobechat-logto:readiness:ReadinessWait", name, None, opts)
        # ``probe(host)`` -> ReadinessProbe, so the host can be the target's (output) name.
        spec = target.name.apply(lambda host: probe(host))
        self.container = one_shot_container(
            f"{name}-wait",
            image=spec.apply(lambda p: p.image),
            entrypoints=spec.apply(lambda p: list(p.entrypoint)),
            network_name=network_name,
            labels={WAITS_FOR_LABEL: target.id, ROLE_LABEL: "readiness-wait"},
            memory_mb=memory_mb,
            opts=pulumi.ResourceOptions(parent=self),
        )
        timeout_seconds = spec.apply(lambda p: p.timeout_seconds)
        outcome = pulumi.Output.all(
            self.container.exit_code, self.container.container_logs, target.name, timeout_seconds, *secrets
        ).apply(lambda values: self._outcome(values[0], values[1], values[2], values[3], [str(s) for s in values[4:]]))
        # The outcome is tainted by the secrets passed for masking; the container name is not secret.
        self.ready = pulumi.Output.unsecret(outcome).apply(lambda _: self.container)
        self.register_outputs({"ready": outcome})

    def _outcome(self, exit_code: Any, wait_output: Any, container: str, timeout_seconds: int, secrets: list[str]) -> Any:
        if exit_code == 0:
            return container
        logs = docker.get_logs_output(
            name=container, tail=str(LOG_TAIL_LINES), show_stdout=True, show_stderr=True,
            opts=pulumi.InvokeOptions(parent=self),
        )
        return logs.apply(
            lambda result: _raise_not_ready(container, timeout_seconds, str(wait_output or ""), _log_lines(result), secrets)
        )


def _raise_not_ready(container: str, timeout_seconds: int, wait_output: str, log_lines: list[str], secrets: list[str]) -> None:
    raise ContainerNotReadyError(not_ready_message(container, timeout_seconds, wait_output, log_lines, secrets))

