"""StageRecord's provider, called the way the engine calls it (check -> create / diff -> update / delete),
and the data safety config."""

from __future__ import annotations

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from components.config.data_safety import image_major, image_version, postgres_image_for
from components.stage_record import StageRecordProvider, orphan_warning
from tests.pulumi_mocks import stack_config

BASE = {
    "stack": "prod",
    "postgres_major": 16,
    "postgres_image": "pgvector/pgvector:pg16",
    "data_volume": "lobechat-logto-prod-postgres-data",
    "logto_image": "svhd/logto:1.43.0",
    "lobechat_image": "lobehub/lobe-chat-database:1.143.3",
    "restore_from": None,
    "allow_downgrade": {},
    "rebuild_fingerprint": "f" * 24,
    "teardown_exported": None,
}


def created(**changes):
    provider = StageRecordProvider()
    inputs = {**BASE, **changes}
    checked = provider.check({}, inputs)
    assert checked.failures == []
    return provider, provider.create(checked.inputs).outs


def rerun(olds, **changes):
    """check of a later run with ``changes``; returns (failures, outs after update or None)."""
    provider = StageRecordProvider()
    news = {**{k: olds[k] for k in BASE}, **changes}
    checked = provider.check({k: olds[k] for k in BASE}, news)
    if checked.failures:
        return checked.failures, None
    diff = provider.diff("id", olds, checked.inputs)
    if not diff.changes:
        return [], olds
    return [], provider.update("id", olds, checked.inputs).outs


def test_first_run_records_the_stage_and_says_it_had_nothing_before():
    _, outs = created()
    assert outs["had_previous"] is False and outs["orphaned_volumes"] == []


def test_an_unchanged_run_changes_nothing():
    _, outs = created()
    failures, after = rerun(outs)
    assert failures == [] and after is outs


def test_a_new_major_on_the_same_volume_is_refused_with_the_upgrade_steps():
    _, outs = created()
    failures, _ = rerun(outs, postgres_major=17, postgres_image="paradedb/paradedb:0.25.5-pg17")
    assert [f.property for f in failures] == ["postgres_major"]
    reason = failures[0].reason
    assert "holds PostgreSQL 16 data" in reason and "dataSafety.postgresMajor 16" in reason
    assert "dataSafety.dataVolume lobechat-logto-prod-postgres-data-pg17" in reason and "restoreFrom" in reason
    assert "--stack prod" in reason


def test_a_new_major_on_a_new_volume_needs_a_snapshot_to_restore():
    _, outs = created()
    failures, _ = rerun(outs, postgres_major=17, data_volume="v17")
    assert [f.property for f in failures] == ["restore_from"]
    failures, after = rerun(outs, postgres_major=17, data_volume="v17", restore_from="20261201T120000Z-manual")
    assert failures == []
    assert after["had_previous"] is True and after["orphaned_volumes"] == ["lobechat-logto-prod-postgres-data"]
    assert orphan_warning(after["orphaned_volumes"]).startswith("data volume(s) 'lobechat-logto-prod-postgres-data'")


@pytest.mark.parametrize(
    ("key", "older", "component", "version"),
    [("logto_image", "svhd/logto:1.37.1", "logto", "1.37.1"),
     ("lobechat_image", "lobehub/lobe-chat-database:1.140.0", "lobechat", "1.140.0")],
)
def test_an_older_image_is_refused_unless_allowed_for_that_version(key, older, component, version):
    _, outs = created()
    failures, _ = rerun(outs, **{key: older})
    assert [f.property for f in failures] == [key]
    assert "forward-only" in failures[0].reason and f"allowDowngrade.{component} {version}" in failures[0].reason
    wrong, _ = rerun(outs, **{key: older}, allow_downgrade={component: "1.0.0"})
    assert [f.property for f in wrong] == [key]
    allowed, after = rerun(outs, **{key: older}, allow_downgrade={component: version})
    assert allowed == [] and after[key] == older


def test_newer_images_and_generation_moves_forward_are_fine():
    _, outs = created()
    failures, after = rerun(outs, logto_image="svhd/logto:1.44.0", lobechat_image="lobehub/lobehub:2.2.10")
    assert failures == [] and after["had_previous"] is True


def test_the_way_back_from_2_to_1_is_a_downgrade():
    _, outs = created(lobechat_image="lobehub/lobehub:2.2.10")
    failures, _ = rerun(outs, lobechat_image="lobehub/lobe-chat-database:1.143.3")
    assert [f.property for f in failures] == ["lobechat_image"]


def test_a_moving_volume_is_remembered_as_orphaned_until_it_comes_back():
    _, outs = created()
    _, moved = rerun(outs, data_volume="other-prefix-postgres-data")
    assert moved["orphaned_volumes"] == ["lobechat-logto-prod-postgres-data"]
    _, back = rerun(moved, data_volume="lobechat-logto-prod-postgres-data")
    assert back["orphaned_volumes"] == ["other-prefix-postgres-data"]


def test_destroy_refuses_until_the_rebuild_secrets_were_exported():
    provider, outs = created()
    with pytest.raises(Exception) as error:
        provider.delete("id", outs)
    message = str(error.value)
    assert "pulumi stack output --show-secrets rebuildSecrets --stack prod" in message
    assert f"dataSafety.teardownExported {'f' * 24}" in message
    _, exported = rerun(outs, teardown_exported="f" * 24)
    provider.delete("id", exported)  # no error


def test_unknown_values_during_preview_are_not_refused():
    _, outs = created()
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    failures, _ = rerun(outs, postgres_major=unknown, logto_image=unknown)
    assert failures == []


def test_image_tags_name_their_major_and_version():
    assert image_major("pgvector/pgvector:pg16") == 16
    assert image_major("paradedb/paradedb:0.25.5-pg17") == 17
    assert image_major("postgres:16.4-bookworm") == 16
    assert image_major("postgres@sha256:abc") is None
    assert image_version("svhd/logto:1.43.0") == (1, 43, 0)
    assert image_version("lobehub/lobehub:latest") is None
    assert postgres_image_for(2, 16) == "paradedb/paradedb:0.25.5-pg16"


# --- config ----------------------------------------------------------------------------------------


def load(stack: str = "prod", secrets: dict | None = None, **changes):
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()}
    raw.update(changes)
    return load_stage_config(MappingConfigSource(raw, secrets or {}), stack)


def problems(stack: str = "prod", secrets: dict | None = None, **changes) -> str:
    with pytest.raises(ConfigError) as error:
        load(stack, secrets, **changes)
    return str(error.value)


def test_backups_default_off_on_dev_and_on_elsewhere():
    assert load("dev").data_safety.backups.enabled is False
    prod = load("prod").data_safety.backups
    assert prod.enabled and prod.interval_hours == 24 and prod.keep == 14


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"backups": {"keep": 0}}, "lobechat-logto:backups.keep"),
        ({"backups": {"intervalHours": "soon"}}, "lobechat-logto:backups.intervalHours"),
        ({"backups": {"every": 1}}, "lobechat-logto:backups.every"),
        ({"dataSafety": {"postgresMajor": 12}}, "lobechat-logto:dataSafety.postgresMajor"),
        ({"dataSafety": {"postgresMajor": 16, "restoreFrom": "yesterday"}}, "lobechat-logto:dataSafety.restoreFrom"),
        ({"dataSafety": {"postgresMajor": 16, "restoreFrom": "20261201T120000Z-manual"}}, "set dataSafety.dataVolume"),
        ({"dataSafety": {"postgresMajor": 16, "adoptVolume": True}}, "rebuildPostgresPassword"),
        ({"dataSafety": {"postgresMajor": 16, "allowDowngrade": {"postgres": "15"}}}, "dataSafety.allowDowngrade"),
        ({"dataSafety": {"postgresMajor": 17}, "postgres": {"mode": "container", "image": "pgvector/pgvector:pg16"}},
         "runs PostgreSQL 16 but lobechat-logto:dataSafety.postgresMajor pins 17"),
    ],
)
def test_bad_data_safety_config_is_one_clear_error(changes, expected):
    assert expected in problems(**changes)


def test_a_rebuild_needs_both_previous_secrets_and_never_prints_them():
    message = problems(secrets={"rebuildPostgresPassword": "Secret0123456789abcdef"})
    assert "rebuildKeyVaultsSecret" in message and "Secret0123456789abcdef" not in message


def test_with_an_external_database_only_the_downgrade_guard_is_declared():
    from tests.pulumi_mocks import run_program

    config = stack_config("dev")
    config["lobechat-logto:postgres"] = {"mode": "external"}
    result = run_program(
        "dev", config,
        {"lobechat-logto:postgresLogtoUrl": "postgresql://u:p@db.example.com:5432/logto",
         "lobechat-logto:postgresLobechatUrl": "postgresql://u:p@db.example.com:5432/lobechat"},
    )
    record = result.one("pulumi-python:dynamic/datasafety:StageRecord", "data-safety-record")
    assert record.plain("lobechat_image") == "lobehub/lobe-chat-database:1.143.3"
    assert record.plain("postgres_major") is None and record.plain("rebuild_fingerprint") is None
    assert not [r for r in result.resources if r.name.startswith(("data-safety-snapshot", "postgres-volume-check"))]
    provider = StageRecordProvider()
    provider.delete("id", {**BASE, "rebuild_fingerprint": None})  # no teardown guard: nothing of ours to keep
