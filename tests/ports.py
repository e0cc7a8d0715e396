"""Ports on 127.0.0.1 for servers the tests start, chosen so nothing else can take them first.

A port found by binding port 0 comes from the kernel's ephemeral range: once that probe socket is closed,
the next ``bind(port 0)`` in the process (an upstream stand-in, a client's source port) can get the very
same port before the server it was meant for binds it. Caddy then fails with "address already in use"
(its config is refused and its admin API never answers) and the test fails for no reason of its own.

:func:`reserve_port` therefore picks below the ephemeral range, where the kernel never hands out a port
on its own, checks that the port can be bound right now, and never returns the same port twice in one
process. :func:`closed_port` is a port where nothing listens (for "connection refused" tests), from the
same pool so no server of the tests takes it afterwards.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Below the usual ephemeral range (Linux default 32768-60999); read from the kernel where available.
_POOL_LOW = 20000
_DEFAULT_EPHEMERAL_LOW = 32768
_handed_out: set[int] = set()
_random = random.Random()


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel hands out on its own (bind to port 0, connect's source port)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_LOW


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserve_port() -> int:
    """A port on 127.0.0.1 that is free now, outside the ephemeral range, never handed out before here."""
    high = ephemeral_low() - 1
    if high - _POOL_LOW < 1000:  # an unusual kernel setting: fall back to the kernel's choice
        return _reserve_ephemeral()
    for _ in range(1000):
        port = _random.randint(_POOL_LOW, high)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port on 127.0.0.1 between {_POOL_LOW} and {high} that was not handed out already")


def _reserve_ephemeral() -> int:
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1 that was not handed out already")


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (and no server of the tests will)."""
    return reserve_port()
