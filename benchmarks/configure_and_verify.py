"""Benchmark: from "Logto healthy" to "configured", the Management API requests of a fresh and of an
unchanged ``pulumi up``, and what the verification at the end of ``pulumi up`` adds.

Run: ``.venv/bin/python benchmarks/configure_and_verify.py [--latency 0.02] [--runs 5]``

The dev program runs under the engine-like mocks of ``tests/test_program_against_standin.py`` (every
dynamic provider really called, deserialized as the engine does) against the Logto stand-in (with
``--latency`` seconds per request) answering as ``http://auth.localhost:3001``, a LobeChat stand-in,
and the in-network probe run by a real Node 22 (``tests/test_verification_during_up.py``). Docker
containers take no time here, so the clock measures what this package does:

- **healthy -> configured**: from the registration of Logto's readiness wait (Logto answers) to the
  registration of the LobeChat container (its environment, hence the application, its secret and the
  webhook, complete). It includes the bootstrap step, which the mocks emulate instantly;
- **requests**: every request the stand-in saw in that window (fresh deploy) or during the whole run
  (unchanged deploy on the kept state), against the minimum that cannot be avoided: a fresh deploy
  needs a token, the application's create, its secrets (the ``Default secret`` value is not in the
  create's answer) and the hook's create (4); an unchanged deploy needs none;
- **verification**: from the LobeChat container's readiness to the end of the run, and the requests
  it sends (to Logto; LobeChat's own and the test delivery are counted apart).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

import components.verification.during_up as during_up  # noqa: E402
from components.logto_api import clear_token_cache  # noqa: E402
from tests.lobechat_standin import LobeChatStandIn  # noqa: E402
from tests.logto_standin import LogtoStandIn  # noqa: E402
from tests.test_program_against_standin import run_against  # noqa: E402
from tests.test_verification_during_up import PUBLIC_LOGTO, StageNetworkMocks, verified_config  # noqa: E402

FRESH_MINIMUM = 4
UNCHANGED_MINIMUM = 0
VERIFICATION_MINIMUM = 9
"""One request per check: in-network discovery (the probe), discovery, status, client authentication,
the M2M token (a new process: no cached token), the application, its secrets, the hook, the hook test."""


class TimedMocks(StageNetworkMocks):
    """Records when each container is registered (the engine would create it then)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.marks: dict[str, tuple[float, int]] = {}

    def new_resource(self, args):
        if args.typ.startswith("docker:index/container") and args.name not in self.marks:
            self.marks[args.name] = (time.perf_counter(), len(self.standin.requests_log))
            if args.name == "lobechat-ready-wait":
                # In `pulumi up` the program and the providers are separate processes: the
                # verification (in the program) holds no token the providers fetched.
                clear_token_cache()
        return super().new_resource(args)


CHECK_SECONDS: list[float] = []
_run_verification = during_up.run_verification


def _timed_run_verification(*args, **kwargs):
    started = time.perf_counter()
    try:
        return _run_verification(*args, **kwargs)
    finally:
        CHECK_SECONDS.append(time.perf_counter() - started)


during_up.run_verification = _timed_run_verification


def one_round(latency: float) -> dict[str, float]:
    with LogtoStandIn(public_endpoint=PUBLIC_LOGTO) as logto, LobeChatStandIn() as lobe:
        logto.state.delivery_aliases["lobe.localhost:3210"] = lobe.host_port
        logto.latency = latency
        config = verified_config(logto, lobe)
        fresh = TimedMocks(logto, lobe)
        run_against(logto, config, fresh)
        end, end_requests = time.perf_counter(), len(logto.requests_log)
        healthy, healthy_requests = fresh.marks["logto-ready-wait"]
        configured, configured_requests = fresh.marks["lobechat"]
        ready_lobe, ready_requests = fresh.marks["lobechat-ready-wait"]
        figures = {
            "healthy_to_configured_s": configured - healthy,
            "fresh_requests": configured_requests - healthy_requests,
            "verification_s": end - ready_lobe,
            "verification_requests": end_requests - ready_requests,
            "checks_s": CHECK_SECONDS[-1],
        }
        before = len(logto.requests_log)
        unchanged = TimedMocks(logto, lobe, prior_state=fresh.state)
        run_against(logto, config, unchanged)
        _, configured_again = unchanged.marks["lobechat"]
        figures["unchanged_requests"] = configured_again - before
        return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every stand-in request")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rounds = [one_round(args.latency) for _ in range(args.runs)]

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    print(f"dev stage, stand-in latency {args.latency * 1000:.0f} ms per request, median of {args.runs} runs")
    print(f"  Logto healthy -> configured: {med('healthy_to_configured_s'):.3f} s")
    fresh = med("fresh_requests")
    print(f"  Management API requests, fresh deploy: {fresh:.0f} (minimum {FRESH_MINIMUM}, ratio {fresh / FRESH_MINIMUM:.2f})")
    unchanged = med("unchanged_requests")
    print(f"  Management API requests, unchanged deploy: {unchanged:.0f} (minimum {UNCHANGED_MINIMUM})")
    verification = med("verification_requests")
    print(f"  verification adds: {med('verification_s'):.3f} s, {verification:.0f} Logto requests "
          f"(minimum {VERIFICATION_MINIMUM}, ratio {verification / VERIFICATION_MINIMUM:.2f}); "
          f"the checks themselves {med('checks_s'):.3f} s (the rest is the probe: a real Node start here, "
          "a one-shot container in `pulumi up`, running while LobeChat starts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
