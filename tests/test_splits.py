import json
from collections import Counter

import pytest

from segbench.splits import (
    SplitError,
    check_split_options,
    dumps,
    get_fold,
    make_splits,
    split_options,
)

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


# ----------------------------------------------------------------------------- paper 000 protocol
# Yokoi & Hotta (paper 000, Sec. 4.1, l.127): 20 Drosophila sections; "48 training patches
# (multiple random crops per image), 16 validation patches (each image divided into 16
# non-overlapping patches), and 16 test patches"; five-fold CV; 1/4 and 1/8 of the training data.
SECTIONS = [f"stack1_{s:02d}" for s in range(20)]
TILES = [f"{s}_r{r}c{c}" for s in SECTIONS for r in range(4) for c in range(4)]
CROPS = [f"{s}_crop{j}" for s in SECTIONS for j in range(3)]
DROS_IDS = TILES + CROPS
DROS_GROUPS = [i.rsplit("_", 1)[0] for i in DROS_IDS]
DROS_OPTS = {"test_groups": 1, "val_groups": 1, "train_samples": 48, "train_only": CROPS}


def _dros(seed: int = 0, ids: list[str] = DROS_IDS, groups: list[str] = DROS_GROUPS) -> dict:
    return make_splits(ids, 5, [1, 0.25, 0.125], seed=seed, val_fraction=0.125, groups=groups,
                       dataset="drosophila_vnc", **DROS_OPTS)


def test_paper000_counts_per_fold_and_section_rotation():
    s = _dros()
    g = dict(zip(DROS_IDS, DROS_GROUPS, strict=True))
    tests, vals = [], []
    for f in s["folds"]:
        tr, va, te = f["train"], f["val"], f["test"]
        assert (len(tr), len(va), len(te)) == (48, 16, 16)
        sec = [{g[i] for i in part} for part in (tr, va, te)]
        assert len(sec[1]) == 1 and len(sec[2]) == 1        # val / test = one whole section each
        assert sorted(va) == sorted(t for t in TILES if g[t] in sec[1])
        assert sorted(te) == sorted(t for t in TILES if g[t] in sec[2])
        assert not (sec[0] & sec[1]) and not (sec[0] & sec[2]) and not (sec[1] & sec[2])
        assert set(tr) <= set(CROPS)                         # training = random crops only
        per_section = Counter(g[i] for i in tr)
        assert len(per_section) == 18 and set(per_section.values()) == {2, 3}  # 48 = 12*3 + 6*2
        fr = f["fractions"]
        assert set(fr["0.125"]) <= set(fr["0.25"]) <= set(fr["1"]) == set(tr)
        assert (len(fr["0.25"]), len(fr["0.125"])) == (12, 6)
        tests.append(next(iter(sec[2])))
        vals.append(next(iter(sec[1])))
    # 5 distinct test sections, 5 distinct validation sections, no validation section is tested.
    assert len(set(tests)) == 5 and len(set(vals)) == 5 and not set(tests) & set(vals)
    assert s["val_fraction"] is None and s["test_groups"] == 1 and s["train_samples"] == 48


def test_paper000_protocol_byte_identical_and_seeded():
    a = dumps(_dros(0))
    b = dumps(_dros(0, list(reversed(DROS_IDS)), list(reversed(DROS_GROUPS))))
    assert a == b and a != dumps(_dros(1))


def test_group_count_folds_and_train_samples_errors():
    with pytest.raises(SplitError, match=r"5 folds x \(2 test \+ 2 val\) groups = 20 needs more than the 20 groups"):
        make_splits(TILES, 5, [1], groups=[i.rsplit("_", 1)[0] for i in TILES], test_groups=2, val_groups=2)
    with pytest.raises(SplitError, match="fewer than train_samples = 49"):
        make_splits(DROS_IDS, 5, [1], groups=DROS_GROUPS, test_groups=1, val_groups=1,
                    train_only=CROPS[:54], train_samples=49)
    with pytest.raises(SplitError, match="train_only ids"):
        make_splits(TILES, 5, [1], train_only=["nope"])
    with pytest.raises(SplitError, match="go together"):
        make_splits(TILES, 5, [1], test_groups=1)


def test_split_options_from_sidecar_and_spec():
    meta = {"name": "d", "recipe": {"split": {"test_groups": 1, "val_groups": 1, "train_samples": 48},
                                    "train_only": ["b", "a"]}}
    assert split_options(meta) == {"test_groups": 1, "val_groups": 1, "train_samples": 48,
                                   "train_only": ["b", "a"]}
    assert split_options(meta, {"split": {"train_samples": 24}})["train_samples"] == 24
    assert split_options({"name": "d", "recipe": {}}) == {}
    with pytest.raises(SplitError, match="unknown split option"):
        check_split_options({"test_group": 1}, "w")
    with pytest.raises(SplitError, match="must be a positive int"):
        check_split_options({"train_samples": 0}, "w")


def test_random_split_files_are_what_they_always_were():
    """The split files of random splits did not change when official splits came (issue 20):
    sha256 of the canonical text, recorded from the code before them (scikit-learn as pinned in
    requirements/lock.txt; a new scikit-learn that changes KFold shuffling fails here first)."""
    import hashlib

    groups = [f"child{i // 2}" for i in range(len(IDS))]
    files = (
        make_splits(IDS, 5, [1, 0.5, 0.25], seed=3, val_fraction=0.2, dataset="d"),
        make_splits(IDS, 3, [1, 0.125], seed=0, val_fraction=0.25, groups=groups, dataset="g"),
    )
    assert [hashlib.sha256(dumps(s).encode()).hexdigest() for s in files] == [
        "c1519c6ae0512787b95359bbd290a0437dd9144eda7fa39e3a2bbb4fc4b0c325",
        "06370952aae9c522b4c6fa5a2a1614961bea444dc86cc30912e47cf4124ca57a",
    ]
    assert all("source" not in s for s in files)
