"""``rotation.*.postgresPassword``: read for a stack-run Postgres, refused with an external database."""

from __future__ import annotations

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from tests.test_config_rotation import DEV, load, only_problem

DB_SECRETS = {
    "postgresLogtoUrl": "postgresql://logto:pw-logto-0123456789@db.example.com:5432/logto",
    "postgresLobechatUrl": "postgresql://lobe:pw-lobe-0123456789@db.example.com:5432/lobechat",
}
EXTERNAL_DB = {**DEV, "postgres": {"mode": "external"}}


def test_postgres_password_has_a_schedule_and_a_request():
    rotation = load({"maxAge": {"postgresPassword": "90d"}, "rotateNow": {"postgresPassword": "2026-12-01"}}).rotation
    assert rotation.postgres_password.max_age_seconds == 90 * 86400
    assert rotation.postgres_password.request == "2026-12-01"
    assert rotation.policy("postgresPassword") is rotation.postgres_password


def test_no_postgres_password_policy_by_default():
    assert not load_stage_config(MappingConfigSource(DEV), "dev").rotation.postgres_password.enabled


@pytest.mark.parametrize("value", ["30m", "90", "soon"])
def test_a_bad_postgres_password_max_age_is_named(value):
    message = only_problem({"maxAge": {"postgresPassword": value}})
    assert message.startswith("lobechat-logto:rotation.maxAge.postgresPassword:")


def test_a_bad_postgres_password_request_is_named():
    assert "rotation.rotateNow.postgresPassword" in only_problem({"rotateNow": {"postgresPassword": "two words"}})


@pytest.mark.parametrize("rotation", [{"maxAge": {"postgresPassword": "30d"}}, {"rotateNow": {"postgresPassword": "now"}}])
def test_an_external_database_refuses_postgres_password_rotation_with_one_clear_error(rotation):
    with pytest.raises(ConfigError) as info:
        load_stage_config(MappingConfigSource({**EXTERNAL_DB, "rotation": rotation}, DB_SECRETS), "dev")
    problems = info.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    message = str(problems[0])
    where = "maxAge" if "maxAge" in rotation else "rotateNow"
    assert message.startswith(f"lobechat-logto:rotation.{where}.postgresPassword:")
    assert "postgresPassword" in message and "postgres.mode 'container'" in message
    assert "does not manage its roles" in message
    assert "pw-lobe" not in message and "pw-logto" not in message


def test_an_external_database_without_postgres_rotation_is_fine():
    config = load_stage_config(MappingConfigSource({**EXTERNAL_DB, "rotation": {"maxAge": {"clientSecret": "30d"}}},
                                                   DB_SECRETS), "dev")
    assert not config.rotation.postgres_password.enabled
