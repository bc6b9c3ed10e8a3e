"""Fixtures of the 3D tests (helpers live in helpers3d.py, a distinct module name)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
