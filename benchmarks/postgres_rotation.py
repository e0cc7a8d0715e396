"""Benchmark: Postgres password rotations of a deployed dev stage, with a real PostgreSQL 16 behind it.

Run: ``.venv/bin/python benchmarks/postgres_rotation.py [--repeat 3]``

Each repetition deploys the dev program under the engine-like rollout mocks with the database side
real (``tests/test_postgres_rotation_rollout.py``: the roles and retirement steps run their scripts
through ``psql``, every running LobeChat replica and the Logto container hold their URL, probes open a
new connection with each one from a background thread and after every engine step, and query the
session each keeps open), moves the test clock past ``maxAge`` and runs the rotation ``pulumi up``,
then the next (retirement of LobeChat's previous login) and a quiet one. It reports: failed
connections and failed session queries (goal 0 and 0) over all three runs, the wall time of each
run (median over ``--repeat``) and the SQL steps each run executed (the minimum: roles + retirement
in the rotation run, retirement in the next, nothing in the quiet one). Logto's boot is not modelled
(no Logto server here): its restart is the stand-in's instant replacement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.logto_standin import LogtoStandIn  # noqa: E402
from tests.real_postgres import running_postgres  # noqa: E402
from tests.rollout_harness import T0, TestClock  # noqa: E402
from tests.test_postgres_roles import pgserver_bin_dir  # noqa: E402
from tests.test_postgres_rotation_rollout import Database, DbProbes, DbStage, up_with_probes  # noqa: E402


def one(pg) -> dict:
    with LogtoStandIn(check_openapi=False) as server:
        db = Database(pg)
        stage = DbStage(server, TestClock(T0), {"maxAge": {"postgresPassword": "30d"}}, db)
        try:
            stage.up()
            db.seed_application_data()
            stage.clock.advance(31)
            figures: dict = {"seconds": [], "steps": []}
            with DbProbes(db) as probes:
                for _ in ("rotation", "next", "quiet"):
                    steps_before = len(db.step_runs)
                    began = time.perf_counter()
                    up_with_probes(stage, probes)
                    figures["seconds"].append(time.perf_counter() - began)
                    figures["steps"].append(db.step_runs[steps_before:])
            counts = db.counts
            figures.update(connections=counts.connections, failed=counts.failed_connections,
                           session_queries=counts.session_queries, failed_sessions=counts.failed_session_queries,
                           logins=db.logins())
            return figures
        finally:
            stage.close()
            db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    repeat = parser.parse_args().repeat
    results = []
    for _ in range(repeat):
        with running_postgres(pgserver_bin_dir()) as pg:
            results.append(one(pg))
    print(f"{repeat} repetition(s), PostgreSQL 16 (pgserver), dev stage, rotation maxAge 30d, clock +31d")
    print(f"failed connections: {sum(r['failed'] for r in results)} of {sum(r['connections'] for r in results)}")
    print(f"failed queries on open sessions: {sum(r['failed_sessions'] for r in results)} of "
          f"{sum(r['session_queries'] for r in results)}")
    for index, name in enumerate(("rotation run", "next run (retires LobeChat's previous login)", "quiet run")):
        seconds = statistics.median(r["seconds"][index] for r in results)
        print(f"{name}: {seconds:.2f} s median; SQL steps run: {results[0]['steps'][index]}")
    print(f"logins after: {results[-1]['logins']}")


if __name__ == "__main__":
    main()
