"""The ``webhook`` section."""

from __future__ import annotations

from components.config.errors import Problems
from components.config.fields import parse_bool, read_object, unknown_fields
from components.config.sources import ConfigSource

KEYS = frozenset({"webhook"})


def read_webhook(source: ConfigSource, problems: Problems) -> bool:
    obj = read_object(source, problems, "webhook")
    unknown_fields(problems, "webhook", obj, {"enabled"})
    return parse_bool(obj.get("enabled"), "webhook.enabled", problems, True)
