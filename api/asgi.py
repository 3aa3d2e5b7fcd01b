"""ASGI entry point for uvicorn workers: the home comes from BRIDGECA_HOME."""
from __future__ import annotations

import os

from .app import create_app_from_home

_limit = os.environ.get("BRIDGECA_MAX_BODY_BYTES")
app = create_app_from_home(os.environ["BRIDGECA_HOME"], max_body_bytes=int(_limit) if _limit else None)
