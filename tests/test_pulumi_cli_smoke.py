"""Smoke test of the real Pulumi CLI on this program: `pulumi preview` of the dev stack, and a config error.

Runs only where the ``pulumi`` CLI is on PATH (it skips otherwise, under CI too: the suite's machines
have no Pulumi CLI, and the program is tested under Pulumi mocks there). Each test works in a
temporary copy of the program (``Pulumi.yaml``, ``__main__.py``, ``components/``, ``stacks/``,
``requirements.txt``) with its own ``PULUMI_HOME`` and a ``file://`` backend in the temporary
directory, so it never touches the repository's stack files or the user's Pulumi login. ``venv``
in the copy is a symlink to the virtualenv running the tests (it holds the program's dependencies),
so no ``pip install`` and no network is needed for the Python side. Resource plugins already
installed for the user are reused; a missing docker plugin is downloaded by the CLI, and when that
is impossible the test skips saying so. Every CLI call is bounded by a timeout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PROGRAM_FILES = ("Pulumi.yaml", "__main__.py", "requirements.txt", "components", "stacks")
STACK = "dev"
PASSPHRASE = "test"
"""Passphrase of the throwaway stack's secrets (a test value, not a secret)."""
SHORT_TIMEOUT = 120
PREVIEW_TIMEOUT = 540
"""Seconds for one preview, including a first download of the docker plugin."""

APPLICATION = ("pulumi-python:dynamic/logto:Application", "lobechat-application")
WEBHOOK = ("pulumi-python:dynamic/logto:Webhook", "lobechat-webhook")
LOBECHAT_CONTAINER = ("docker:index/container:Container", "lobechat")

_PLUGIN_FAILURE = re.compile(r"download|install|not found|no resource plugin|fetching", re.IGNORECASE)
_NO_DOCKER_DAEMON = re.compile(
    r"cannot connect to the docker daemon|failed to connect to any docker daemon|error pinging docker server",
    re.IGNORECASE,
)


@dataclass
class CliRun:
    """One finished CLI call."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together (what a person would see)."""
        return f"{self.stdout}\n{self.stderr}"

    def tail(self, lines: int = 40) -> str:
        """The last lines of the output, for assertion messages (the stack has no secret values in clear)."""
        return "\n".join(self.output.strip().splitlines()[-lines:])


def missing_prerequisite(output: str) -> str | None:
    """Why a failed CLI call could not have succeeded on this machine, or None when it should have.

    Two causes are outside the program: the docker resource plugin is not installed and could not be
    downloaded (no network), or the docker provider found no Docker daemon to configure against.
    """
    for line in output.splitlines():
        lowered = line.lower()
        if "plugin" in lowered and "docker" in lowered and _PLUGIN_FAILURE.search(line):
            return f"the docker resource plugin is missing and could not be installed: {line.strip()[:300]}"
    for line in output.splitlines():
        if _NO_DOCKER_DAEMON.search(line):
            return f"no Docker daemon reachable for the docker provider: {line.strip()[:300]}"
    return None


def previewed_resources(preview_json: str) -> dict[tuple[str, str], str]:
    """``{(type, name): op}`` of every step in ``pulumi preview --json`` output."""
    # Anything the CLI printed before the JSON document (a warning line) is not part of it.
    start = next((i for i, line in enumerate(preview_json.splitlines()) if line.startswith("{")), 0)
    document: dict[str, Any] = json.loads("\n".join(preview_json.splitlines()[start:]))
    resources: dict[tuple[str, str], str] = {}
    for step in document.get("steps") or []:
        # urn:pulumi:<stack>::<project>::<parent types$...$type>::<name>
        parts = str(step.get("urn", "")).split("::")
        if len(parts) >= 4:
            resources[(parts[2].split("$")[-1], parts[-1])] = str(step.get("op"))
    return resources


def program_virtualenv() -> Path:
    """The virtualenv that runs these tests: it has the program's dependencies (requirements-dev includes them)."""
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix)
    return REPO / ".venv"


def user_plugin_dir(environ: os._Environ[str] | dict[str, str]) -> Path:
    """Where the user's Pulumi CLI keeps installed plugins."""
    home = environ.get("PULUMI_HOME") or str(Path.home() / ".pulumi")
    return Path(home) / "plugins"


class PulumiProject:
    """A temporary copy of the program with its own Pulumi home, backend and ``dev`` stack."""

    def __init__(self, pulumi: str, root: Path) -> None:
        self.pulumi = pulumi
        self.root = root
        self.project_dir = root / "project"
        self.env = self._environment(root / "pulumi-home")

    def _environment(self, pulumi_home: Path) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            # Never reach the user's backend or Pulumi Cloud from a test.
            if key not in {"PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "VIRTUAL_ENV"}
        }
        pulumi_home.mkdir(parents=True)
        plugins = user_plugin_dir(os.environ)
        if plugins.is_dir():
            # Reuse what is installed (no download); a download the CLI must do lands in the user's cache.
            (pulumi_home / "plugins").symlink_to(plugins, target_is_directory=True)
        env.update(
            PULUMI_HOME=str(pulumi_home),
            PULUMI_CONFIG_PASSPHRASE=PASSPHRASE,
            PULUMI_SKIP_UPDATE_CHECK="true",
        )
        return env

    def copy_program(self) -> None:
        """Copy the program's files and link ``venv`` (Pulumi.yaml: ``virtualenv: venv``) to the test venv."""
        self.project_dir.mkdir()
        for name in PROGRAM_FILES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, self.project_dir / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, self.project_dir / name)
        venv = program_virtualenv()
        if not (venv / "bin" / "python").exists():
            pytest.fail(f"no virtualenv with the program's dependencies at {venv}", pytrace=False)
        (self.project_dir / "venv").symlink_to(venv, target_is_directory=True)

    def run(self, *args: str, timeout: float = SHORT_TIMEOUT) -> CliRun:
        """Run ``pulumi <args>`` in the copy; a call that outlives ``timeout`` is killed and fails the test."""
        command = [self.pulumi, *args, "--non-interactive", "--color", "never"]
        process = subprocess.Popen(
            command, cwd=self.project_dir, env=self.env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: a timeout ends the CLI and its plugins together
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"`pulumi {' '.join(args)}` did not finish within {timeout} s", pytrace=False)
        return CliRun(list(args), process.returncode, stdout, stderr)

    def must(self, *args: str, timeout: float = SHORT_TIMEOUT) -> CliRun:
        """Run a setup command that has to succeed."""
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"`pulumi {' '.join(args)}` exited {result.returncode}:\n{result.tail()}"
        return result

    def preview(self, *extra: str) -> CliRun:
        """``pulumi preview`` of the dev stack (the caller decides what a failure means)."""
        return self.run("preview", "--stack", STACK, *extra, timeout=PREVIEW_TIMEOUT)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[PulumiProject]:
    """The program in a temporary directory, logged in to a ``file://`` backend there, stack ``dev`` created."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        # A plain skip, also under CI: no Pulumi CLI is installed where the suite runs.
        pytest.skip("the Pulumi CLI (`pulumi`) is not on PATH: install it (https://www.pulumi.com/docs/install/) to run this smoke test")
    project = PulumiProject(pulumi, tmp_path)
    project.copy_program()
    project.must("login", f"file://{tmp_path / 'state'}")
    project.must("stack", "init", STACK)
    yield project


def test_preview_of_dev_stack_plans_application_webhook_and_lobechat(project: PulumiProject) -> None:
    result = project.preview("--json")
    if result.returncode != 0 and (reason := missing_prerequisite(result.output)):
        pytest.skip(reason)
    assert result.returncode == 0, f"pulumi preview exited {result.returncode}:\n{result.tail()}"
    planned = previewed_resources(result.stdout)
    for resource in (APPLICATION, WEBHOOK, LOBECHAT_CONTAINER):
        assert planned.get(resource) == "create", f"preview does not create {resource[0]} {resource[1]!r}"


def test_invalid_config_fails_preview_naming_the_key_without_traceback(project: PulumiProject) -> None:
    project.must("config", "set", "lobechat-logto:lobechatUrl", "not-a-url", "--stack", STACK)
    result = project.preview()
    named = "lobechat-logto:lobechatUrl" in result.output
    if result.returncode != 0 and not named and (reason := missing_prerequisite(result.output)):
        pytest.skip(reason)
    assert result.returncode != 0, "pulumi preview accepted lobechatUrl 'not-a-url'"
    assert named and "invalid config for stack 'dev'" in result.output, result.tail()
    assert "Traceback" not in result.output, result.tail()
