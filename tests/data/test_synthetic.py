import numpy as np
import pytest

from segbench.data.synthetic import CLASS_NAMES, generate


@pytest.mark.parametrize("name", sorted(CLASS_NAMES))
def test_deterministic_and_in_range(name):
    a = generate(name, n=6, size=48, seed=5)
    b = generate(name, n=6, size=48, seed=5)
    c = generate(name, n=6, size=48, seed=6)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    images, masks, ids, meta = a
    assert images.shape == (6, 1, 48, 48) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert masks.max() < meta["num_classes"] == len(CLASS_NAMES[name])
    assert len(set(ids)) == 6


def test_regimes_class_proportions():
    _, m, _, _ = generate("synth_vessels", n=16, size=64, seed=0)
    fg = (m == 1).mean()
    assert 0.05 <= fg <= 0.12, fg  # thin curvilinear foreground, ~5-10 %
    _, m, _, _ = generate("synth_cells", n=16, size=64, seed=0)
    share = np.bincount(m.ravel(), minlength=5) / m.size
    assert share[3] < 0.02 and share[3] > 0  # rare small class (synapse)
    assert share.argmax() == 4  # intracellular dominates
    _, m, _, _ = generate("synth_organs", n=16, size=64, seed=0)
    share = np.bincount(m.ravel(), minlength=4) / m.size
    assert share[1] > 0.15 and 0 < share[3] < 0.02  # large organ, small rare lesion


def test_proportion_is_configurable():
    _, lo, _, _ = generate("synth_vessels", n=8, size=64, seed=0, foreground=0.04)
    _, hi, _, _ = generate("synth_vessels", n=8, size=64, seed=0, foreground=0.12)
    assert lo.mean() < hi.mean()


def test_intensity_overlap_makes_thresholding_imperfect():
    images, masks, _, _ = generate("synth_vessels", n=8, size=64, seed=0)
    x, y = images[:, 0].ravel(), masks.ravel()
    best = max(((x < t) == y).mean() for t in np.linspace(0, 1, 101))
    fg_share = y.mean()
    # A global threshold must not segment the vessels well: its IoU on the vessel class is low.
    t = np.quantile(x, fg_share)
    pred = x <= t
    iou = (pred & (y == 1)).sum() / (pred | (y == 1)).sum()
    assert iou < 0.6, iou
    assert best < 0.99


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"name": "nope"}, "unknown synthetic dataset"),
        ({"n": 1}, "n must be >= 2"),
        ({"size": 8}, "size must be >= 32"),
    ],
)
def test_bad_arguments(kwargs, msg):
    args = {"name": "synth_cells", **kwargs}
    with pytest.raises(ValueError, match=msg):
        generate(**args)


def test_unknown_generator_parameter_is_named():
    # Generators take their parameters as keyword arguments (registry style); a typo used to be
    # silently ignored and gave the default-parameter dataset.
    with pytest.raises(ValueError, match=r"'foregrund' \(value 0.1\); allowed: foreground"):
        generate("synth_vessels", n=2, size=32, foregrund=0.1)


def test_generators_registered_by_name():
    from segbench.data.synthetic import GENERATORS

    assert GENERATORS.names() == sorted(CLASS_NAMES)
    for name in GENERATORS:
        assert GENERATORS.get(name).name == name
