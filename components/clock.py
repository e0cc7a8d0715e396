"""The one clock that rotation decisions and client-side expiry checks read: injectable.

``now()`` is the system clock unless a test injected one (:func:`use_clock`) or
``LOBECHAT_LOGTO_ROTATION_NOW=<ISO 8601 instant>`` is set (a dry run "as of" another day:
``LOBECHAT_LOGTO_ROTATION_NOW=2027-03-01T00:00:00Z pulumi preview`` shows what would rotate then).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator

NOW_ENV = "LOBECHAT_LOGTO_ROTATION_NOW"
"""Environment variable: pretend it is this instant (ISO 8601 with a zone)."""

_clock: Callable[[], float] | None = None


def now() -> float:
    """Epoch seconds: the injected clock, else ``LOBECHAT_LOGTO_ROTATION_NOW``, else the system's."""
    if _clock is not None:
        return _clock()
    pretend = os.environ.get(NOW_ENV)
    if pretend:
        return parse_instant(pretend, NOW_ENV)
    return time.time()


def parse_instant(text: str, what: str) -> float:
    """An ISO 8601 instant with a zone, as epoch seconds; ValueError naming ``what`` otherwise."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not an ISO 8601 instant (e.g. 2027-03-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{what}: {text!r} has no time zone (add Z)")
    return parsed.timestamp()


@contextlib.contextmanager
def use_clock(clock: Callable[[], float]) -> Iterator[None]:
    """Run with ``clock`` (epoch seconds) as the clock; the previous one comes back after."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous


def iso(epoch_seconds: float) -> str:
    """``2027-03-01T00:00:00Z``."""
    return dt.datetime.fromtimestamp(int(epoch_seconds), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
