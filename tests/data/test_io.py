import numpy as np
import pytest

from segbench.data.io import DatasetFormatError, load_prepared, save_prepared

META = {"name": "t", "num_classes": 3, "class_names": ["a", "b", "c"], "in_channels": 1}


def _arrays(n=4, h=8):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, h, h), dtype=np.float32), rng.integers(0, 3, (n, h, h)).astype(
        np.uint8
    )


def test_roundtrip_with_groups(tmp_path):
    x, y = _arrays()
    save_prepared(
        tmp_path / "t.npz", x, y, ["a", "b", "c", "d"], META, groups=["g1", "g1", "g2", "g2"]
    )
    d = load_prepared(tmp_path / "t.npz")
    assert np.array_equal(d.images, x) and np.array_equal(d.masks, y)
    assert d.groups == ["g1", "g1", "g2", "g2"] and d.num_classes == 3
    assert list(d.indices(["c", "a"])) == [2, 0]
    side = (tmp_path / "t.json").read_text()
    assert "class_proportions" in side


def test_label_outside_classes_names_values(tmp_path):
    x, y = _arrays()
    y[0, 0, 0] = 7
    with pytest.raises(
        DatasetFormatError, match=r"label values \[7\] outside the declared classes 0..2"
    ):
        save_prepared(tmp_path / "t.npz", x, y, list("abcd"), META)
    assert not (tmp_path / "t.npz").exists()


def test_size_mismatch(tmp_path):
    x, y = _arrays()
    with pytest.raises(DatasetFormatError, match="size mismatch"):
        save_prepared(tmp_path / "t.npz", x, y[:, :4, :4], list("abcd"), META)


def test_corrupt_file_is_named(tmp_path):
    x, y = _arrays()
    save_prepared(tmp_path / "t.npz", x, y, list("abcd"), META)
    data = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFormatError, match="t.npz"):
        load_prepared(tmp_path / "t.npz")


def test_unknown_ids_are_reported(tmp_path):
    x, y = _arrays()
    save_prepared(tmp_path / "t.npz", x, y, list("abcd"), META)
    with pytest.raises(ValueError, match="no sample"):
        load_prepared(tmp_path / "t.npz").indices(["zz"])
