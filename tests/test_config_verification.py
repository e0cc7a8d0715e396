"""The ``verification`` config section."""

from __future__ import annotations

import pytest

from components.config import ConfigError, MappingConfigSource, load_stage_config
from components.config.verification import VerificationConfig
from tests.pulumi_mocks import stack_config


def load(stack: str, verification=None):
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()}
    if verification is not None:
        raw["verification"] = verification
    return load_stage_config(MappingConfigSource(raw), stack)


def test_verification_is_on_by_default_and_fails_up():
    assert load("dev").verification == VerificationConfig()
    assert VerificationConfig().enabled and VerificationConfig().on_failure == "fail"


def test_each_setting_is_read():
    config = load("dev", {"enabled": False, "onFailure": "warn", "inNetworkProbe": False,
                          "secretExpiryWarningDays": 30, "lobechatCheckUrl": "http://127.0.0.1:13210/"}).verification
    assert config == VerificationConfig(False, "warn", False, 30, "http://127.0.0.1:13210")


@pytest.mark.parametrize(
    "value,key",
    [({"onFailure": "explode"}, "verification.onFailure"), ({"enabled": "maybe"}, "verification.enabled"),
     ({"secretExpiryWarningDays": -1}, "verification.secretExpiryWarningDays"),
     ({"lobechatCheckUrl": "ftp://x"}, "verification.lobechatCheckUrl"), ({"enabeld": True}, "verification.enabeld"),
     ("yes", "verification")],
)
def test_bad_values_name_the_key(value, key):
    with pytest.raises(ConfigError) as error:
        load("dev", value)
    assert f"lobechat-logto:{key}:" in str(error.value)
