"""ASGI entry point for uvicorn workers: the home comes from BRIDGECA_HOME
(``bridgeca serve`` sets it). Every other setting, the body limit included,
is the home's BridgeSettings (config.json, overridden by BRIDGECA_*), read
once when the bridge is opened."""
from __future__ import annotations

import os

from .app import create_app_from_home

_home = os.environ.get("BRIDGECA_HOME")
if not _home:
    raise RuntimeError("BRIDGECA_HOME is not set: run 'bridgeca serve --home DIR', or set it to a home made by 'bridgeca init'")
app = create_app_from_home(_home)
