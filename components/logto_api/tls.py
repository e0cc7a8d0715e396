"""TLS handshakes that fail before any request is sent, told apart from errors after sending.

On a first ``pulumi up`` with ACME the front (Caddy) takes Logto's host name before its certificate is
issued; until then Caddy answers every handshake for that name with the TLS alert ``internal_error``
(recorded against Caddy 2.11 in tests/test_logto_api_tls_real.py). No request byte has left this
machine at that point, so every call, creates included, may be repeated safely. urllib3 reports an SSL
error on reading a response the same way (``requests.exceptions.SSLError``), so an error counts here
only when OpenSSL raised it in the handshake itself (``do_handshake``) with one of the reasons below.

Only the reasons in `TRANSIENT_REASONS` are worth waiting for (the certificate is on its way); the
others (an untrusted CA, plain HTTP on the port) stay as they are, so the client retries them a few
times and fails fast.
"""

from __future__ import annotations

import ssl

import requests

HANDSHAKE_REASONS = frozenset({
    "TLSV1_ALERT_INTERNAL_ERROR",  # Caddy (and most servers) with no certificate for the name yet
    "TLSV1_ALERT_UNRECOGNIZED_NAME",
    "SSLV3_ALERT_HANDSHAKE_FAILURE",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "WRONG_VERSION_NUMBER",  # plain HTTP on the port (the front not switched to HTTPS yet)
    "CERTIFICATE_VERIFY_FAILED",  # e.g. a placeholder or staging certificate before the real one
    "UNSUPPORTED_PROTOCOL",
})

TRANSIENT_REASONS = frozenset({"TLSV1_ALERT_INTERNAL_ERROR", "TLSV1_ALERT_UNRECOGNIZED_NAME"})
"""What a front sends while it has no certificate for the name yet."""

HINT = (
    "The TLS handshake failed before any request was sent. On a first `pulumi up` with ACME the front may "
    "still be obtaining its certificate (`docker logs <prefix>-caddy`): run `pulumi up` again once it has "
    "one; nothing is duplicated. With `front.tls: internal` or a private CA, the machine running Pulumi "
    "must trust that CA (REQUESTS_CA_BUNDLE=<its root certificate>)."
)


def handshake_failure(exc: BaseException) -> str | None:
    """OpenSSL's reason (e.g. ``TLSV1_ALERT_INTERNAL_ERROR``) when ``exc`` is a failed TLS handshake."""
    if not isinstance(exc, requests.exceptions.SSLError):
        return None
    seen: set[int] = set()
    pending: list[object] = [exc]
    while pending:  # requests' SSLError > urllib3's MaxRetryError > urllib3's SSLError > ssl.SSLError
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            if not _raised_in_handshake(current):
                return None  # e.g. an alert while reading the response: the request may have been sent
            if isinstance(current, ssl.SSLCertVerificationError):
                return "CERTIFICATE_VERIFY_FAILED"
            reason = getattr(current, "reason", None)
            return str(reason) if reason in HANDSHAKE_REASONS else None
        for nested in (getattr(current, "reason", None), getattr(current, "__cause__", None), *getattr(current, "args", ())):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return None


def is_transient(reason: str | None) -> bool:
    """True for a handshake failure that goes away once the front has its certificate."""
    return reason in TRANSIENT_REASONS


def _raised_in_handshake(error: BaseException) -> bool:
    """True when the innermost Python frame of ``error``'s traceback is ``SSLSocket.do_handshake``."""
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    return frame.tb_frame.f_code.co_name == "do_handshake"
