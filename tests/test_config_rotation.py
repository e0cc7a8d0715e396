"""The ``rotation`` config section: durations, what may rotate, and one clear error per bad value."""

from __future__ import annotations

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from components.config.rotation import format_duration, parse_duration

DEV = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
EXTERNAL = {
    "lobechatUrl": "https://chat.example.com",
    "logto": {"mode": "external", "endpoint": "https://auth.example.com"},
}
EXTERNAL_SECRETS = {"logtoM2mClientId": "m2m", "logtoM2mClientSecret": "s3cr3t"}


def load(rotation, base=DEV, secrets=None):
    return load_stage_config(MappingConfigSource({**base, "rotation": rotation}, secrets), "dev")


def only_problem(rotation, base=DEV, secrets=None) -> str:
    with pytest.raises(ConfigError) as info:
        load(rotation, base, secrets)
    problems = info.value.problems
    assert len(problems) == 1, [str(p) for p in problems]
    return str(problems[0])


def test_no_rotation_section_means_nothing_rotates_by_age():
    config = load_stage_config(MappingConfigSource(DEV), "dev")
    assert config.rotation.client_secret.max_age_seconds is None
    assert not config.rotation.webhook_signing_key.enabled
    assert config.rotation.client_secret_lifetime_seconds() is None


def test_max_ages_grace_and_requests_are_read():
    config = load({
        "maxAge": {"clientSecret": "90d", "webhookSigningKey": "12h"},
        "expiryGrace": "14d",
        "rotateNow": {"sessionSecret": "2026-12-01"},
    })
    rotation = config.rotation
    assert rotation.client_secret.max_age_seconds == 90 * 86400
    assert rotation.webhook_signing_key.max_age_seconds == 12 * 3600
    assert rotation.expiry_grace_seconds == 14 * 86400
    assert rotation.client_secret_lifetime_seconds() == 104 * 86400
    assert rotation.session_secret.request == "2026-12-01" and rotation.session_secret.max_age_seconds is None


def test_never_disables_a_max_age():
    assert load({"maxAge": {"clientSecret": "never"}}).rotation.client_secret.max_age_seconds is None


@pytest.mark.parametrize("value", ["90", 90, "90 days", "-1d", "1.5d", True])
def test_a_duration_needs_a_whole_number_and_a_unit(value):
    message = only_problem({"maxAge": {"clientSecret": value}})
    assert message.startswith("lobechat-logto:rotation.maxAge.clientSecret:")


def test_a_max_age_under_an_hour_is_refused():
    message = only_problem({"maxAge": {"clientSecret": "30m"}})
    assert "at least 1h" in message


def test_key_vaults_secret_rotation_is_refused_with_the_reason():
    for section in ("maxAge", "rotateNow"):
        value = "1d" if section == "maxAge" else "now"
        message = only_problem({section: {"keyVaultsSecret": value}})
        assert f"rotation.{section}.keyVaultsSecret" in message
        assert "API key users stored" in message and "unreadable" in message


def test_the_session_secret_has_no_schedule_and_says_who_is_signed_out():
    message = only_problem({"maxAge": {"sessionSecret": "30d"}})
    assert "rotation.maxAge.sessionSecret" in message and "signs every user out" in message
    assert "rotation.rotateNow.sessionSecret" in message


def test_unknown_secret_and_setting_are_named():
    with pytest.raises(ConfigError) as info:
        load({"maxAge": {"clientSecrets": "1d"}, "rotateNow": {"webhook": "x"}, "schedule": "daily"})
    keys = sorted(p.key for p in info.value.problems)
    assert keys == ["lobechat-logto:rotation.maxAge.clientSecrets", "lobechat-logto:rotation.rotateNow.webhook",
                    "lobechat-logto:rotation.schedule"]


@pytest.mark.parametrize("word", ["", "two words", "x" * 65, True])
def test_a_request_is_one_short_word(word):
    message = only_problem({"rotateNow": {"clientSecret": word}})
    assert "rotation.rotateNow.clientSecret" in message


def test_expiry_grace_under_a_day_is_refused():
    assert "at least 1d" in only_problem({"maxAge": {"clientSecret": "30d"}, "expiryGrace": "12h"})


def test_webhook_key_rotation_needs_the_container_logto():
    message = only_problem({"maxAge": {"webhookSigningKey": "30d"}}, EXTERNAL, EXTERNAL_SECRETS)
    assert "logto.mode 'container'" in message and "network alias" in message


def test_m2m_secret_rotation_is_read_with_its_lifetime():
    config = load({"maxAge": {"m2mSecret": "60d"}, "rotateNow": {"m2mSecret": "2030-01-02"}, "expiryGrace": "10d"})
    policy = config.rotation.m2m_secret
    assert (policy.max_age_seconds, policy.request) == (60 * 86400, "2030-01-02")
    assert config.rotation.policy("m2mSecret") == policy
    assert config.rotation.m2m_secret_lifetime_seconds() == 70 * 86400
    assert config.rotation.client_secret.enabled is False  # nothing else rotates because of it


def test_m2m_secret_rotation_on_request_only_has_no_expiry():
    config = load({"rotateNow": {"m2mSecret": "now-1"}})
    assert config.rotation.m2m_secret.max_age_seconds is None
    assert config.rotation.m2m_secret_lifetime_seconds() is None


@pytest.mark.parametrize("rotation, key", [
    ({"maxAge": {"m2mSecret": "30d"}}, "rotation.maxAge.m2mSecret"),
    ({"rotateNow": {"m2mSecret": "x1"}}, "rotation.rotateNow.m2mSecret"),
])
def test_m2m_secret_rotation_with_an_external_logto_is_refused_with_what_to_do(rotation, key):
    message = only_problem(rotation, EXTERNAL, EXTERNAL_SECRETS)
    assert key in message and "logto.mode 'container'" in message
    assert "Logto console" in message and "logto.m2mClientSecret" in message


def test_m2m_secret_max_age_under_an_hour_is_refused():
    assert "at least 1h" in only_problem({"maxAge": {"m2mSecret": "30m"}})


def test_webhook_key_rotation_needs_the_webhook():
    base = {**DEV, "webhook": {"enabled": False}}
    assert "webhook.enabled is false" in only_problem({"rotateNow": {"webhookSigningKey": "x"}}, base)


def test_client_secret_rotation_works_with_an_external_logto():
    config = load({"maxAge": {"clientSecret": "30d"}}, EXTERNAL, EXTERNAL_SECRETS)
    assert config.rotation.client_secret.max_age_seconds == 30 * 86400


def test_rotation_must_be_a_mapping():
    with pytest.raises(ConfigError) as info:
        load_stage_config(MappingConfigSource({**DEV, "rotation": ["clientSecret"]}), "dev")
    assert [p.key for p in info.value.problems] == ["lobechat-logto:rotation"]


def test_parse_and_format_durations():
    assert parse_duration("45s") == 45 and parse_duration("2h") == 7200 and parse_duration(None) is None
    assert format_duration(90 * 86400) == "90d" and format_duration(36 * 3600) == "36h"
    assert format_duration(31 * 86400 + 5) == "31d" and format_duration(59) == "59s"


def test_aws_publication_is_read():
    config = load({"awsSecretsManager": {"region": "eu-central-1", "clientSecretName": "lobechat/logto-client",
                                         "webhookSigningKeyName": "lobechat/logto-webhook"}})
    aws = config.rotation.aws
    assert aws is not None and aws.region == "eu-central-1"
    assert aws.client_secret_name == "lobechat/logto-client" and aws.webhook_signing_key_name == "lobechat/logto-webhook"


@pytest.mark.parametrize("aws, key", [
    ({"region": "europe", "clientSecretName": "x"}, "rotation.awsSecretsManager.region"),
    ({"region": "eu-central-1"}, "rotation.awsSecretsManager"),
    ({"region": "eu-central-1", "clientSecretName": "has space"}, "rotation.awsSecretsManager.clientSecretName"),
    ({"region": "eu-central-1", "clientSecretName": "x", "endpointUrl": "ftp://x"}, "rotation.awsSecretsManager.endpointUrl"),
    ({"region": "eu-central-1", "clientSecretName": "x", "kmsKey": "k"}, "rotation.awsSecretsManager.kmsKey"),
])
def test_bad_aws_publication_settings_are_named(aws, key):
    assert only_problem({"awsSecretsManager": aws}).startswith(f"lobechat-logto:{key}:")
