"""Fixtures of the training tests: a 3-fold split file of the tiny prepared dataset, and each
pack case trained beside the sequential pack."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from segbench.splits import dumps, make_splits
from tests.train.packs import PACK_CASE_IDS, PACK_CASES, Pack, train_beside_sequential


@pytest.fixture()
def split_file(tiny_prepared: Path) -> Path:
    from segbench.data.io import load_prepared

    d = load_prepared(tiny_prepared)
    path = tiny_prepared.parent / "splits.json"
    path.write_text(dumps(make_splits(d.ids, 3, [1], seed=0, dataset="tiny")))
    return path


@pytest.fixture(params=PACK_CASES, ids=PACK_CASE_IDS)
def pack_beside_sequential(
    request: pytest.FixtureRequest, tiny_prepared: Path, split_file: Path, tmp_path: Path
) -> Callable[[str], tuple[Pack, Pack]]:
    """``train(mode)``: one of ``PACK_CASES`` (tests/train/packs.py) trained as a sequential
    pack and as a ``mode`` pack; returns both :class:`~tests.train.packs.Pack`."""
    model_cfg, training = request.param

    def train(mode: str) -> tuple[Pack, Pack]:
        return train_beside_sequential(
            tiny_prepared, split_file, tmp_path, model_cfg, training, mode
        )

    return train
