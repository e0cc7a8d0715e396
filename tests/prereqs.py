"""What a test needs from the machine, and what happens when it is missing.

Locally a missing prerequisite (PostgreSQL binaries, Node 22, the Logto CLI) skips the test with the
reason, so a developer can run the fast part of the suite anywhere. Under CI (``CI=true``) the same
absence fails the test: `.ci/run` installs every prerequisite, so a skip there would hide a broken
install step behind a green run.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    """True when the suite runs under CI (``CI`` set to a true value)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_or_skip(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (under CI) the calling test unless ``condition`` holds."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"prerequisite missing under CI: {reason}", pytrace=False)
    pytest.skip(reason)
