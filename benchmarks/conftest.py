"""Let the benchmarks import the test PKI builder (``tests.pkibuilder``).
``bench_*.py`` files are collected through pyproject's ``python_files``."""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
