"""The providers as the engine ships them: dill-serialized into the state, loaded in another process.

``pulumi.dynamic.dynamic.serialize_provider`` is what the SDK stores under ``__provider``; the engine
later starts ``python -m pulumi.dynamic`` in the project directory, which base64-decodes and
``dill.loads`` it. These tests do the same in a fresh interpreter and create real objects there.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.logto_api import transport as transport_module
from components.logto_resources import (
    LogtoApplicationProvider,
    LogtoApplicationSecretProvider,
    LogtoWebhookProvider,
)
from components.storage_resources import S3AccessKeyProvider, S3BucketProvider
from tests.logto_standin import LogtoStandIn
from tests.provider_inputs import connection_props
from tests.s3_server import MotoS3

REPO_ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = [
    LogtoApplicationProvider, LogtoApplicationSecretProvider, LogtoWebhookProvider, S3BucketProvider, S3AccessKeyProvider,
]
# What a leaked live object would put into the pickle.
LIVE_OBJECT_MARKERS = (
    b"requests.sessions", b"Session", b"urllib3", b"_TOKEN_CACHE", b"Bearer", b"access_token", b"botocore", b"boto3",
)

# Runs in the fresh interpreter, the way `python -m pulumi.dynamic` loads a provider (that module
# starts a gRPC server on import, so its two loading lines are repeated here). Prints ids only.
LOADER = """
import base64, json, sys
import dill
request = json.load(sys.stdin)
provider = dill.loads(base64.b64decode(request["provider"]))
checked = provider.check({}, request["props"])
if checked.failures:
    raise SystemExit("check failed: " + "; ".join(f.property for f in checked.failures))
result = provider.create(checked.inputs)
print(json.dumps({"id": result.id, "provider_class": type(provider).__module__ + "." + type(provider).__name__}))
"""


def app_props(logto: LogtoStandIn) -> dict[str, Any]:
    return {
        **connection_props(logto),
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": "lobechat-app",
        "name": "LobeChat (from a serialized provider)",
        "description": None,
        "app_type": "Traditional",
        "redirect_uris": ["http://lobe.localhost:3210/api/auth/callback/logto"],
        "post_sign_out_redirect_uris": ["http://lobe.localhost:3210/"],
        "cors_allowed_origins": ["http://lobe.localhost:3210"],
        "adopt_id": None,
    }


def hook_props(logto: LogtoStandIn) -> dict[str, Any]:
    return {
        **connection_props(logto),
        "project": "lobechat-logto",
        "stack": "dev",
        "resource_name": "lobechat-hook",
        "name": "LobeChat user sync",
        "url": "http://lobe.localhost:3210/api/webhooks/logto",
        "events": ["User.Data.Updated"],
        "headers": {},
        "enabled": True,
        "adopt_id": None,
    }


def run_in_fresh_interpreter(serialized: str, props: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    completed = subprocess.run(
        [sys.executable, "-c", LOADER],
        input=json.dumps({"provider": serialized, "props": props}),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("provider_class", PROVIDERS, ids=lambda c: c.__name__)
def test_serialized_provider_is_a_reference_to_its_module(provider_class: type) -> None:
    raw = base64.b64decode(serialize_provider(provider_class()))
    assert provider_class.__module__.encode() in raw
    # By reference, not by value: no bytecode of the provider's methods in the state.
    assert b"co_code" not in raw and len(raw) < 1000


@pytest.mark.parametrize("provider_class", PROVIDERS, ids=lambda c: c.__name__)
def test_serialized_provider_holds_no_live_objects(provider_class: type) -> None:
    raw = base64.b64decode(serialize_provider(provider_class()))
    for marker in LIVE_OBJECT_MARKERS:
        assert marker not in raw


def test_provider_used_against_logto_still_serializes_without_secret_or_token(logto: LogtoStandIn) -> None:
    provider = LogtoApplicationProvider()
    before = serialize_provider(provider)
    provider.create(app_props(logto))
    token = next(iter(transport_module._TOKEN_CACHE.values())).access_token
    after = serialize_provider(provider)
    raw = base64.b64decode(after)
    unchanged = after == before
    assert unchanged, "using the provider changed its serialized form"
    leaked = logto.m2m_client_secret.encode() in raw or token.encode() in raw
    assert not leaked, "the M2M secret or the access token is in the serialized provider (not shown)"


def test_serialized_application_provider_creates_in_a_fresh_process(logto: LogtoStandIn) -> None:
    serialized = serialize_provider(LogtoApplicationProvider())
    result = run_in_fresh_interpreter(serialized, app_props(logto))
    assert result["provider_class"] == "components.logto_resources.application.LogtoApplicationProvider"
    app = logto.state.applications[result["id"]]
    assert app["name"] == "LobeChat (from a serialized provider)"
    assert app["customData"]["managedBy"] == "lobechat-logto"


def test_serialized_webhook_provider_creates_in_a_fresh_process(logto: LogtoStandIn) -> None:
    serialized = serialize_provider(LogtoWebhookProvider())
    result = run_in_fresh_interpreter(serialized, hook_props(logto))
    assert logto.state.hooks[result["id"]]["config"]["url"] == "http://lobe.localhost:3210/api/webhooks/logto"


def bucket_props(s3: MotoS3) -> dict[str, Any]:
    return {
        "project": "lobechat-logto", "stack": "dev", "resource_name": "storage-bucket",
        "bucket": "lobechat-serialized", "region": "us-east-1", "s3_endpoint": s3.endpoint, "path_style": True,
        "access_key_id": "AKIASERIALIZED000001", "secret_access_key": "serialized-secret-0123456789",
        "cors_origins": ["http://lobe.localhost:3210"], "public_read": False, "public_prefix": "files",
        "adopt_existing": False,
    }


def test_bucket_provider_used_against_s3_still_serializes_without_client_or_key(s3: MotoS3) -> None:
    provider = S3BucketProvider()
    before = serialize_provider(provider)
    provider.create(bucket_props(s3))
    after = serialize_provider(provider)
    assert after == before, "using the provider changed its serialized form"
    assert b"serialized-secret" not in base64.b64decode(after)


def test_serialized_bucket_provider_creates_in_a_fresh_process(s3: MotoS3) -> None:
    import boto3

    result = run_in_fresh_interpreter(serialize_provider(S3BucketProvider()), bucket_props(s3))
    assert result["provider_class"] == "components.storage_resources.bucket.S3BucketProvider"
    client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                          aws_access_key_id="a", aws_secret_access_key="b")
    assert result["id"] == "lobechat-serialized"
    assert client.get_bucket_cors(Bucket="lobechat-serialized")["CORSRules"][0]["AllowedOrigins"] == ["http://lobe.localhost:3210"]
