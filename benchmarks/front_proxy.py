"""Benchmark: what the front (the stack's Caddy) costs and what it buys, with the real Caddy on loopback.

Run: ``.venv/bin/python benchmarks/front_proxy.py [--requests 2000] [--lobechat-start 15] [--logto-down 3]``

1. **Added latency**: the same GETs to a stand-in upstream on 127.0.0.1, side by side: directly, through
   Caddy over plain HTTP (the dev topology), and through Caddy over HTTPS (the prod config, internal
   CA); one kept-alive connection each, requests one after another; p50/p99 and the difference.
2. **Rollout**: the real reload and drain (the stack's writer script) measured with requests in flight,
   then the time from ``pulumi up`` starting a rollout to the old container being gone, modelled from
   the measured parts and the stack's parameters (LobeChat's start time is an input: no LobeChat
   image runs here).
3. **Logto restart** (image bump, delete-first): the Logto stand-in is down for ``--logto-down`` seconds;
   sign-in requests sent meanwhile, through the front and directly: failed requests and longest wait.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components import readiness  # noqa: E402
from components.config import MappingConfigSource, load_stage_config  # noqa: E402
from components.front.caddy import render  # noqa: E402
from components.front.caddy_config import Listen, TlsSettings  # noqa: E402
from components.front.sites import LOGTO_TRY_SECONDS, front_sites  # noqa: E402
from tests.caddy_harness import (  # noqa: E402
    CaddyProcess,
    Client,
    Upstream,
    free_port,
    internal_ca,
    run_writer,
    shell_tools,
    wait_port,
)
from tests.pulumi_mocks import stack_config  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed_gets(client: Client, count: int) -> list[float]:
    client.get("/warm-up")
    samples = []
    for i in range(count):
        started = time.perf_counter()
        status, _, _, _ = client.get(f"/chat/{i}")
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 200
    client.close()
    return samples


def stage(stack: str, **overrides: object):
    values = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()}
    values.update(overrides)
    return load_stage_config(MappingConfigSource(values), stack)


@dataclasses.dataclass
class Running:
    caddy: CaddyProcess
    listen: Listen
    admin: str
    config: object

    def load(self, sites, drain_s: int = 0):
        text = render(self.config, sites, tls=TlsSettings(mode="internal"), listen=self.listen, admin=self.admin,
                      storage_root=str(self.caddy.root / "data" / "caddy"))
        return run_writer(self.caddy, text, admin=self.admin, upstreams=sorted({s.upstream for s in sites}), drain_s=drain_s)


def start_front(root: Path, tools: Path, config, upstreams: dict[str, str], http_ports: dict[int, int] | None = None) -> tuple[Running, list]:
    caddy = CaddyProcess(root, tools)
    listen = Listen(host="127.0.0.1", internal_https=free_port(), public_https=free_port(), public_http=free_port(),
                    http_sites=http_ports or {})
    running = Running(caddy, listen, f"127.0.0.1:{free_port()}", config)
    sites = [dataclasses.replace(s, upstream=upstreams[s.role]) for s in front_sites(config, lobechat_upstream="x", logto_upstream_host="x")]
    first = running.load(sites)
    assert first.returncode == 0, first.output
    return running, sites


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--lobechat-start", type=float, default=15.0, help="seconds LobeChat takes to answer after its start")
    parser.add_argument("--logto-down", type=float, default=3.0, help="seconds the Logto stand-in is down")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="front-bench-"))
    tools = shell_tools(work / "bin")
    lobe, logto, admin = Upstream("lobechat").start(), Upstream("logto").start(), Upstream("logto-admin").start()
    addresses = {"lobechat": lobe.address, "logto": logto.address, "logto-admin": admin.address}
    fronts: list[CaddyProcess] = []
    try:
        # --- 1. added latency ---------------------------------------------------------------------
        prod = stage("prod")
        https, _ = start_front(work / "https", tools, prod, addresses)
        fronts.append(https.caddy)
        wait_port(https.listen.public_https)
        ca = internal_ca(https.caddy)
        dev = stage("dev", front={"mode": "caddy"})
        dev_port = free_port()
        http, _ = start_front(work / "http", tools, dev, addresses, http_ports={3210: dev_port, 3001: free_port(), 3002: free_port()})
        fronts.append(http.caddy)
        wait_port(dev_port)
        direct = timed_gets(Client("lobechat", lobe.port, tls=False), args.requests)
        via_http = timed_gets(Client("lobe.localhost", dev_port, tls=False), args.requests)
        via_https = timed_gets(Client("chat.example.com", https.listen.public_https, tls=True, ca_files=ca), args.requests)
        print(f"added latency, {args.requests} sequential GETs on one kept-alive connection each (ms):")
        print(f"  {'path':<28}{'p50':>8}{'p99':>8}{'mean':>8}")
        for name, samples in (("direct to the upstream", direct), ("via Caddy, http (dev)", via_http), ("via Caddy, https (prod)", via_https)):
            print(f"  {name:<28}{percentile(samples, .5):8.3f}{percentile(samples, .99):8.3f}{statistics.fmean(samples):8.3f}")
        for name, samples in (("http", via_http), ("https", via_https)):
            print(f"  added by Caddy ({name}): p50 +{percentile(samples, .5) - percentile(direct, .5):.3f} ms, "
                  f"p99 +{percentile(samples, .99) - percentile(direct, .99):.3f} ms")

        # --- 2. rollout ---------------------------------------------------------------------------
        new = Upstream("lobechat-new", slow_s=2.0).start()
        lobe.slow_s = 2.0
        slow_done = threading.Event()

        def slow_request() -> None:
            Client("chat.example.com", https.listen.public_https, tls=True, ca_files=ca).get("/slow")
            slow_done.set()

        threading.Thread(target=slow_request, daemon=True).start()
        assert lobe.slow_started.wait(10)
        sites = [dataclasses.replace(s, upstream={**addresses, "lobechat": new.address}[s.role])
                 for s in front_sites(prod, lobechat_upstream="x", logto_upstream_host="x")]
        quiet_sites = sites
        writer = https.load(sites, drain_s=prod.front.drain_seconds)
        assert writer.returncode == 0, writer.output
        quiet = https.load([dataclasses.replace(s) for s in quiet_sites], drain_s=prod.front.drain_seconds)
        stop_started = time.perf_counter()
        lobe.stop()
        stop_s = time.perf_counter() - stop_started
        print("\nrollout (real Caddy, the stack's writer script):")
        print(f"  reload + drain with a 2 s request in flight on the old upstream: {writer.seconds:.2f} s")
        print(f"  reload + drain with nothing in flight: {quiet.seconds:.2f} s")
        poll = readiness.POLL_SECONDS
        writer_start = 1.0
        grace = 30
        model_quiet = args.lobechat_start + poll + writer_start + quiet.seconds + stop_s
        model_busy = args.lobechat_start + poll + writer_start + writer.seconds + stop_s
        print("  model, pulumi up starting the rollout -> old container gone: LobeChat start "
              f"{args.lobechat_start:.0f} s + readiness poll <= {poll} s + writer container ~{writer_start:.0f} s + "
              f"reload/drain + old container stop (SIGTERM; at most {grace} s to SIGKILL)")
        print(f"    = {model_quiet:.1f} s with no long request in flight, {model_busy:.1f} s with a 2 s one; "
              f"at most {args.lobechat_start + poll + writer_start + prod.front.drain_seconds + grace:.0f} s "
              f"(drainSeconds {prod.front.drain_seconds} + stop {grace})")

        # --- 3. Logto restart ---------------------------------------------------------------------
        results = {}
        for label, client_factory in (
            ("through the front", lambda: Client("auth.example.com", https.listen.public_https, tls=True, ca_files=ca, timeout=LOGTO_TRY_SECONDS + 5)),
            ("directly (front none)", lambda: Client("logto", logto.port, tls=False, timeout=5)),
        ):
            port = logto.port
            logto.stop()
            down_at = time.monotonic()
            outcomes: list[tuple[bool, float]] = []

            def sign_in(factory=client_factory) -> None:
                started = time.monotonic()
                try:
                    ok = factory().get("/oidc/auth")[0] == 200
                except Exception:  # noqa: BLE001 - a failed sign-in is what is counted
                    ok = False
                outcomes.append((ok, time.monotonic() - started))

            threads = []
            while time.monotonic() - down_at < args.logto_down:
                thread = threading.Thread(target=sign_in, daemon=True)
                thread.start()
                threads.append(thread)
                time.sleep(0.1)
            logto = Upstream("logto", port=port).start()
            for thread in threads:
                thread.join(timeout=LOGTO_TRY_SECONDS + 10)
            results[label] = outcomes
        print(f"\nLogto restart (down {args.logto_down:.1f} s, a sign-in request every 0.1 s meanwhile):")
        for label, outcomes in results.items():
            failed = sum(1 for ok, _ in outcomes if not ok)
            print(f"  {label:<24} failed {failed} of {len(outcomes)}, longest wait {max(t for _, t in outcomes):.2f} s")
    finally:
        for caddy in fronts:
            caddy.stop()
        for upstream in (lobe, logto, admin):
            upstream.stop()


if __name__ == "__main__":
    main()
