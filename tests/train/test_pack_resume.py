"""A real SIGKILL of a concurrent pack (stacked or interleaved, with dropout: the shared global
generator's state is in every run's checkpoint), then a rerun: bit-identical test probabilities
and histories to the uninterrupted pack."""

from __future__ import annotations

import numpy as np
import pytest

from segbench.train import train_pack
from tests.train.helpers import kill_pack
from tests.train.packs import UNET, history, pack_specs, probs


@pytest.mark.parametrize("mode", ["stacked", "interleaved"])
@pytest.mark.parametrize("fault", ["step@3", "checkpoint_write@3"])
def test_concurrent_pack_resumes_bit_exactly(tiny_prepared, split_file, tmp_path, mode, fault):
    specs = pack_specs({**UNET, "dropout": 0.1}, pack_mode=mode)
    ref = [tmp_path / f"ref{k}" for k in range(3)]
    train_pack(specs, tiny_prepared, split_file, ref)
    outs = [tmp_path / f"killed{k}" for k in range(3)]
    kill_pack(specs, tiny_prepared, split_file, outs, fault)
    assert not any((o / "run.json").exists() for o in outs)  # a killed pack never looks complete
    results = train_pack(specs, tiny_prepared, split_file, outs)
    assert [r.resumed_from_epoch for r in results] == [2, 2, 2]
    for r, o in zip(ref, outs, strict=True):
        assert np.array_equal(probs(r), probs(o))
        for i in (1, 2):  # train loss, val mIoU: exact text
            assert [row[i] for row in history(r)] == [row[i] for row in history(o)]
