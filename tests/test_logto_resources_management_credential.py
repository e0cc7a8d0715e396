"""``LogtoManagementCredential`` called as the engine calls it, against the Logto stand-in.

The stand-in's own M2M application is a bootstrap-like one (legacy ``secret`` column, Management API
role): generation 0. Rotated generations are rows inserted the way the bootstrap SQL inserts them.
"""

from __future__ import annotations

import logging

import pytest
import requests

from components.logto_api import LogtoAuthenticationError, clear_token_cache
from components.logto_resources import LobeChatSecretLeaseProvider, LogtoManagementCredentialProvider
from components.logto_resources import management_credential as module
from components.logto_resources.management_credential import HELD_KEY, generation_of, m2m_secret_name
from tests.provider_inputs import connection_props
from tests.test_program_against_standin import same_secret

NEW = "NewM2mSecretValue0123456789abcdefg"
NEWER = "NewerM2mSecretValue0123456789abcde"


def props(logto, generation=0, secret=None):
    base = connection_props(logto)
    if secret is not None:
        base["logto_client_secret"] = secret
    return {**base, "generation": generation, "secret_name": m2m_secret_name(generation)}


class Hidden(str):
    """A secret whose repr shows nothing (pytest prints the arguments of a failed assert's calls)."""

    def __repr__(self) -> str:
        return "<secret>"


def legacy_of(logto) -> Hidden:
    return Hidden(logto.m2m_client_secret)


def accepted(logto, secret) -> bool:
    answer = requests.post(f"{logto.endpoint}/oidc/token", timeout=10, auth=(logto.m2m_client_id, secret),
                           data={"grant_type": "client_credentials", "resource": logto.state.management_resource,
                                 "scope": "all"})
    return answer.status_code == 200


def names(logto) -> list[str]:
    return sorted(s["name"] for s in logto.state.secrets[logto.m2m_client_id])


def insert(logto, name, value, expires_at=None):
    logto.state.insert_named_secret(logto.m2m_client_id, name=name, value=value, expires_at=expires_at)


def hold(logto, generation):
    logto.state.applications[logto.m2m_client_id]["customData"] = {HELD_KEY: {"generation": generation}}


def test_names_and_generations():
    assert m2m_secret_name(0) is None and m2m_secret_name(3) == "m2m-3"
    assert generation_of("legacy") == 0 and generation_of("m2m-12") == 12
    assert generation_of("m2m-") is None and generation_of("Default secret") is None and generation_of(None) is None


@pytest.mark.parametrize(("generation", "name", "prop"), [(-1, None, "generation"), (1.5, None, "generation"),
                                                          (True, None, "generation"), (2, "m2m-3", "secret_name"),
                                                          (0, "m2m-0", "secret_name")])
def test_check_refuses_inconsistent_inputs(logto, generation, name, prop):
    checked = LogtoManagementCredentialProvider().check({}, {**props(logto), "generation": generation, "secret_name": name})
    assert [f.property for f in checked.failures] == [prop]


def test_a_new_generation_or_secret_replaces_create_before_delete_and_a_new_endpoint_updates(logto):
    provider = LogtoManagementCredentialProvider()
    olds = props(logto)
    diff = provider.diff("x", olds, props(logto, 1, NEW))
    assert sorted(diff.replaces) == ["generation", "logto_client_secret", "secret_name"] and not diff.delete_before_replace
    moved = provider.diff("x", olds, {**olds, "logto_endpoint": "http://127.0.0.1:1"})
    assert moved.changes and moved.replaces == []
    assert provider.diff("x", olds, dict(olds)).changes is False


def test_create_of_generation_0_only_checks_the_legacy_secret(logto):
    created = LogtoManagementCredentialProvider().create(props(logto))
    assert created.id == f"{logto.m2m_client_id}/legacy"
    same = same_secret(created.outs["logto_client_secret"], logto.m2m_client_secret)
    assert same
    writes = [r for r in logto.requests_log if r.method != "GET" and r.path.startswith("/api/")]
    assert writes == []


def test_create_sweeps_what_is_older_than_the_previous_generation(logto):
    legacy = legacy_of(logto)
    for name, value in (("m2m-1", "FirstM2mSecretValue0123456789abcd"), ("m2m-2", NEW), ("m2m-3", NEWER)):
        insert(logto, name, value)
    insert(logto, "ops-hand-made", "HandMadeSecretValue0123456789abcd")
    LogtoManagementCredentialProvider().create(props(logto, 3, NEWER))
    assert names(logto) == ["m2m-2", "m2m-3", "ops-hand-made"]  # the previous one is its own delete's job
    assert accepted(logto, legacy)  # the legacy column is swept once, by generation 2
    assert accepted(logto, NEW) and accepted(logto, NEWER)
    LogtoManagementCredentialProvider().create(props(logto, 2, NEW))
    assert not accepted(logto, legacy)


def test_create_waits_while_logto_picks_the_new_secret_up(logto, monkeypatch):
    attempts = []

    def sleep(_seconds):
        attempts.append(1)
        if len(attempts) == 2:
            insert(logto, "m2m-1", NEW)

    monkeypatch.setattr(module, "_sleep", sleep)
    created = LogtoManagementCredentialProvider().create(props(logto, 1, NEW))
    assert created.outs["secret_name"] == "m2m-1" and len(attempts) == 2


def test_a_secret_logto_never_accepts_fails_the_step_clearly_without_the_secret(logto, monkeypatch):
    legacy = legacy_of(logto)
    clock = [0.0]
    monkeypatch.setattr(module, "_monotonic", lambda: clock[0])
    monkeypatch.setattr(module, "_sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    with pytest.raises(LogtoAuthenticationError) as failure:
        LogtoManagementCredentialProvider().create(props(logto, 1, NEW))
    message = str(failure.value)
    assert "still refuses the M2M secret m2m-1 of application" in message and "after 60 s" in message
    assert "verify the new Management API credential" in message and "keeps working on the previous" in message
    assert NEW not in message and clock[0] == pytest.approx(60.0)
    assert accepted(logto, legacy)  # nothing was retired


def test_delete_retires_its_own_secret_and_a_second_delete_is_done(logto, caplog):
    legacy = legacy_of(logto)
    insert(logto, "m2m-1", NEW)
    hold(logto, 2)  # the lease moved on (generation 2): neither 0 nor 1 is held
    provider = LogtoManagementCredentialProvider()
    with caplog.at_level(logging.INFO):
        provider.delete("x", props(logto))  # generation 0: the legacy column
    assert not accepted(logto, legacy) and accepted(logto, NEW)
    clear_token_cache()  # a new provider process: no token of the retired secret left
    provider.delete("x", props(logto))  # own credential refused: nothing left to do
    provider.delete("x", props(logto, 1, NEW))
    assert not accepted(logto, NEW) and names(logto) == []
    logged = caplog.text
    no_secret = logto.m2m_client_secret not in logged and NEW not in logged
    assert "retired M2M secret legacy" in logged and no_secret


def test_a_generation_still_held_by_the_lease_is_marked_not_retired_and_the_lease_retires_it(logto):
    legacy = legacy_of(logto)
    insert(logto, "m2m-1", NEW)
    LogtoManagementCredentialProvider().delete("x", props(logto))  # nothing recorded: the lease holds 0
    assert accepted(logto, legacy)
    held = logto.state.applications[logto.m2m_client_id]["customData"][HELD_KEY]
    assert held == {"retire": ["legacy"]}
    # The lease moves to generation 1 (with the new credential): it retires what was marked.
    app = logto.state.create_application({"name": "LobeChat", "type": "Traditional"})["id"]
    lease = {**props(logto, 1, NEW), "application_id": app, "client_secret_name": "Default secret",
             "key_generation": None, "hook_marker": None, "container_id": "c1",
             "m2m_application_id": logto.m2m_client_id, "m2m_generation": 1}
    for key in ("generation", "secret_name"):
        lease.pop(key)
    LobeChatSecretLeaseProvider().create(lease)
    assert not accepted(logto, legacy) and accepted(logto, NEW)
    assert logto.state.applications[logto.m2m_client_id]["customData"][HELD_KEY] == {"generation": 1, "retire": []}
    # Now the lease holds 1: the delete of generation 1 (a later rotation) would retire it.
    LogtoManagementCredentialProvider().delete("x", props(logto, 1, NEW))
    assert accepted(logto, NEW)  # still held (generation 1): marked instead


def test_every_logto_resource_connects_through_the_credential_so_the_engine_deletes_it_last():
    # The engine orders deletes by the dependencies recorded in the state: a resource holding the
    # M2M credential must depend on the credential, or the previous credential could be retired
    # before a replaced resource still holding it is deleted.
    from tests.pulumi_mocks import run_program, stack_config

    for stack in ("dev", "staging", "prod"):
        run = run_program(stack, stack_config(stack))
        (credential,) = [r for r in run.resources if r.type == "pulumi-python:dynamic/logto:ManagementCredential"]
        holders = [r for r in run.resources if r.type.startswith("pulumi-python:dynamic/logto:") and r is not credential]
        assert len(holders) >= 3
        for resource in holders:
            assert credential.urn in resource.property_dependencies.get("logto_client_secret", []), resource.name
        bootstrap = [r.urn for r in run.resources if r.name == "logto-bootstrap-psql"]
        assert set(bootstrap) <= set(credential.dependencies)
