"""A bounded wait for Logto to answer again, reporting progress: Logto not ready yet, or restarting.

Logto exits when its Postgres connection drops and its restart policy brings it back in 5-7 s
(``../shared/docs/logto.md``); during ``pulumi up`` that shows as refused connections or a proxy's
502/503/504. The transport calls `wait_until_ready` once per request when that happens: it polls the
unauthenticated ``GET /api/status`` (204 when Logto is up) every ``poll_interval`` seconds, at most
``timeout`` seconds in all, reporting each wait, then lets the request go on. If Logto does not come
back in time the request fails with one clear `LogtoConnectionError`.

No extra request is ever sent while Logto answers normally. Sleeping goes through the transport's
``_sleep`` (tests replace it), and the bound is a number of polls, not a wall-clock reading.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import requests

from . import tls
from .errors import LogtoConnectionError

log = logging.getLogger("lobechat-logto.readiness")

Progress = Callable[[str], None]


def _report(message: str) -> None:
    # A dynamic provider's log lines reach `pulumi up` as diagnostics of the resource.
    log.warning(message)


REPORT_EVERY_S = 10.0
"""A progress line when the wait starts and every this many seconds of it."""

PROGRESS: list[Progress] = [_report]
"""Where progress messages go (tests append their own recorder)."""


def _status(session: requests.Session, url: str, timeout: float) -> tuple[bool, str]:
    try:
        response = session.get(url, timeout=timeout, allow_redirects=False)
    except requests.exceptions.ConnectionError as exc:
        handshake = tls.handshake_failure(exc)
        return False, f"TLS handshake failed ({handshake})" if handshake else "connection refused or reset"
    except requests.exceptions.Timeout:
        return False, "no answer"
    if response.status_code in (200, 204):
        return True, f"HTTP {response.status_code}"
    return False, f"HTTP {response.status_code}"


def wait_until_ready(
    endpoint: str,
    *,
    reason: str,
    timeout: float,
    poll_interval: float,
    request_timeout: float,
    session: requests.Session,
    sleep: Callable[[float], None],
) -> bool:
    """Poll ``<endpoint>/api/status`` until it answers 204 or ``timeout`` is used up (raise).

    Returns False when Logto was up at once (the failure was not a restart: the caller's retries go
    on as they were), True when it came back after a wait (the caller starts its retries over).
    """
    url = f"{endpoint}/api/status"
    ready, last = _status(session, url, request_timeout)
    if ready:
        return False
    last = f"{reason}; /api/status: {last}"
    polls = max(1, math.ceil(timeout / poll_interval))
    every = max(1, round(REPORT_EVERY_S / poll_interval))
    for poll in range(1, polls + 1):
        waited = poll * poll_interval
        if poll == 1 or poll % every == 0:
            for report in PROGRESS:
                report(f"Logto at {endpoint} is not ready ({last}); waiting, {waited:.0f} s of at most {timeout:.0f} s")
        sleep(poll_interval)
        ready, last = _status(session, url, request_timeout)
        if ready:
            for report in PROGRESS:
                report(f"Logto at {endpoint} is ready again after about {waited:.0f} s")
            return True
    raise LogtoConnectionError(
        f"Logto did not become ready within {timeout:.0f} s (last answer of /api/status: {last}).",
        method="GET",
        url=url,
        hint=tls.HINT if "TLS handshake failed" in last else
        "Is the Logto container running or restarting in a loop (`docker logs <prefix>-logto`), "
        "and is its Postgres up? Run `pulumi up` again once it answers: nothing is duplicated.",
    )
