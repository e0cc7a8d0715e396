"""The Pulumi program: read the stage's config, build the platform, export its outputs."""

import pulumi

from components.config import ConfigError, PulumiConfigSource, load_stage_config
from components.platform import build_platform

try:
    stage = load_stage_config(PulumiConfigSource(), pulumi.get_stack())
except ConfigError as error:
    # RunError: Pulumi prints the message alone, without a Python traceback.
    raise pulumi.RunError(str(error)) from None

build_platform(stage).export()
