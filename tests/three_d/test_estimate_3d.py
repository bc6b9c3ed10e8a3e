"""`make estimate` on the tiny 3D study (.test/config_3d.yaml): a synthetic 3D dataset's facts
are its padded volume shape and its classes (it raised KeyError: 2D class names only)."""

from __future__ import annotations

from pathlib import Path

from segbench.config import load_study
from segbench.reporting.estimate import dataset_facts
from tests.conftest import REPO


def test_synthetic_volume_facts(tmp_path: Path):
    cfg = load_study(REPO / ".test" / "config_3d.yaml")
    facts = dataset_facts(cfg, "synth_vol3d", tmp_path)
    assert facts.shape == (16, 16, 16) and facts.n == 6 and facts.classes == 2
