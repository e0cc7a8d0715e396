"""A minimal Management API caller for the stand-in's own tests (the project's real client is H2's)."""

from __future__ import annotations

import base64
from typing import Any

import requests

from .models import MANAGEMENT_API_RESOURCE


def fetch_token(endpoint: str, client_id: str, client_secret: str, *, scope: str = "all",
                resource: str = MANAGEMENT_API_RESOURCE, session: requests.Session | None = None) -> requests.Response:
    """``POST /oidc/token`` with client credentials by HTTP Basic."""
    caller = session or requests
    return caller.post(f"{endpoint}/oidc/token", auth=(client_id, client_secret), timeout=10,
                       data={"grant_type": "client_credentials", "resource": resource, "scope": scope})


def tamper_signature(token: str) -> str:
    """The same JWT with one byte of its signature flipped (header and claims untouched)."""
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    return f"{head}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


class StandInClient:
    """``requests.Session`` bound to one stand-in and one bearer token: ``client.get("/api/hooks")``."""

    def __init__(self, endpoint: str, client_id: str, client_secret: str) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()
        answer = fetch_token(endpoint, client_id, client_secret, session=self.session)
        answer.raise_for_status()
        self.token = answer.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Any call; ``path`` starts with ``/``."""
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.endpoint + path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        """POST ``path``."""
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        """PATCH ``path``."""
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        """DELETE ``path``."""
        return self.request("DELETE", path, **kwargs)
