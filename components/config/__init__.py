"""A stage's configuration: one typed, validated object built before any resource is declared.

- :mod:`~components.config.stage`: the typed config (``StageConfig`` and its parts) and the pinned
  defaults;
- :mod:`~components.config.sources`: where values are read from (``pulumi.Config`` or plain mappings);
- :mod:`~components.config.loader`: ``load_stage_config``, which orders the sections' checks;
- one module per config section beside its rules (:mod:`~components.config.lobechat`, ``logto``,
  ``postgres``, ``sso``, ``auth``, ``publish``, ``docker_host``, ``extra_env``, ``webhook``), with the
  checks they share in :mod:`~components.config.fields`;
- :mod:`~components.config.errors`: ``ConfigError``, one line per bad value, naming the full key.
"""

from components.config.errors import ConfigError, ConfigProblem, full_key, secret_set_command
from components.config.loader import TOP_LEVEL_KEYS, load_stage_config, split_image
from components.config.sources import ConfigSource, MappingConfigSource, PulumiConfigSource
from components.config.storage import S3_ENV_NAMES, STORAGE_IMAGE, StorageConfig, bucket_name_problem
from components.config.stage import (
    LOBECHAT_CONTAINER_PORT,
    LOBECHAT_IMAGES,
    LOGTO_DEFAULT_ADMIN_PORT,
    LOGTO_DEFAULT_PORT,
    LOGTO_IMAGE,
    NAMESPACE,
    POSTGRES_IMAGES,
    LobeChatUrls,
    LogtoConfig,
    Origin,
    PostgresConfig,
    PublishConfig,
    SsoProvider,
    StageConfig,
)

__all__ = [
    "LOBECHAT_CONTAINER_PORT",
    "LOBECHAT_IMAGES",
    "LOGTO_DEFAULT_ADMIN_PORT",
    "LOGTO_DEFAULT_PORT",
    "LOGTO_IMAGE",
    "NAMESPACE",
    "POSTGRES_IMAGES",
    "S3_ENV_NAMES",
    "STORAGE_IMAGE",
    "TOP_LEVEL_KEYS",
    "ConfigError",
    "ConfigProblem",
    "ConfigSource",
    "LobeChatUrls",
    "LogtoConfig",
    "MappingConfigSource",
    "Origin",
    "PostgresConfig",
    "PublishConfig",
    "PulumiConfigSource",
    "SsoProvider",
    "StageConfig",
    "StorageConfig",
    "bucket_name_problem",
    "full_key",
    "load_stage_config",
    "secret_set_command",
    "split_image",
]
