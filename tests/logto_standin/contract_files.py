"""Where the recorded Logto exchanges live.

The recordings sit in ``shared/logto-contract`` beside the project's checkout (``/work/shared`` for a
checkout at ``/work/main``); ``LOGTO_CONTRACT_DIR`` overrides that, for machines that keep them elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

OPENAPI_FILE_NAME = "logto-openapi.json"


def contract_dir() -> Path:
    """The folder holding the recorded flows (``0*.json``) and ``logto-openapi.json``.

    The path is returned even when it does not exist, so callers can name it in their error or skip.
    """
    override = os.environ.get("LOGTO_CONTRACT_DIR")
    if override:
        return Path(override)
    # parents: [0] logto_standin, [1] tests, [2] the checkout, [3] its parent holding shared/
    return Path(__file__).resolve().parents[3] / "shared" / "logto-contract"


def openapi_spec_path() -> Path:
    """The OpenAPI document recorded from the real Logto server."""
    return contract_dir() / OPENAPI_FILE_NAME
