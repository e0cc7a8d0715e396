"""What a verification found: one result per check, passed or failed with the fix; never a secret.

Results carry only check names, URLs, HTTP statuses, Logto error codes and variable names: every
message is built from those, never from a secret value, so a report can be printed and logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckResult:
    """One check.

    Attributes:
        name: short stable id (``issuer-discovery``).
        passed: True when the check holds.
        detail: what was observed (no secret).
        fix: what to do when it failed (empty when it passed).
        skipped: True when the check could not run (missing input); counts as passed, says why.
    """

    name: str
    passed: bool
    detail: str
    fix: str = ""
    skipped: bool = False

    def line(self) -> str:
        """One line for a report: ``PASS name: detail`` / ``FAIL name: detail -> fix``."""
        if self.skipped:
            return f"SKIP {self.name}: {self.detail}"
        if self.passed:
            return f"PASS {self.name}: {self.detail}"
        return f"FAIL {self.name}: {self.detail}" + (f"\n       fix: {self.fix}" if self.fix else "")


def passed(name: str, detail: str) -> CheckResult:
    """A passed check."""
    return CheckResult(name, True, detail)


def failed(name: str, detail: str, fix: str) -> CheckResult:
    """A failed check with its fix."""
    return CheckResult(name, False, detail, fix)


def skipped(name: str, reason: str) -> CheckResult:
    """A check that could not run here (say why)."""
    return CheckResult(name, True, reason, skipped=True)


@dataclass
class VerificationReport:
    """Every check of one verification run, in the order they ran."""

    stage: str
    results: list[CheckResult] = field(default_factory=list)

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        return result

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def result(self, name: str) -> CheckResult:
        """The result of check ``name`` (KeyError when it did not run)."""
        for item in self.results:
            if item.name == name:
                return item
        raise KeyError(name)

    def summary(self) -> str:
        """``verification of stage 'dev': 14 passed, 1 failed, 1 skipped``."""
        failed_count = len(self.failures)
        skipped_count = sum(1 for r in self.results if r.skipped)
        passed_count = len(self.results) - failed_count - skipped_count
        text = f"verification of stage '{self.stage}': {passed_count} passed, {failed_count} failed"
        return text + (f", {skipped_count} skipped" if skipped_count else "")

    def text(self) -> str:
        """The whole report, one line per check, failures with their fix."""
        return "\n".join([self.summary(), *("  " + r.line() for r in self.results)])

    def failure_text(self) -> str:
        """The failed checks only, each with its fix."""
        return "\n".join([self.summary(), *("  " + r.line() for r in self.failures)])


class VerificationFailed(RuntimeError):
    """At least one check failed; the message lists every failed check with its fix (no secret)."""

    def __init__(self, report: VerificationReport) -> None:
        self.report = report
        super().__init__(
            report.failure_text()
            + "\nRun `python -m components.verification --stack "
            + report.stage
            + "` to check again; set `lobechat-logto:verification.onFailure` to `warn` to deploy anyway."
        )
