"""Benchmark: the whole first ``pulumi up`` of the dev stage: its critical path and lower bound.

Run: ``.venv/bin/python benchmarks/first_up.py [--latency 0.02] [--engine 20.10|25] [--project-dir DIR]``

No Docker engine and no Pulumi engine run here, so this combines what can run with a model of what
cannot:

- **run for real**: the dev program under the engine-like mocks of
  ``tests/test_program_against_standin.py`` (every dynamic provider really called, deserialized as
  the engine does, against the Logto stand-in with ``--latency`` per request); that yields the
  resource graph exactly as the program declares it (every dependency the engine would see) and the
  measured duration of every dynamic resource (the Logto calls);
- **modelled**: how long each Docker resource takes (`MODEL`), and when ``pulumi up`` notices that a
  long-running container is ready, from the container's *declared* settings: with ``wait=True`` the
  provider polls ``docker inspect`` every second (terraform-provider-docker's wait loop) and Docker
  reports ``healthy`` at the first health check after the container is ready (checks every
  ``interval``, or every ``start_interval`` while starting on Engine 25+; 20.10 ignores it); a
  readiness wait container (label ``lobechat-logto.waits-for``) notices at its first poll after
  ready.

The engine starts every resource as soon as everything it depends on is done (``pulumi up``'s
parallelism is unbounded by default), so the finish time of the last resource is the time of the
whole ``up``. The benchmark prints the critical path (the chain of resources that decides it), each
step's time, and the lower bound: the sum of the unavoidable steps on that path (each container's
create and start-to-ready time, the bootstrap's run, the Logto calls; no detection lag, no wait
container overhead). ``--project-dir`` runs the same benchmark on another checkout (e.g. the code
before a change).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent

CONTAINER = "docker:index/container:Container"
WAITS_FOR_LABEL = "lobechat-logto.waits-for"

MODEL: dict[str, float] = {
    # Calibrated on the measurement (same machine, same images already pulled): a minimal
    # program creating the same containers and Logto objects takes about 12 s, the dev stage 29 s.
    "image_present": 0.2,  # RemoteImage of an image already on the host (inspect only)
    "network": 0.1,
    "volume": 0.1,
    "container_create_start": 0.3,  # docker create + start (+ upload, network connect)
    "ready_postgres": 1.5,  # start to accepting TCP connections (initdb of an empty volume)
    "ready_logto": 5.5,  # start to /api/status 204 (seed + alterations on a new database + start)
    "ready_lobechat": 2.5,  # start to answering (1.x: migrations, then the Next.js server)
    "check_pg_isready": 0.05,  # one health check run (pg_isready)
    "check_node": 0.3,  # one health check run that starts node
    "bootstrap_run": 0.7,  # the one-shot psql after its create/start
    "wait_exit": 0.1,  # a one-shot container's exit seen by the attached provider
    "provider_poll": 1.0,  # terraform-provider-docker's wait loop: docker inspect every second
    "wait_poll": 0.25,  # components/readiness.py POLL_SECONDS
}


@dataclass
class Step:
    """One resource of the schedule."""

    urn: str
    name: str
    type: str
    deps: list[str]
    duration: float = 0.0
    ideal: float = 0.0
    start: float = 0.0
    finish: float = 0.0
    via: str | None = None  # the dependency that decided the start
    note: str = ""
    children: list[str] = field(default_factory=list)


def _kind(name: str) -> str | None:
    for kind in ("postgres", "logto", "lobechat"):
        if name == kind:
            return kind
    return None


def _seconds(text: Any) -> float | None:
    if not text:
        return None
    text = str(text)
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * units[unit]
            except ValueError:
                return None
    return None


def time_to_noticed_healthy(kind: str, inputs: dict[str, Any], engine: str) -> tuple[float, str]:
    """Seconds from a ``wait=True`` container's start until the provider sees it ``healthy``."""
    ready = MODEL[f"ready_{kind}"]
    health = inputs.get("healthcheck") or {}
    interval = _seconds(health.get("interval")) or 30.0
    start_interval = _seconds(health.get("startInterval"))
    start_period = _seconds(health.get("startPeriod")) or 0.0
    check = MODEL["check_pg_isready"] if kind == "postgres" else MODEL["check_node"]
    if start_interval and engine == "25":
        # Engine 25+: checks every start_interval during start_period, then every interval.
        k = math.ceil(ready / start_interval)
        first_ok = k * start_interval if k * start_interval <= start_period else math.ceil(ready / interval) * interval
    else:
        first_ok = max(1, math.ceil(ready / interval)) * interval
    healthy = first_ok + check
    noticed = math.ceil(healthy / MODEL["provider_poll"]) * MODEL["provider_poll"]
    return noticed, f"ready at {ready:.2f} s, healthy at {healthy:.2f} s (checks every {interval:g} s), seen at {noticed:.2f} s"


def build_steps(resources: list[Any], dynamic_seconds: dict[str, float], engine: str) -> dict[str, Step]:
    """A schedule step per recorded resource, with its modelled (or measured) duration."""
    steps: dict[str, Step] = {}
    by_urn = {r.urn: r for r in resources}
    for r in resources:
        deps = set(r.dependencies)
        for urns in r.property_dependencies.values():
            deps.update(urns)
        step = Step(r.urn, r.name, r.type, sorted(d for d in deps if d in by_urn))
        steps[r.urn] = step
    for r in resources:
        if r.parent in steps:
            steps[r.parent].children.append(r.urn)
    created_at: dict[str, float] = {}
    for r in resources:
        step = steps[r.urn]
        inputs = _plain(r.inputs)
        if not r.custom:
            continue
        if r.type == "docker:index/remoteImage:RemoteImage":
            step.duration = step.ideal = MODEL["image_present"]
        elif r.type == "docker:index/network:Network":
            step.duration = step.ideal = MODEL["network"]
        elif r.type == "docker:index/volume:Volume":
            step.duration = step.ideal = MODEL["volume"]
        elif r.type == CONTAINER:
            _container_durations(step, inputs, engine, created_at)
        elif r.type.startswith("pulumi-python:dynamic/"):
            step.duration = step.ideal = dynamic_seconds.get(r.name, 0.0)
            step.note = "measured: provider calls against the stand-in"
    return steps


def _container_durations(step: Step, inputs: dict[str, Any], engine: str, created_at: dict[str, float]) -> None:
    create = MODEL["container_create_start"]
    kind = _kind(step.name)
    labels = {label.get("label"): label.get("value") for label in inputs.get("labels") or []}
    if WAITS_FOR_LABEL in labels:
        step.note = "readiness wait (duration fixed by the schedule)"
        step.duration = step.ideal = -1.0  # resolved in schedule(): depends on its target's ready time
        return
    if inputs.get("attach"):
        step.duration = step.ideal = create + MODEL["bootstrap_run"] + MODEL["wait_exit"]
        step.note = "one-shot psql"
        return
    if kind is None:
        step.duration = step.ideal = create
        return
    ready = MODEL[f"ready_{kind}"]
    # With wait=False the start-to-ready time is counted on the readiness wait that follows.
    step.ideal = create + ready if inputs.get("wait") else create
    if inputs.get("wait"):
        noticed, note = time_to_noticed_healthy(kind, inputs, engine)
        step.duration = create + noticed
        step.note = "wait=True: " + note
    else:
        step.duration = create
        step.note = f"wait=False (ready {ready:.2f} s after start)"


def _plain(value: Any) -> Any:
    from pulumi.runtime import rpc

    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def schedule(steps: dict[str, Step]) -> None:
    """Earliest start of every step: when all it depends on (a component: all its children) is done."""
    by_name = {s.name: s for s in steps.values() if s.type == CONTAINER}
    done: dict[str, float] = {}
    ideal_done: dict[str, float] = {}

    def finish(urn: str, stack: tuple[str, ...] = ()) -> float:
        if urn in done:
            return done[urn]
        step = steps[urn]
        waits = list(step.deps) + list(step.children)
        times = [(finish(d, stack + (urn,)), d) for d in waits if d not in stack]
        start, via = max(times, default=(0.0, None))
        ideal_start = max((ideal_done[d] for _, d in times), default=0.0)
        step.start, step.via = start, via if times else None
        if step.duration < 0:  # a readiness wait
            target = by_name.get(step.name[: -len("-ready-wait")])
            kind = _kind(target.name) if target else None
            ready_at = (target.finish + MODEL[f"ready_{kind}"]) if target and kind else start
            polls_from = start + MODEL["container_create_start"]
            first_poll = polls_from + max(0.0, math.ceil((ready_at - polls_from) / MODEL["wait_poll"])) * MODEL["wait_poll"]
            step.duration = first_poll + MODEL["wait_exit"] - start
            ideal_ready = (ideal_done[target.urn] + MODEL[f"ready_{kind}"]) if target and kind else ideal_start
            step.ideal = max(0.0, ideal_ready - ideal_start)
            step.note = f"polls every {MODEL['wait_poll']} s; target ready at {ready_at:.2f} s"
        step.finish = start + step.duration
        done[urn] = step.finish
        ideal_done[urn] = ideal_start + step.ideal
        return step.finish

    for urn in steps:
        finish(urn)


def critical_path(steps: dict[str, Step]) -> list[Step]:
    """The chain that decides the end: from the last step back through each deciding dependency."""
    last = max(steps.values(), key=lambda s: s.finish)
    path = [last]
    while path[-1].via is not None:
        path.append(steps[path[-1].via])
    return list(reversed(path))


def run(latency: float, engine: str, project_dir: Path) -> dict[str, Any]:
    sys.path.insert(0, str(project_dir))
    from tests.logto_standin import LogtoStandIn
    from tests.test_program_against_standin import EngineLikeMocks, dev_config, run_against

    class TimedMocks(EngineLikeMocks):
        """Engine-like mocks that also time every dynamic provider call."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.seconds: dict[str, float] = {}

        def _run_dynamic(self, args: Any) -> Any:
            started = time.perf_counter()
            try:
                return super()._run_dynamic(args)
            finally:
                self.seconds[args.name] = time.perf_counter() - started

    with LogtoStandIn() as logto:
        logto.latency = latency
        mocks = TimedMocks(logto)
        program = run_against(logto, dev_config(logto), mocks)
        requests = [e for e in logto.requests_log]
    steps = build_steps(program.resources, mocks.seconds, engine)
    schedule(steps)
    path = critical_path(steps)
    return {"steps": steps, "path": path, "requests": len(requests), "project": str(project_dir)}


def time_to_ready(steps: dict[str, Step]) -> dict[str, float]:
    """Per long-running container: from its create until ``pulumi up`` knows it is ready."""
    result: dict[str, float] = {}
    by_name = {s.name: s for s in steps.values() if s.type == CONTAINER}
    for kind in ("postgres", "logto", "lobechat"):
        target = by_name.get(kind)
        if target is None:
            continue
        wait = by_name.get(f"{kind}-ready-wait")
        end = wait.finish if wait is not None else target.finish
        result[kind] = end - target.start
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per Logto request (default 0.02)")
    parser.add_argument("--engine", choices=["20.10", "25"], default="20.10", help="Docker engine (start_interval: 25+)")
    parser.add_argument("--project-dir", type=Path, default=HERE, help="checkout to benchmark (default: this one)")
    args = parser.parse_args()
    figures = run(args.latency, args.engine, args.project_dir.resolve())
    steps, path = figures["steps"], figures["path"]
    total = path[-1].finish
    bound = sum(s.ideal for s in path)
    print(f"first `pulumi up` of dev ({figures['project']}), Docker engine {args.engine}, "
          f"Logto latency {args.latency * 1000:.0f} ms, {figures['requests']} Logto requests")
    print("\ncritical path:")
    for step in path:
        print(f"  {step.start:6.2f} -> {step.finish:6.2f} s  {step.name:28s} {step.type.split(':')[-1]:14s} "
              f"(unavoidable {step.ideal:5.2f} s) {step.note}")
    print(f"\nwhole up (critical path)   {total:6.2f} s")
    print(f"lower bound on that path   {bound:6.2f} s  (ratio {total / bound:.2f})")
    print("\ntime from create to ready, as pulumi up sees it:")
    for kind, seconds in time_to_ready(steps).items():
        print(f"  {kind:9s} {seconds:6.2f} s  (ready after {MODEL['container_create_start'] + MODEL[f'ready_{kind}']:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
