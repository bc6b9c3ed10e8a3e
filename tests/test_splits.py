import json

import pytest

from segbench.splits import SplitError, dumps, get_fold, make_splits

IDS = [f"img{i:02d}" for i in range(30)]


def test_folds_disjoint_and_cover():
    s = make_splits(IDS, n_folds=5, fractions=[1, 0.5, 0.25, 0.125], seed=1)
    tests = [set(f["test"]) for f in s["folds"]]
    assert set().union(*tests) == set(IDS)
    assert sum(len(t) for t in tests) == len(IDS)  # test parts are disjoint
    for f in s["folds"]:
        tr, va, te = set(f["train"]), set(f["val"]), set(f["test"])
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert tr | va | te == set(IDS)


def test_fractions_nested():
    s = make_splits(IDS, n_folds=3, fractions=[1, 0.5, 0.25, 0.125], seed=0)
    for f in s["folds"]:
        fr = f["fractions"]
        assert (
            set(fr["0.125"]) <= set(fr["0.25"]) <= set(fr["0.5"]) <= set(fr["1"]) == set(f["train"])
        )
        assert len(fr["0.25"]) == -(-len(f["train"]) // 4)


def test_byte_identical_for_same_seed_and_differs_otherwise():
    a = dumps(make_splits(IDS, 5, [1, 0.25], seed=7, dataset="d"))
    b = dumps(make_splits(list(reversed(IDS)), 5, [0.25, 1], seed=7, dataset="d"))
    c = dumps(make_splits(IDS, 5, [1, 0.25], seed=8, dataset="d"))
    assert a == b
    assert a != c
    json.loads(a)


def test_groups_never_straddle_parts():
    groups = [f"child{i // 2}" for i in range(len(IDS))]  # two eyes per child
    s = make_splits(IDS, n_folds=5, fractions=[1], seed=0, groups=groups)
    g = dict(zip(IDS, groups, strict=True))
    for f in s["folds"]:
        parts = [{g[i] for i in f[k]} for k in ("train", "val", "test")]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])


def test_more_folds_than_images_is_an_error():
    with pytest.raises(SplitError, match="folds = 6 is more than its 5 images"):
        make_splits(IDS[:5], n_folds=6, fractions=[1])


def test_fold_out_of_range_and_unknown_fraction_raise():
    s = make_splits(IDS, n_folds=3, fractions=[1], seed=0, dataset="d")
    with pytest.raises(SplitError, match="fold 3 out of range"):
        get_fold(s, 3, 1)
    with pytest.raises(SplitError, match="fraction 0.5 not in the split file"):
        get_fold(s, 0, 0.5)
