"""The tests' S3 server (tests/s3_server.py) and the shared one other modules' stages use."""

from __future__ import annotations

import boto3

from tests import test_program_against_standin as standin_module
from tests.s3_server import MotoS3


def _buckets(endpoint: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    return [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_the_watchdog_stops_the_server_and_says_so():
    with MotoS3(lifetime=3600) as server:
        assert server.alive
        assert isinstance(_buckets(server.endpoint), list)
        server._expire()  # what the watchdog does when the lifetime is up
        assert not server.alive


def test_the_shared_server_is_started_again_once_its_watchdog_stopped_it(monkeypatch):
    # Outside test_program_against_standin's own module fixture: the shared server.
    monkeypatch.setattr(standin_module, "_S3", {})
    monkeypatch.setattr(standin_module, "_SHARED_S3", [])
    first = standin_module._s3_endpoint()
    assert standin_module._s3_endpoint() == first  # one server while it lives
    expired = standin_module._SHARED_S3[0]
    expired._expire()
    second = standin_module._s3_endpoint()
    assert standin_module._SHARED_S3[0] is not expired and standin_module._SHARED_S3[0].alive
    assert isinstance(_buckets(second), list)  # it answers (the stale endpoint refused every call)
    standin_module._SHARED_S3[0].__exit__(None, None, None)
