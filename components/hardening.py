"""Settings every container of the stack gets: no privilege escalation, a memory limit."""

from __future__ import annotations

SECURITY_OPTS = ["no-new-privileges:true"]
"""``--security-opt no-new-privileges``: no process in the container gains privileges (setuid binaries,
file capabilities) beyond those it started with. Set on every container, long-running and one-shot."""
