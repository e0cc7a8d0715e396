"""The tests' port helper: a reserved port is never one the kernel can hand to someone else first."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests import ports


def test_reserved_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    low = ports.ephemeral_low()
    reserved = [ports.reserve_port() for _ in range(50)]
    assert len(set(reserved)) == 50
    for port in reserved:
        assert port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # free right now


def test_binds_to_port_zero_never_take_a_reserved_port():
    # The flake this module fixes: a probe's port, released, handed to the next bind(port 0).
    reserved = {ports.reserve_port() for _ in range(20)}
    sockets = []
    try:
        for _ in range(200):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            assert sock.getsockname()[1] not in reserved
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_in_use_is_never_reserved(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", ports.reserve_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        ports._handed_out.discard(taken)
        real_randint = ports._random.randint
        choices = iter([taken, taken])  # the busy port twice, then the real random choice
        monkeypatch.setattr(ports._random, "randint", lambda low, high: next(choices, None) or real_randint(low, high))
        assert ports.reserve_port() != taken


@pytest.mark.parametrize("text, expected", [("40000\t60999\n", 40000), ("", 32768), ("x y", 32768)])
def test_the_ephemeral_range_is_read_from_the_kernel_setting(tmp_path: Path, text: str, expected: int):
    setting = tmp_path / "ip_local_port_range"
    setting.write_text(text)
    assert ports.ephemeral_low(setting) == expected
    assert ports.ephemeral_low(tmp_path / "missing") == 32768
