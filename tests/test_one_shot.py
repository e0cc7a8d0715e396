"""The one-shot step containers (components/one_shot.py): how every step of every stage runs."""

from __future__ import annotations

import pytest

from components.one_shot import ROLE_LABEL, replace_target
from tests.pulumi_mocks import CONTAINER, run_program
from tests.test_container_hardening import _secret_variant_configs

# Long-running containers: everything else the stack declares is a step that runs once.
LONG_RUNNING = {"postgres", "logto", "lobechat", "storage", "front", "data-safety-scheduled-backups"}


@pytest.mark.parametrize("variant", range(5))
def test_every_step_runs_once_attached_hardened_with_its_output_kept_and_a_role(variant):
    stack, config, secrets, _ = list(_secret_variant_configs())[variant]
    run = run_program(stack, config, secrets)
    steps = [c for c in run.of_type(CONTAINER) if c.name not in LONG_RUNNING]
    assert len(steps) >= 6, [c.name for c in steps]  # external Postgres: no roles, volume or snapshot steps
    for step in steps:
        settings = {key: step.plain(key) for key in ("attach", "logs", "mustRun", "restart", "securityOpts")}
        assert settings == {"attach": True, "logs": True, "mustRun": False, "restart": "no",
                            "securityOpts": ["no-new-privileges:true"]}, step.name
        assert (step.plain("memory") or 0) >= 64, step.name
        roles = [label["value"] for label in step.plain("labels") if label["label"] == ROLE_LABEL]
        assert len(roles) == 1 and roles[0], step.name


def test_every_step_with_a_secret_file_gets_it_0600_and_marked_secret():
    stack, config, secrets, _ = list(_secret_variant_configs())[0]
    run = run_program(stack, config, secrets)
    for name in ("postgres-roles-psql", "logto-bootstrap-psql", "logto-database-preflight", "postgres-volume-check"):
        step = run.one(CONTAINER, name)
        assert step.is_secret("uploads"), name
        files = [u for u in step.plain("uploads") if "/secrets/" in u["file"] or u["file"].endswith("pgpass")]
        assert files and all(u.get("permissions") == "0600" for u in files), name


def test_a_failure_names_the_resource_to_replace_or_says_where_to_find_it():
    assert replace_target("urn:pulumi:dev::p::t::n", "the roles container") == "'urn:pulumi:dev::p::t::n'"
    assert replace_target("", "the roles container") == "<URN of the roles container (pulumi stack --show-urns)>"
