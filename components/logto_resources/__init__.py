"""Pulumi dynamic resources for Logto: LobeChat's application, its named secrets and its webhook.

Each resource has its own type token (``pulumi-python:dynamic/logto:<Name>``) and a stateless
provider class in this importable package, so the serialized provider in the state is a reference to
this module, not a copy of its code, and carries no session, token or secret.
"""

from __future__ import annotations

from .application import LogtoApplication, LogtoApplicationProvider
from .application_secret import LogtoApplicationSecret, LogtoApplicationSecretProvider
from .connection import MANAGED_BY, LogtoConnectionArgs
from .listing_cache import clear_listing_cache
from .management_credential import LogtoManagementCredential, LogtoManagementCredentialProvider
from .secret_lease import LobeChatSecretLease, LobeChatSecretLeaseProvider
from .webhook import MARKER_HEADER, LogtoWebhook, LogtoWebhookProvider

__all__ = [
    "MANAGED_BY",
    "MARKER_HEADER",
    "LogtoApplication",
    "LogtoApplicationProvider",
    "LogtoApplicationSecret",
    "LogtoApplicationSecretProvider",
    "LobeChatSecretLease",
    "LogtoManagementCredential",
    "LogtoManagementCredentialProvider",
    "LobeChatSecretLeaseProvider",
    "LogtoConnectionArgs",
    "LogtoWebhook",
    "LogtoWebhookProvider",
    "clear_listing_cache",
]
