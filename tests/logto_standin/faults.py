"""Fault injection for the Logto stand-in: wrong statuses, slow answers, lost connections.

A fault matches a request by method (``None``: any) and path prefix (the path without the query) and
is used up one request at a time (``times=None``: every matching request). The first pending fault
that matches wins.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

FAULT_KINDS = ("status", "delay", "drop", "drop_after_commit", "gateway_then_commit")


@dataclass
class Fault:
    """One injected fault; ``remaining`` counts down as requests consume it (``None``: never runs out)."""

    kind: str
    method: str | None = None
    path_prefix: str = ""
    status: int = 503
    retry_after: float | int | None = None
    seconds: float = 0.0
    remaining: int | None = 1

    def matches(self, method: str, path: str) -> bool:
        """True when this fault applies to ``method path`` and is not used up."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        return (self.method is None or self.method.upper() == method.upper()) and path.startswith(self.path_prefix)


class FaultInjector:
    """The ``faults`` attribute of a stand-in: ``add`` faults, the server ``take``s them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        method: str | None = None,
        path_prefix: str = "",
        kind: str = "status",
        *,
        status: int = 503,
        retry_after: float | int | None = None,
        seconds: float = 0.0,
        times: int | None = 1,
    ) -> Fault:
        """Queue a fault.

        ``kind``: ``status`` answers ``status`` (with ``Retry-After: retry_after`` when given) without
        touching the state; ``delay`` sleeps ``seconds`` then handles the request normally; ``drop``
        closes the connection with no answer and no change; ``drop_after_commit`` performs the
        request, then closes the connection instead of answering (a lost response);
        ``gateway_then_commit`` answers ``status`` at once with a proxy's HTML page (not Logto's JSON
        error body, as a gateway gives up on a slow upstream: 502, 520-524) and keeps the request,
        which the stand-in performs only when the test calls ``commit_deferred()`` (Logto committing
        the create behind the gateway, after the client has moved on).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}: use one of {', '.join(FAULT_KINDS)}")
        if kind == "status" and not 100 <= status <= 599:
            raise ValueError(f"fault status {status} is not an HTTP status code")
        if times is not None and times < 1:
            raise ValueError("fault times must be at least 1 (or None for every request)")
        fault = Fault(kind=kind, method=method, path_prefix=path_prefix, status=status,
                      retry_after=retry_after, seconds=seconds, remaining=times)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """Consume one use of the first fault matching this request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def clear(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self._faults.clear()

    @property
    def pending(self) -> list[Fault]:
        """Faults that can still fire."""
        with self._lock:
            return [fault for fault in self._faults if fault.remaining is None or fault.remaining > 0]
