"""TLS handshakes that fail before any request is sent, told apart from errors after sending.

On a first ``pulumi up`` with ACME the front (Caddy) takes Logto's host name before its certificate is
issued; until then Caddy answers every handshake for that name with the TLS alert ``internal_error``
(recorded against Caddy 2.11 in tests/test_logto_api_tls_real.py). No request byte has left this
machine at that point, so every call, creates included, may be repeated safely. urllib3 reports an SSL
error on reading a response the same way (``requests.exceptions.SSLError``), so only the OpenSSL
reasons that a handshake produces count here.
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
        if isinstance(current, ssl.SSLCertVerificationError):
            return "CERTIFICATE_VERIFY_FAILED"
        if isinstance(current, ssl.SSLError) and getattr(current, "reason", None) in HANDSHAKE_REASONS:
            return str(current.reason)
        for nested in (getattr(current, "reason", None), getattr(current, "__cause__", None), *getattr(current, "args", ())):
            if isinstance(nested, BaseException):
                pending.append(nested)
    return None
