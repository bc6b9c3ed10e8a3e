"""Fixtures of the training tests: a 3-fold split file of the tiny prepared dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from segbench.splits import dumps, make_splits


@pytest.fixture()
def split_file(tiny_prepared: Path) -> Path:
    from segbench.data.io import load_prepared

    d = load_prepared(tiny_prepared)
    path = tiny_prepared.parent / "splits.json"
    path.write_text(dumps(make_splits(d.ids, 3, [1], seed=0, dataset="tiny")))
    return path
