"""The ``storage`` section of a stage's config: modes, defaults, one clear error per bad key."""

from __future__ import annotations

import pytest

from components.config import STORAGE_IMAGE, ConfigError, MappingConfigSource, load_stage_config

SECRET = "s3-secret-value-that-must-not-leak"

DEV = {
    "lobechatUrl": "http://lobe.localhost:3210",
    "logto": {"endpoint": "http://auth.localhost:3001", "adminEndpoint": "http://auth-admin.localhost:3002"},
}
PROD = {
    "lobechatUrl": "https://chat.example.com",
    "logto": {"endpoint": "https://auth.example.com", "adminEndpoint": "https://auth-admin.example.com"},
}
EXTERNAL_SECRETS = {"storageAccessKeyId": "AKIAEXTERNAL00000001", "storageSecretAccessKey": SECRET}


def load(values: dict, secrets: dict | None = None, stack: str = "dev"):
    return load_stage_config(MappingConfigSource(values, secrets), stack)


def problems(values: dict, secrets: dict | None = None, stack: str = "dev") -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load(values, secrets, stack)
    assert SECRET not in str(info.value)
    return {p.key.removeprefix("lobechat-logto:"): p.message for p in info.value.problems}


def test_storage_is_off_unless_the_stage_asks_for_it():
    storage = load(DEV).storage
    assert storage.mode == "none" and not storage.enabled


def test_container_mode_on_localhost_listens_and_publishes_on_the_urls_port():
    storage = load({**DEV, "storage": {"mode": "container", "publicEndpoint": "http://s3.localhost:9100"}}).storage
    assert storage.endpoint == storage.public_domain == "http://s3.localhost:9100"
    assert storage.container_port == storage.publish_port == 9100
    assert storage.api_endpoint == "http://127.0.0.1:9100"  # the program's calls go to the published port
    assert storage.bucket == "lobechat" and storage.region == "us-east-1" and storage.path_style
    assert storage.image == STORAGE_IMAGE and not storage.public_read


def test_container_mode_on_a_public_name_listens_on_9000_and_is_called_there():
    config = load({**PROD, "proxyOnDockerHost": True, "storage": {"mode": "container", "publicEndpoint": "https://s3.example.com"}}, stack="prod")
    assert config.storage.container_port == 9000 and config.storage.api_endpoint == "https://s3.example.com"
    assert "s3.example.com" in config.lobechat_proxied_host_names
    assert "s3.example.com" not in config.proxied_host_names  # Logto does not call S3


def test_container_mode_needs_a_public_endpoint():
    found = problems({**DEV, "storage": {"mode": "container"}})
    assert "storage.publicEndpoint" in found and "pulumi config set --path" in found["storage.publicEndpoint"]


def test_public_endpoint_must_be_https_on_prod():
    found = problems({**PROD, "storage": {"mode": "container", "publicEndpoint": "http://s3.example.com"}}, stack="prod")
    assert list(found) == ["storage.publicEndpoint"] and "https://" in found["storage.publicEndpoint"]


def test_an_endpoint_that_is_not_a_url_is_one_error():
    found = problems({**DEV, "storage": {"mode": "external", "bucket": "lobechat-dev", "endpoint": "s3.example.com"}}, EXTERNAL_SECRETS)
    assert list(found) == ["storage.endpoint"]


@pytest.mark.parametrize("bucket", ["LobeChat", "lobe_chat", "ab", "10.0.0.1", "lobe..chat"])
def test_a_bucket_name_s3_refuses_is_one_error(bucket: str):
    found = problems({**DEV, "storage": {"mode": "container", "publicEndpoint": "http://s3.localhost:9000", "bucket": bucket}})
    assert list(found) == ["storage.bucket"] and "S3" in found["storage.bucket"]


def test_unknown_mode_and_field_are_named():
    assert "storage.mode" in problems({**DEV, "storage": {"mode": "minio"}})
    found = problems({**DEV, "storage": {"mode": "container", "publicEndpoint": "http://s3.localhost:9000", "bukket": "x"}})
    assert list(found) == ["storage.bukket"]


def test_external_mode_needs_a_bucket_and_both_secret_keys_with_their_commands():
    found = problems({**DEV, "storage": {"mode": "external"}})
    assert set(found) == {"storage.bucket", "storageAccessKeyId", "storageSecretAccessKey"}
    assert "pulumi config set --secret lobechat-logto:storageSecretAccessKey" in found["storageSecretAccessKey"]


def test_external_aws_is_virtual_hosted_at_the_regional_endpoint():
    storage = load({**DEV, "storage": {"mode": "external", "bucket": "acme-lobechat", "region": "eu-west-1"}}, EXTERNAL_SECRETS).storage
    assert storage.endpoint == "https://s3.eu-west-1.amazonaws.com" and storage.api_endpoint is None
    assert not storage.path_style and storage.public_domain == "https://acme-lobechat.s3.eu-west-1.amazonaws.com"
    assert storage.lobechat_access_key_id is None and storage.access_key_id == "AKIAEXTERNAL00000001"


def test_external_r2_is_path_style_at_its_endpoint_with_region_auto():
    storage = load({**DEV, "storage": {"mode": "external", "bucket": "lobechat", "region": "auto",
                                       "endpoint": "https://acct.r2.cloudflarestorage.com",
                                       "publicDomain": "https://files.example.com"}}, EXTERNAL_SECRETS).storage
    assert storage.endpoint == storage.api_endpoint == "https://acct.r2.cloudflarestorage.com"
    assert storage.path_style and storage.public_domain == "https://files.example.com" and storage.region == "auto"


def test_a_separate_lobechat_key_needs_both_halves():
    found = problems({**DEV, "storage": {"mode": "external", "bucket": "lobechat-dev"}},
                     {**EXTERNAL_SECRETS, "storageLobechatAccessKeyId": "AKIALOBE"})
    assert list(found) == ["storageLobechatSecretAccessKey"]


def test_s3_variables_in_extra_env_are_refused_when_storage_is_on_with_a_migration_hint():
    found = problems(
        {**DEV, "storage": {"mode": "container", "publicEndpoint": "http://s3.localhost:9000"},
         "extraEnv": {"S3_ENDPOINT": "https://old.example.com", "S3_BUCKET": "old"}},
        {"extraSecretEnv": {"S3_SECRET_ACCESS_KEY": SECRET}},
    )
    assert set(found) == {"extraEnv.S3_ENDPOINT", "extraEnv.S3_BUCKET", "extraSecretEnv.S3_SECRET_ACCESS_KEY"}
    assert "storage.*" in found["extraEnv.S3_ENDPOINT"] and "File storage" in found["extraEnv.S3_ENDPOINT"]


def test_s3_variables_in_extra_env_still_work_with_storage_off():
    config = load({**DEV, "extraEnv": {"S3_ENDPOINT": "https://old.example.com"}})
    assert config.extra_env["S3_ENDPOINT"] == "https://old.example.com" and not config.storage.enabled


def test_storage_settings_without_a_mode_are_refused():
    assert list(problems({**DEV, "storage": {"publicEndpoint": "http://s3.localhost:9000"}})) == ["storage.publicEndpoint"]
    assert list(problems(DEV, EXTERNAL_SECRETS)) == ["storageAccessKeyId", "storageSecretAccessKey"]


def test_container_publish_port_must_not_collide_with_lobechat_or_logto():
    found = problems({**PROD, "storage": {"mode": "container", "publicEndpoint": "https://s3.example.com", "publishPort": 3001}}, stack="prod")
    assert list(found) == ["storage.publishPort"]


def test_container_image_must_be_pinned():
    found = problems({**DEV, "storage": {"mode": "container", "publicEndpoint": "http://s3.localhost:9000", "image": "rustfs/rustfs:latest"}})
    assert list(found) == ["storage.image"]


def test_iam_lobechat_key_is_for_aws_only_and_not_with_a_configured_lobechat_key():
    aws = {**DEV, "storage": {"mode": "external", "bucket": "acme-lobechat", "lobechatKey": "iam"}}
    assert load(aws, EXTERNAL_SECRETS).storage.lobechat_key == "iam"
    r2 = {**DEV, "storage": {"mode": "external", "bucket": "acme", "endpoint": "https://a.r2.cloudflarestorage.com", "lobechatKey": "iam"}}
    assert list(problems(r2, EXTERNAL_SECRETS)) == ["storage.lobechatKey"]
    both = {**EXTERNAL_SECRETS, "storageLobechatAccessKeyId": "AKIALOBE", "storageLobechatSecretAccessKey": SECRET}
    assert list(problems(aws, both)) == ["storage.lobechatKey"]
    container = {**DEV, "storage": {"mode": "container", "publicEndpoint": "http://s3.localhost:9000", "lobechatKey": "iam"}}
    assert list(problems(container)) == ["storage.lobechatKey"]
