"""Benchmark: one rotation of each kind of a deployed dev stage against the Logto stand-in.

Run: ``.venv/bin/python benchmarks/rotation.py [--repeat 3]``

For each kind (client secret, webhook signing key, both at once) it deploys the dev program under
the engine-like mocks of ``tests/rollout_harness.py`` (LobeChat replicas running, probes
authenticating with what they hold and emitting user updates at every engine step and from a
background thread), moves the test clock past ``maxAge`` and runs the scheduled ``pulumi up``.
It reports, per kind: failed authentications and lost events (goal 0 and 0), duplicated deliveries,
Management API requests of the rotation run (writes and reads apart; the probes' own requests left
out) against the writes a rotation cannot avoid, and the wall time of the rotation run (median of
``--repeat``). The clock is the test clock: nothing depends on today's date.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.logto_standin import LogtoStandIn  # noqa: E402
from components.platform import M2M_APP_ID  # noqa: E402
from tests.rollout_harness import T0, Probes, Requests, Stage, TestClock  # noqa: E402

KINDS = {
    "clientSecret": {"maxAge": {"clientSecret": "30d"}},
    "webhookSigningKey": {"maxAge": {"webhookSigningKey": "30d"}},
    "both": {"maxAge": {"clientSecret": "30d", "webhookSigningKey": "30d"}},
    "m2mSecret": {"maxAge": {"m2mSecret": "30d"}},
    "m2mSecret+clientSecret": {"maxAge": {"m2mSecret": "30d", "clientSecret": "30d"}},
}
# Writes no rotation can avoid: create the new secret / hook, delete the old one, record the holder.
# The M2M secret is created by SQL (the bootstrap): only the retirement of the old one is a write.
MINIMUM_WRITES = {"clientSecret": 3, "webhookSigningKey": 3, "both": 5, "m2mSecret": 1, "m2mSecret+clientSecret": 4}


def one(rotation: dict) -> dict:
    with LogtoStandIn(check_openapi=False) as server:
        stage = Stage(server, TestClock(T0), rotation)
        try:
            stage.up()
            stage.clock.advance(31)
            with Probes(server, stage.fleet, m2m=lambda: stage.held_m2m_credentials(M2M_APP_ID)) as probes:
                stage.on_step = lambda label: probes.probe()
                start = len(server.requests_log)
                began = time.perf_counter()
                stage.up()
                seconds = time.perf_counter() - began
                calls = Requests.since(server, start).calls
                refused = sum(1 for r in server.requests_log[start:] if r.status == 401)
                tokens = sum(1 for r in server.requests_log[start:] if r.path.startswith("/oidc/token"))
                probes.probe()
            return {
                "seconds": seconds, "failed_auth": probes.counts.failed_auth, "auth_attempts": probes.counts.auth_attempts,
                "events": len(probes.counts.events_emitted), "lost": len(probes.lost_events()),
                "duplicates": probes.duplicates(), "calls": calls, "refused": refused, "tokens": tokens,
                "m2m_failed": probes.counts.m2m_failed, "m2m_attempts": probes.counts.m2m_attempts,
            }
        finally:
            stage.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for kind, rotation in KINDS.items():
        runs = [one(rotation) for _ in range(args.repeat)]
        last = runs[-1]
        writes = Counter(f"{m} {p.split('/')[2]}" for m, p in last["calls"] if m != "GET")
        reads = sum(1 for m, _ in last["calls"] if m == "GET")
        n_writes = sum(writes.values())
        print(f"{kind}: rotation run {statistics.median(r['seconds'] for r in runs) * 1000:.0f} ms (median of {args.repeat}); "
              f"failed authentications {sum(r['failed_auth'] for r in runs)} of {sum(r['auth_attempts'] for r in runs)}; "
              f"lost events {sum(r['lost'] for r in runs)} of {sum(r['events'] for r in runs)}; "
              f"duplicated deliveries {sum(r['duplicates'] for r in runs)}; "
              f"refused Management API calls with a held M2M credential {sum(r['m2m_failed'] for r in runs)} of "
              f"{sum(r['m2m_attempts'] for r in runs)}; 401 answers of any request in the run "
              f"{sum(r['refused'] for r in runs)}")
        print(f"  Management API requests: {len(last['calls'])} ({reads} GET, {n_writes} writes: {dict(writes)}); "
              f"writes / minimum {n_writes}/{MINIMUM_WRITES[kind]} = {n_writes / MINIMUM_WRITES[kind]:.2f}")


if __name__ == "__main__":
    main()
