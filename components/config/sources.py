"""Where a stage's configuration is read from: ``pulumi.Config`` in the program, plain mappings in tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pulumi

from components.config.stage import NAMESPACE


class ConfigSource(Protocol):
    """What the loader reads: ``pulumi.Config`` through :class:`PulumiConfigSource`, or a plain mapping."""

    def get(self, key: str) -> str | None:
        """A plain value as a string, or None when unset."""

    def get_object(self, key: str) -> Any:
        """A structured (YAML/JSON) value, or None when unset."""

    def get_secret(self, key: str) -> pulumi.Input[str] | None:
        """A secret value (an Output under Pulumi), or None when unset."""

    def peek_secret(self, key: str) -> str | None:
        """A secret's plain text, only to check its shape before anything is declared; never kept."""

    def get_secret_object(self, key: str) -> Mapping[str, pulumi.Input[str]] | None:
        """A secret mapping: names in the clear, each value secret; None when unset."""

    def keys(self) -> set[str]:
        """Every key set in the namespace (without the ``lobechat-logto:`` prefix)."""

    def is_secret(self, key: str) -> bool:
        """True when ``key`` was set as a secret (``pulumi config set --secret``): encrypted in the stack file."""

    def peek_secret_object(self, key: str) -> Any:
        """A secret structured value as plain data, only to check its shape and types; never kept."""


class PulumiConfigSource:
    """Adapts ``pulumi.Config(NAMESPACE)`` to :class:`ConfigSource`."""

    def __init__(self, config: pulumi.Config | None = None) -> None:
        self._config = config or pulumi.Config(NAMESPACE)

    def get(self, key: str) -> str | None:
        return self._config.get(key)

    def get_object(self, key: str) -> Any:
        return self._config.get_object(key)

    def get_secret(self, key: str) -> pulumi.Input[str] | None:
        return self._config.get_secret(key)

    def peek_secret(self, key: str) -> str | None:
        return self._config.get(key)

    def get_secret_object(self, key: str) -> Mapping[str, pulumi.Input[str]] | None:
        # Names must be checked before any resource exists, so read the mapping here and wrap each
        # value as a secret at once; the plain values never leave this method.
        raw = self._config.get_object(key)
        if raw is None:
            return None
        if not isinstance(raw, dict):
            return {"": pulumi.Output.secret(str(raw))}  # shape error reported by the loader
        return {str(k): pulumi.Output.secret(scalar_text(v)) for k, v in raw.items()}

    def is_secret(self, key: str) -> bool:
        # The language host hands the engine's list of secure keys to the SDK (PULUMI_CONFIG_SECRET_KEYS
        # -> set_all_config); a key inside an object set with --secret --path marks the whole key.
        from pulumi.runtime import config as runtime_config

        return runtime_config.is_config_secret(f"{NAMESPACE}:{key}")

    def peek_secret_object(self, key: str) -> Any:
        return self._config.get_object(key)

    def keys(self) -> set[str]:
        from pulumi.runtime import config as runtime_config

        names = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
        prefix = f"{NAMESPACE}:"
        return {name[len(prefix) :] for name in names if name.startswith(prefix)}


class MappingConfigSource:
    """A :class:`ConfigSource` over plain dicts (tests, tooling): ``values`` and ``secrets`` by key.

    Like Pulumi, a secret key may be read as plain and a plain key as secret; only ``is_secret``
    tells them apart (a key in ``values`` is one set without ``--secret``).
    """

    def __init__(self, values: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None) -> None:
        self._values = dict(values or {})
        self._secrets = dict(secrets or {})

    def get(self, key: str) -> str | None:
        value = self._values.get(key)
        return None if value is None else scalar_text(value)

    def get_object(self, key: str) -> Any:
        return self._values.get(key)

    def get_secret(self, key: str) -> pulumi.Input[str] | None:
        value = self._secrets.get(key, self._values.get(key))
        return None if value is None else scalar_text(value)

    def peek_secret(self, key: str) -> str | None:
        value = self.get_secret(key)
        return None if value is None else str(value)

    def get_secret_object(self, key: str) -> Mapping[str, pulumi.Input[str]] | None:
        value = self._secrets.get(key, self._values.get(key))
        if value is None:
            return None
        if not isinstance(value, Mapping):
            return {"": scalar_text(value)}
        return {str(k): scalar_text(v) for k, v in value.items()}

    def keys(self) -> set[str]:
        return {k for k, v in {**self._values, **self._secrets}.items() if v is not None}

    def is_secret(self, key: str) -> bool:
        return self._secrets.get(key) is not None

    def peek_secret_object(self, key: str) -> Any:
        return self._secrets.get(key, self._values.get(key))


def scalar_text(value: Any) -> str:
    """A scalar config value as the text Pulumi would store (booleans lower-case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
