"""One listing of applications (per type) or hooks per provider process, shared by every marker lookup.

Before each create a provider looks for an object carrying its ownership marker (so a rerun after a
lost state or a lost response takes the object over instead of making a second one). Listing every
application or hook again for each create costs one request per object on a fresh stage (and more
pages as the tenant grows); here the listing is fetched once per connection and kind, then kept
true by this process's own writes:

- a successful create or update is written through (the answer Logto sent replaces the old copy),
  so the next lookup sees it;
- a delete, or a create whose outcome is unknown (lost response), drops the listing, and the lookup
  that resolves a lost response always lists afresh from Logto.

Why that is enough for "no duplicates": a stack's objects are only created by that stack's
``pulumi up``, and Pulumi holds a lock on the stack while it runs, so no other writer can add an
object with this stack's marker between the listing and a create. Everything that existed when the
listing was taken is in it; everything this process created since was written through.

Process-wide like the token cache (``components.logto_api.transport``): module-level state in an
importable module, never stored on a provider object, so it is never pickled into the state. The
key is the connection's token-cache key (endpoint, client id, resource, digest of the secret) plus
the kind, so two Logto tenants or credentials never share a listing.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from components.logto_api import ManagementApi

Listing = list[dict[str, Any]]


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    objects: Listing | None = None


_ENTRIES: dict[tuple[Any, ...], _Entry] = {}
_ENTRIES_LOCK = threading.Lock()


def _entry(api: ManagementApi, kind: str) -> _Entry:
    key = (api.connection.cache_key, kind)
    with _ENTRIES_LOCK:
        return _ENTRIES.setdefault(key, _Entry())


def listing(api: ManagementApi, kind: str, fetch: Callable[[], Listing], *, fresh: bool = False) -> Listing:
    """Every object of ``kind`` (copies), fetched once per process; ``fresh`` lists from Logto again.

    Concurrent lookups of the same kind wait for one fetch instead of each sending their own.
    """
    entry = _entry(api, kind)
    with entry.lock:
        if fresh or entry.objects is None:
            entry.objects = [copy.deepcopy(obj) for obj in fetch()]
        return [copy.deepcopy(obj) for obj in entry.objects]


def remember_written(api: ManagementApi, kind: str, obj: dict[str, Any]) -> None:
    """Put an object this process just created or updated into the listing (replacing the old copy).

    Without a listing held nothing is kept: the next fetch will have the object anyway.
    """
    entry = _entry(api, kind)
    with entry.lock:
        if entry.objects is not None:
            entry.objects = [o for o in entry.objects if o.get("id") != obj.get("id")]
            entry.objects.append(copy.deepcopy(obj))


def forget(api: ManagementApi, kind_prefix: str) -> None:
    """Drop every listing of this connection whose kind starts with ``kind_prefix``."""
    key_prefix = api.connection.cache_key
    with _ENTRIES_LOCK:
        entries = [e for (key, kind), e in _ENTRIES.items() if key == key_prefix and kind.startswith(kind_prefix)]
    for entry in entries:
        with entry.lock:
            entry.objects = None


def clear_listing_cache() -> None:
    """Forget every listing of this process (tests; a new provider process starts empty anyway)."""
    with _ENTRIES_LOCK:
        _ENTRIES.clear()
