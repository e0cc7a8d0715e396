"""A Logto stand-in for tests: real HTTP on 127.0.0.1, in-memory state, fault injection.

``from tests.logto_standin import LogtoStandIn`` (interface in ``/work/plan.md``); ``WebhookReceiver``
records the signed deliveries it sends.
"""

from .faults import Fault, FaultInjector
from .models import ApiError, LogtoState
from .receiver import ReceivedDelivery, WebhookReceiver
from .server import LoggedRequest, LogtoStandIn
from .webhooks import SIGNATURE_HEADER, sign

__all__ = [
    "ApiError", "Fault", "FaultInjector", "LoggedRequest", "LogtoStandIn", "LogtoState",
    "ReceivedDelivery", "SIGNATURE_HEADER", "WebhookReceiver", "sign",
]
