"""Outgoing webhook deliveries of the stand-in, signed the way Logto signs them.

Header ``logto-signature-sha-256`` = lower-case hex HMAC-SHA256 of the raw body keyed with the
hook's signing key; the body is compact JSON (``JSON.stringify``). The other headers and their order
copy the delivery recorded in ``webhook-received.jsonl``.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

SIGNATURE_HEADER = "logto-signature-sha-256"
USER_AGENT = "Logto (https://logto.io/)"


def sign(signing_key: str, raw_body: bytes) -> str:
    """The value of ``logto-signature-sha-256`` for ``raw_body``."""
    return hmac.new(signing_key.encode(), raw_body, hashlib.sha256).hexdigest()


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Compact JSON as ``JSON.stringify`` writes it (no spaces, non-ASCII kept)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one delivery: the receiver's status and body, or the error that stopped it."""

    status: int | None
    response_body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


def deliver(url: str, config_headers: dict[str, str], payload: dict[str, Any], signing_key: str,
            *, timeout: float = 10.0) -> DeliveryResult:
    """POST one signed delivery; never raises (a failure is reported in the result, as Logto logs it)."""
    raw = encode_payload(payload)
    try:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("unsupported URL")
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    except ValueError:
        return DeliveryResult(None, error="TypeError: Invalid URL")
    headers = {SIGNATURE_HEADER: sign(signing_key, raw), "user-agent": USER_AGENT}
    headers.update(config_headers)
    headers.update({
        "content-type": "application/json", "accept": "*/*", "accept-language": "*",
        "sec-fetch-mode": "cors", "accept-encoding": "gzip, deflate", "connection": "keep-alive",
    })
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request("POST", target, body=raw, headers=headers)
        response = connection.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException):
        return DeliveryResult(None, error="TypeError: fetch failed")
    finally:
        connection.close()
    try:
        body: Any = json.loads(data) if data else None
    except ValueError:
        body = data.decode("utf-8", "replace")
    if 200 <= response.status < 300:
        return DeliveryResult(response.status, body)
    return DeliveryResult(
        response.status, body,
        error=f"HTTPError: Request failed with status code {response.status} {response.reason}: POST {url}",
    )
