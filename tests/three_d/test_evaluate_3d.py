"""segbench.evaluate on 3D volumes (issue 20): each volume cropped to its unpadded extent and
measured with the sidecar spacing (mm); the pooled block counts unpadded voxels only."""

from __future__ import annotations

import numpy as np

from segbench.data.io import PreparedDataset
from segbench.data.synthetic import generate
from segbench.evaluate import cropped_volumes, evaluate_probs, summarize_run
from segbench.metrics import image_metrics


def _data() -> PreparedDataset:
    images, masks, ids, meta = generate("synth_vol3d", n=3, size=16, seed=2)
    return PreparedDataset(images=images, masks=masks, ids=ids, meta=meta)


def _probs(data: PreparedDataset, shift: int) -> np.ndarray:
    """One-hot of each mask shifted by ``shift`` voxels along z inside the volume, and a wrong
    class (lesion, probability 1) everywhere in the padding."""
    probs = np.zeros((len(data.ids), 2, 16, 16, 16), dtype=np.float32)
    probs[:, 1] = 1.0
    for k, image_id in enumerate(data.ids):
        x, y, z = data.meta["recipe"]["volumes"][image_id]["shape"]
        m = np.roll(data.masks[k, :x, :y, :z], shift, axis=2)
        probs[k, :, :x, :y, :z] = np.stack([m == 0, m == 1]).astype(np.float32)
    return probs


def test_perfect_prediction_inside_the_volume_scores_one_whatever_the_padding():
    data = _data()
    per_image, calib, _ = evaluate_probs(
        _probs(data, 0), data.ids, data, {"surface": True, "include_background": False}
    )
    assert np.allclose(per_image["dice"], 1.0) and np.allclose(per_image["hd95"], 0.0)
    assert np.allclose(calib["ece"], 0.0, atol=1e-6)
    summary = summarize_run(per_image, calib, False, data.class_names)
    assert summary["mean_dice"] == 1.0 and summary["n_images"] == 3


def test_volumes_are_measured_in_mm_after_cropping():
    """Against segbench.metrics.image_metrics on the hand-cropped volume with the spacing
    [1, 1, 2] mm: a one-voxel shift along z costs 2 mm of HD, not 1."""
    data = _data()
    probs = _probs(data, 1)
    per_image, _, _ = evaluate_probs(probs, data.ids, data, {"surface": True})
    for k, image_id in enumerate(data.ids):
        info = data.meta["recipe"]["volumes"][image_id]
        x, y, z = info["shape"]
        want = image_metrics(
            probs[k, :, :x, :y, :z], data.masks[k, :x, :y, :z].astype(np.int64), 2,
            spacing=info["spacing"],
        )  # fmt: skip
        got = per_image[per_image["image"] == image_id].sort_values("class")
        for m in ("iou", "dice", "hd95", "hd", "nsd"):
            np.testing.assert_allclose(got[m], [r[m] for r in want], err_msg=m)
        assert got["hd"].iloc[1] == 2.0  # lesion: the z shift, at 2 mm per voxel
    ps, ts, spacings = cropped_volumes(probs, data.ids, data)  # what the pooled block reads
    for p, t, sp, image_id in zip(ps, ts, spacings, data.ids, strict=True):
        info = data.meta["recipe"]["volumes"][image_id]
        assert list(t.shape) == info["shape"] == list(p.shape[1:]) and sp == [1.0, 1.0, 2.0]
