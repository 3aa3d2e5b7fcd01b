"""ASGI entry point for uvicorn workers: the home comes from BRIDGECA_HOME
(``bridgeca serve`` sets it), the body limit from BRIDGECA_MAX_BODY_BYTES."""
from __future__ import annotations

import os

from .app import create_app_from_home

_home = os.environ.get("BRIDGECA_HOME")
if not _home:
    raise RuntimeError("BRIDGECA_HOME is not set: run 'bridgeca serve --home DIR', or set it to a home made by 'bridgeca init'")
_limit = os.environ.get("BRIDGECA_MAX_BODY_BYTES")
app = create_app_from_home(_home, max_body_bytes=int(_limit) if _limit else None)
