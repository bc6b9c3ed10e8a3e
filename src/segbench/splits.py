"""K-fold cross-validation splits with nested training fractions (nnU-Net-style JSON).

Folds come from scikit-learn (``KFold`` or, when the dataset has groups, ``GroupKFold`` with
shuffling) over the sorted sample ids, so the same seed always gives byte-identical files. In
fold ``k`` the test part is fold ``k``; a ``val_fraction`` share of the remaining groups is the
validation part (``GroupShuffleSplit``); the rest is training. Training fractions are nested:
one permutation of the training ids per fold (seeded by ``(seed, fold)``), and fraction ``f``
takes its first ``ceil(f * n_train)`` ids, so 1/8 is inside 1/4 inside 1/2 inside the full set.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from segbench.paths import fmt_fraction


class SplitError(ValueError):
    """The dataset cannot be split as asked (e.g. more folds than samples)."""


def make_splits(
    ids: list[str],
    n_folds: int,
    fractions: list[float | str],
    seed: int = 0,
    val_fraction: float = 0.2,
    groups: list[str] | None = None,
    dataset: str = "",
) -> dict[str, Any]:
    """Build the split structure for one dataset.

    Args:
        ids: sample ids (any order; they are sorted first).
        n_folds: k of k-fold CV (>= 2).
        fractions: training fractions in (0, 1].
        seed: split seed.
        val_fraction: share of the non-test groups used for validation, in (0, 1).
        groups: optional group per id; a group never straddles train/val/test.
        dataset: name recorded in the file and used in error messages.

    Returns:
        ``{"dataset", "seed", "n_folds", "val_fraction", "folds": [{"fold", "train", "val",
        "test", "fractions": {"1": [...], ...}}]}``.

    Raises:
        SplitError: more folds than samples (or groups), or too few samples for a validation set.
    """
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit  # lazy: 1 s import

    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    ids_sorted = [str(ids[i]) for i in order]
    grp = [str(groups[i]) for i in order] if groups is not None else ids_sorted
    n_groups = len(set(grp))
    if n_folds < 2:
        raise SplitError(f"dataset {dataset!r}: folds must be >= 2, got {n_folds}")
    if n_folds > n_groups:
        what = "groups" if groups is not None else "images"
        raise SplitError(
            f"dataset {dataset!r}: folds = {n_folds} is more than its {n_groups} {what}"
        )
    fr_keys = sorted({fmt_fraction(f) for f in fractions}, key=float, reverse=True)
    kfold = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = []
    idx = np.arange(len(ids_sorted))
    grp_arr = np.asarray(grp)
    for k, (rest, test) in enumerate(kfold.split(idx, groups=grp_arr)):
        if len(set(grp_arr[rest])) < 2:
            raise SplitError(
                f"dataset {dataset!r}: fold {k} leaves fewer than 2 groups for train + val"
            )
        gss = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed * 1000 + k)
        tr_rel, va_rel = next(gss.split(rest, groups=grp_arr[rest]))
        train = sorted(ids_sorted[i] for i in rest[tr_rel])
        val = sorted(ids_sorted[i] for i in rest[va_rel])
        test_ids = sorted(ids_sorted[i] for i in test)
        perm = np.random.default_rng([seed, k]).permutation(len(train))
        shuffled = [train[i] for i in perm]
        subsets = {
            key: sorted(shuffled[: max(1, math.ceil(float(key) * len(train)))]) for key in fr_keys
        }
        folds.append(
            {"fold": k, "train": train, "val": val, "test": test_ids, "fractions": subsets}
        )
    return {
        "dataset": dataset,
        "seed": seed,
        "n_folds": n_folds,
        "val_fraction": val_fraction,
        "folds": folds,
    }


def dumps(splits: dict[str, Any]) -> str:
    """Canonical JSON text (sorted keys, fixed indent) so equal splits are byte-identical."""
    return json.dumps(splits, indent=1, sort_keys=True) + "\n"


def get_fold(splits: dict[str, Any], fold: int, fraction: str | float) -> dict[str, list[str]]:
    """Train (at ``fraction``), val and test ids of one fold.

    Raises:
        SplitError: the fold or fraction is not in the file (never falls back silently).
    """
    n = len(splits["folds"])
    if not 0 <= int(fold) < n:
        raise SplitError(f"dataset {splits['dataset']!r}: fold {fold} out of range 0..{n - 1}")
    entry = splits["folds"][int(fold)]
    key = fmt_fraction(fraction)
    if key not in entry["fractions"]:
        raise SplitError(
            f"dataset {splits['dataset']!r}: fraction {key} not in the split file "
            f"(has {', '.join(entry['fractions'])}); rerun the splits rule"
        )
    return {"train": entry["fractions"][key], "val": entry["val"], "test": entry["test"]}
