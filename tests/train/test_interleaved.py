"""Interleaved packing (runs take turns step by step, each on its own CUDA stream on a GPU).

On CPU each run's arithmetic is that of the run trained alone, so without dropout the outputs
are bit-identical to the sequential pack; with dropout the pack is reproducible and resumes
bit-exactly after a real SIGKILL.
"""

from __future__ import annotations

import numpy as np
import pytest

from segbench.train import train_pack
from tests.train.test_stacked import PACK_CASE_IDS, PACK_CASES, UNET, _probs, _specs


@pytest.mark.parametrize("model_cfg,training", PACK_CASES, ids=PACK_CASE_IDS)
def test_interleaved_pack_equals_sequential_bit_for_bit(
    tiny_prepared, split_file, tmp_path, model_cfg, training
):
    seq = _specs(model_cfg, pack_mode="sequential", **training)
    itl = _specs(model_cfg, pack_mode="interleaved", **training)
    r_seq = train_pack(seq, tiny_prepared, split_file, [tmp_path / f"seq{k}" for k in range(3)])
    r_itl = train_pack(itl, tiny_prepared, split_file, [tmp_path / f"itl{k}" for k in range(3)])
    for k in range(3):
        assert (r_seq[k].epochs_run, r_seq[k].best_epoch, r_seq[k].best_val) == (
            r_itl[k].epochs_run,
            r_itl[k].best_epoch,
            r_itl[k].best_val,
        )
        assert np.array_equal(_probs(tmp_path / f"seq{k}"), _probs(tmp_path / f"itl{k}"))
        col = lambda p, i: [ln.split(",")[i] for ln in (p / "history.csv").read_text().split()]  # noqa: E731
        for i in (1, 2, 3):  # train loss, val mIoU, lr: exact text
            assert col(tmp_path / f"seq{k}", i) == col(tmp_path / f"itl{k}", i)


def test_interleaved_pack_is_reproducible_with_dropout(tiny_prepared, split_file, tmp_path):
    specs = _specs({**UNET, "dropout": 0.2}, pack_mode="interleaved")
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"a{k}" for k in range(3)])
    train_pack(specs, tiny_prepared, split_file, [tmp_path / f"b{k}" for k in range(3)])
    for k in range(3):
        assert np.array_equal(_probs(tmp_path / f"a{k}"), _probs(tmp_path / f"b{k}"))
