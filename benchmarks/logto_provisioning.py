"""Benchmark: provision 50 applications and 50 webhooks through the dynamic providers, then refresh.

Run: ``.venv/bin/python benchmarks/logto_provisioning.py [--count 50] [--latency 0.02] [--parallel 1]``

It starts the Logto stand-in with a fixed latency per request, calls the providers' ``check`` and
``create`` the way the engine does, and reports wall time, requests made and the ratio to the lower
bound (requests x latency: what the same requests would cost sent one after another with nothing
but the injected latency). Then it refreshes (``read``) every object with nothing changed, starting
from an empty token cache as a new ``pulumi refresh`` process would, and reports the requests made,
how many were writes (goal: none) and how many were token requests (goal: one). Last, a rerun after
a lost state (a new provider process creates every resource again): every object must be taken over
by its ownership marker, none duplicated. Provisioning and rerun are reported against the requests
they cannot avoid (``fresh_minimum``, ``rerun_minimum``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.logto_api import clear_token_cache  # noqa: E402
from components.logto_resources import (  # noqa: E402
    LogtoApplicationProvider,
    LogtoWebhookProvider,
    clear_listing_cache,
)
from tests.logto_standin import LogtoStandIn  # noqa: E402

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def connection(logto: LogtoStandIn) -> dict[str, Any]:
    return {
        "logto_endpoint": logto.endpoint,
        "logto_client_id": logto.m2m_client_id,
        "logto_client_secret": logto.m2m_client_secret,
        "logto_resource": "https://default.logto.app/api",
    }


def app_props(logto: LogtoStandIn, index: int) -> dict[str, Any]:
    base = f"http://lobe{index}.localhost:3210"
    return {
        **connection(logto),
        "project": "lobechat-logto",
        "stack": "bench",
        "resource_name": f"app-{index}",
        "name": f"LobeChat {index}",
        "description": None,
        "app_type": "Traditional",
        "redirect_uris": [f"{base}/api/auth/callback/logto"],
        "post_sign_out_redirect_uris": [f"{base}/"],
        "cors_allowed_origins": [base],
        "adopt_id": None,
    }


def hook_props(logto: LogtoStandIn, index: int) -> dict[str, Any]:
    return {
        **connection(logto),
        "project": "lobechat-logto",
        "stack": "bench",
        "resource_name": f"hook-{index}",
        "name": f"LobeChat user sync {index}",
        "url": f"http://lobe{index}.localhost:3210/api/webhooks/logto",
        "events": ["User.Data.Updated"],
        "headers": {},
        "enabled": True,
        "adopt_id": None,
    }


def run_all(tasks: list[Callable[[], Any]], parallel: int) -> list[Any]:
    if parallel <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(lambda task: task(), tasks))


def create_task(provider: Any, props: dict[str, Any]) -> Callable[[], tuple[Any, str, dict[str, Any]]]:
    def task() -> tuple[Any, str, dict[str, Any]]:
        checked = provider.check({}, props)
        if checked.failures:
            raise SystemExit(f"check failed: {[f.property for f in checked.failures]}")
        result = provider.create(checked.inputs)
        return provider, result.id, result.outs

    return task


def read_task(provider: Any, id_: str, outs: dict[str, Any], news: dict[str, Any]) -> Callable[[], bool]:
    def task() -> bool:
        read = provider.read(id_, outs)
        if read.id != id_:
            raise SystemExit(f"{id_} vanished during refresh")
        return bool(provider.diff(id_, read.outs, news).changes)

    return task


def route(path: str) -> str:
    """``/api/applications/abc/secrets?x`` -> ``/api/applications/{id}/secrets`` (for the per-call table)."""
    return re.sub(r"^/api/(applications|hooks)/[^/]+", r"/api/\1/{id}", path.split("?")[0])


def summarize(log: list[Any], seconds: float, latency: float) -> dict[str, Any]:
    count = len(log)
    bound = count * latency
    return {
        "requests": count,
        "token_requests": sum(1 for e in log if e[1].startswith("/oidc/token")),
        "writes": sum(1 for e in log if e[0] in WRITE_METHODS and not e[1].startswith("/oidc")),
        "wall_s": seconds,
        "lower_bound_s": bound,
        "ratio": seconds / bound if bound else float("nan"),
        "by_call": Counter(f"{e[0]} {route(e[1])}" for e in log),
    }


def listing_pages(count: int) -> int:
    """Pages of 100 it takes to list ``count`` objects (one even when there are none)."""
    return count // 100 + 1


def fresh_minimum(count: int) -> int:
    """Requests a fresh provisioning cannot avoid: one create per object, one read of each
    application's secret, one token."""
    return 2 * count + count + 1


def rerun_minimum(count: int) -> int:
    """Requests a rerun after a lost state cannot avoid (every object exists and is in the desired
    state): one token, one listing of the applications and one of the hooks (each of ``count``
    objects, plus the seeded M2M application of another type, not listed), one read of each
    application's secret."""
    return 1 + listing_pages(count) + listing_pages(count) + count


def print_phase(title: str, figures: dict[str, Any], minimum: int | None = None) -> None:
    print(f"\n{title}")
    print(f"  wall time            {figures['wall_s']:.2f} s")
    print(f"  requests made        {figures['requests']}")
    if minimum is not None:
        print(f"  unavoidable requests {minimum}  (ratio {figures['requests'] / minimum:.3f})")
    print(f"  lower bound          {figures['lower_bound_s']:.2f} s  (requests x latency)")
    print(f"  ratio to lower bound {figures['ratio']:.2f}")
    print(f"  writes               {figures['writes']}")
    print(f"  token requests       {figures['token_requests']}")
    for call, count in sorted(figures["by_call"].items()):
        print(f"    {count:4d}  {call}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50, help="applications and webhooks each (default 50)")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds added to every request (default 0.02)")
    parser.add_argument("--parallel", type=int, default=1, help="concurrent provider calls (the engine's default is 10)")
    args = parser.parse_args()

    clear_token_cache()
    clear_listing_cache()
    with LogtoStandIn() as logto:
        logto.latency = args.latency
        apps, hooks = LogtoApplicationProvider(), LogtoWebhookProvider()
        app_inputs = [app_props(logto, i) for i in range(args.count)]
        hook_inputs = [hook_props(logto, i) for i in range(args.count)]
        tasks = [create_task(apps, p) for p in app_inputs] + [create_task(hooks, p) for p in hook_inputs]

        started = time.perf_counter()
        created = run_all(tasks, args.parallel)
        provision = summarize(list(logto.requests_log), time.perf_counter() - started, args.latency)

        # A refresh runs in a new provider process: nothing cached from the provisioning run.
        clear_token_cache()
        clear_listing_cache()
        mark = len(logto.requests_log)
        inputs = app_inputs + hook_inputs
        reads = [read_task(provider, id_, outs, news) for (provider, id_, outs), news in zip(created, inputs)]
        started = time.perf_counter()
        changed = run_all(reads, args.parallel)
        refresh = summarize(list(logto.requests_log[mark:]), time.perf_counter() - started, args.latency)

        # A rerun after a lost state: a new provider process creates every resource again; each
        # must find its object by its marker and take it over (no duplicate).
        clear_token_cache()
        clear_listing_cache()
        mark = len(logto.requests_log)
        started = time.perf_counter()
        rerun_results = run_all(tasks, args.parallel)
        rerun = summarize(list(logto.requests_log[mark:]), time.perf_counter() - started, args.latency)
        same_ids = sum(1 for (_, a, _), (_, b, _) in zip(created, rerun_results) if a == b)

        print(f"Logto stand-in, latency {args.latency * 1000:.0f} ms per request, parallel={args.parallel}")
        print_phase(
            f"Provision {args.count} applications + {args.count} webhooks (check + create)",
            provision,
            fresh_minimum(args.count),
        )
        print_phase(f"Refresh all {len(reads)} (read + diff, nothing changed)", refresh)
        print(f"  diffs showing changes {sum(changed)}")
        print_phase(f"Rerun after a lost state (check + create of all {len(tasks)} again)", rerun, rerun_minimum(args.count))
        print(f"  took over the same object {same_ids} of {len(tasks)}")
        print(f"  objects in Logto      {len(logto.state.applications) - 1} applications, {len(logto.state.hooks)} hooks")
        if logto.openapi_violations:
            print(f"  OpenAPI violations   {len(logto.openapi_violations)}: {logto.openapi_violations[:3]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
