"""The bridge's clock: UTC, whole seconds (what certificates, CRLs and the
database keep; a microsecond would make a stored time differ from a signed one)."""
from __future__ import annotations

from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
