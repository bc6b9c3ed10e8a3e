"""Interleaved packing (runs take turns step by step, each on its own CUDA stream on a GPU).

On CPU each run's arithmetic is that of the run trained alone, so without dropout the outputs
are bit-identical to the sequential pack; with dropout the pack is reproducible and resumes
bit-exactly after a real SIGKILL.
"""

from __future__ import annotations

import numpy as np

from segbench.train import train_pack
from tests.train.packs import UNET, history, outcomes, pack_specs, probs


def test_interleaved_pack_equals_sequential_bit_for_bit(pack_beside_sequential):
    """Each case of ``PACK_CASES`` (tests/train/packs.py), interleaved vs sequential."""
    seq, itl = pack_beside_sequential("interleaved")
    same = ("epochs_run", "best_epoch", "best_val")
    assert outcomes(seq.results, same) == outcomes(itl.results, same)
    for a, b in zip(seq.dirs, itl.dirs, strict=True):
        assert np.array_equal(probs(a), probs(b))
        for i in (1, 2, 3):  # train loss, val mIoU, lr: exact text
            assert [row[i] for row in history(a)] == [row[i] for row in history(b)]


def test_interleaved_pack_is_reproducible_with_dropout(tiny_prepared, split_file, tmp_path):
    specs = pack_specs({**UNET, "dropout": 0.2}, pack_mode="interleaved")
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"a{k}" for k in range(3)])
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"b{k}" for k in range(3)])
    for k in range(3):
        assert np.array_equal(probs(tmp_path / f"a{k}"), probs(tmp_path / f"b{k}"))
