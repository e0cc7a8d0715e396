"""Fixtures shared across the suite: the Logto stand-in and its callers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.logto_api import clear_token_cache
from components.logto_api import transport as transport_module
from components.logto_resources import clear_listing_cache
from tests.logto_standin import LogtoStandIn
from tests.logto_standin.client import StandInClient
from tests.s3_server import MotoS3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sends_invalid_requests: the test sends requests the Logto OpenAPI document forbids on purpose "
        "(the stand-in's own negative tests), so the `logto` fixture does not require them to validate",
    )


@pytest.fixture
def logto(request: pytest.FixtureRequest) -> Iterator[LogtoStandIn]:
    """A fresh Logto stand-in on 127.0.0.1, with an empty token cache.

    Unless the test is marked ``sends_invalid_requests``, every request it received must validate
    against the recorded OpenAPI document: that holds the project's client to the real API surface.
    """
    clear_token_cache()
    clear_listing_cache()
    with LogtoStandIn() as standin:
        yield standin
        if request.node.get_closest_marker("sends_invalid_requests") is None:
            assert standin.openapi_violations == []
    clear_token_cache()
    clear_listing_cache()


@pytest.fixture
def standin_client(logto: LogtoStandIn) -> StandInClient:
    """A plain HTTP caller of the stand-in, authenticated as its seeded M2M application."""
    return StandInClient(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret)


@pytest.fixture
def no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries back off without sleeping, so fault tests stay fast."""
    monkeypatch.setattr(transport_module, "_sleep", lambda seconds: None)


@pytest.fixture
def s3() -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1, empty, stopped (and emptied) after the test."""

    with MotoS3() as server:
        yield server


@pytest.fixture
def no_s3_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries back off without sleeping, so S3 fault tests stay fast."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)
