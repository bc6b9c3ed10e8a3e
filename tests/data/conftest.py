"""Fixtures of the data tests (helpers live in datahelpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datahelpers import http_server  # noqa: E402,F401  (fixture re-exported for pytest)
