"""Config errors: one line per bad value, naming the full key, never quoting a secret."""

from __future__ import annotations

from dataclasses import dataclass

from components.config.stage import NAMESPACE


@dataclass(frozen=True)
class ConfigProblem:
    """One bad value: the full key and what is wrong / what to do (never the value if secret)."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(ValueError):
    """The stage config is invalid; ``problems`` lists every bad value, one entry per key."""

    def __init__(self, stack: str, problems: list[ConfigProblem]) -> None:
        self.stack = stack
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid config for stack '{stack}' ({len(self.problems)} problem(s)):\n{lines}")


def full_key(key: str) -> str:
    """``lobechatUrl`` -> ``lobechat-logto:lobechatUrl``."""
    return f"{NAMESPACE}:{key}"


def secret_set_command(key: str, stack: str) -> str:
    """The command that sets a secret key, for error messages."""
    return f"pulumi config set --secret {full_key(key)} <value> --stack {stack}"


class Problems:
    """Collects every bad value of one load, each under its full key."""

    def __init__(self) -> None:
        self.items: list[ConfigProblem] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(ConfigProblem(full_key(key), message))

    def count(self) -> int:
        return len(self.items)
