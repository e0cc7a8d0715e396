"""Verification of a deployed stage: is sign-in wired right, from Logto to LobeChat and back?

Runs at the end of ``pulumi up`` (``verification.enabled``, on by default) and on its own::

    python -m components.verification --stack dev

- :mod:`~components.verification.checks`: the checks and `run_verification`;
- :mod:`~components.verification.environment`: checks of LobeChat's environment (no network);
- :mod:`~components.verification.probe`: the discovery fetch from inside the stage network;
- :mod:`~components.verification.target`: what is checked (from config + outputs, or stack outputs);
- :mod:`~components.verification.report`: results, the report, `VerificationFailed`;
- :mod:`~components.verification.during_up`: the probe container and the run inside ``pulumi up``.
"""

from components.verification.checks import run_verification
from components.verification.probe import ProbeResult, parse_probe_output
from components.verification.report import CheckResult, VerificationFailed, VerificationReport
from components.verification.target import (
    VERIFICATION_OUTPUT,
    ManagementAccess,
    TargetError,
    VerificationTarget,
    from_stack_outputs,
)

__all__ = [
    "VERIFICATION_OUTPUT",
    "CheckResult",
    "ManagementAccess",
    "ProbeResult",
    "TargetError",
    "VerificationFailed",
    "VerificationReport",
    "VerificationTarget",
    "from_stack_outputs",
    "parse_probe_output",
    "run_verification",
]
