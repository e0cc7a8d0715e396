"""Inputs for calling the Logto dynamic providers directly, the way the engine passes them."""

from __future__ import annotations

from typing import Any

from components.logto_api import management_resource
from tests.logto_standin import LogtoStandIn


def connection_props(logto: LogtoStandIn) -> dict[str, Any]:
    """The ``logto_*`` inputs that connect a provider to the stand-in as its seeded M2M application."""
    return {
        "logto_endpoint": logto.endpoint,
        "logto_client_id": logto.m2m_client_id,
        "logto_client_secret": logto.m2m_client_secret,
        "logto_resource": management_resource(None),
    }
