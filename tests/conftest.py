import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BRIDGECA_SHARED", REPO.parent / "shared"))
PKITS = SHARED / "conformance" / "pkits"


@pytest.fixture(scope="session")
def pkits_dir() -> Path:
    if not (PKITS / "pkits.json").exists():
        pytest.skip(f"PKITS conformance data not found at {PKITS}")
    return PKITS
