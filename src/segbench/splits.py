"""K-fold cross-validation splits with nested training fractions (nnU-Net-style JSON).

Default protocol. Folds come from scikit-learn (``KFold`` or, when the dataset has groups,
``GroupKFold`` with shuffling) over the sorted sample ids, so the same seed always gives
byte-identical files. In fold ``k`` the test part is fold ``k``; a ``val_fraction`` share of the
remaining groups is the validation part (``GroupShuffleSplit``); the rest is training. Training
fractions are nested: one permutation of the training ids per fold (seeded by ``(seed, fold)``),
and fraction ``f`` takes its first ``ceil(f * n_train)`` ids, so 1/8 is inside 1/4 inside 1/2
inside the full set.

Options for protocols k-fold over all samples cannot express (all off by default, and then the
file is byte-identical to what the default protocol always wrote):

- ``test_groups`` / ``val_groups`` (group-count folds): one seeded permutation ``P`` of the
  sorted groups; fold ``k`` tests on groups ``P[k t : (k+1) t]`` and validates on groups
  ``P[K t + k v : K t + (k+1) v]`` (``K`` folds, ``t`` / ``v`` groups per fold), so the test
  parts of the folds are disjoint, the validation parts are disjoint, and no validation group is
  ever a test group of another fold; every other group is training. ``val_fraction`` is then
  unused (``null`` in the file). Paper 000's Drosophila protocol: 16 validation and 16 test
  patches per fold = the 16 tiles of one section each (Yokoi & Hotta, 000 l.127).
- ``train_only`` (a pool of samples that may only be trained on, e.g. random crops the recipe
  materialised, ``recipe.train_only`` in the prepared sidecar): validation and test take only
  the other samples; training takes only pool samples of the training groups.
- ``train_samples`` ``n``: training keeps exactly ``n`` of its candidates, drawn round-robin over
  the training groups (groups and each group's members in a ``(seed, fold, 1)``-seeded order),
  so every training group gives ``floor(n / G)`` or ``ceil(n / G)`` samples (paper 000: "48
  training patches (multiple random crops per image)", 000 l.127). Fractions are then nested
  subsets of these ``n``.

Official partitions (``split: official`` for a dataset of a study, :func:`official_splits`): a
registry recipe that knows the dataset's published partition records it in the prepared
sidecar as ``recipe.official_split`` (``{part: [ids]}``, parts ``train``, ``test`` and
optionally ``val``; recipe ``volumes_3d``'s ``split_from_dir``, e.g. AMOS 2022 ``imagesTr`` ->
train, ``imagesVa`` -> test). The file then has one fold (``n_folds: 1``, ``"source":
"official"``): test = the official test part; val = the official ``val`` part if the partition
has one, else a seeded ``val_fraction`` share of the official training groups
(``GroupShuffleSplit``, seeded as fold 0 of a random split); train = the rest of the official
training part; fractions nested as above. Paper 003 on AMOS (l.711-718): "We train all the
models on the training set, and report performances on the validation set" - AMOS's validation
set is this file's test part, and the validation part (checkpoint selection, nnU-Net's own
validation share) comes out of the 200 training CTs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from segbench.paths import fmt_fraction

SPLIT_OPTIONS = ("test_groups", "val_groups", "train_samples")
"""Keys of a ``split`` option dict (registry recipe parameter ``split``, recorded in the prepared
sidecar's ``recipe.split``; see :func:`split_options`)."""


class SplitError(ValueError):
    """The dataset cannot be split as asked (e.g. more folds than samples)."""


SPLIT_SOURCES = ("random", "official")
"""Values of a study's ``datasets.<key>.split`` (schema enum): ``random`` (default, seeded k-fold,
:func:`make_splits`) or ``official`` (the partition the prepared sidecar records,
:func:`official_splits`)."""

OFFICIAL_KEY = "recipe.official_split"
"""Where the prepared sidecar records a dataset's official partition."""

OFFICIAL_PARTS = ("train", "val", "test")
"""Parts an official partition may name (``train`` and ``test`` required)."""


def check_split_options(options: Mapping[str, Any] | None, where: str) -> dict[str, int]:
    """Validate a ``split`` option dict (keys :data:`SPLIT_OPTIONS`, positive ints).

    ``test_groups`` and ``val_groups`` go together (both or neither).

    Raises:
        SplitError: naming ``where``, the key and the value.
    """
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise SplitError(f"{where}: split options must be a mapping, got {options!r}")
    unknown = sorted(set(options) - set(SPLIT_OPTIONS))
    if unknown:
        raise SplitError(f"{where}: unknown split option(s) {unknown}; allowed: {list(SPLIT_OPTIONS)}")
    out: dict[str, int] = {}
    for key, value in options.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SplitError(f"{where}: split option {key!r} must be a positive int, got {value!r}")
        out[key] = int(value)
    if ("test_groups" in out) != ("val_groups" in out):
        raise SplitError(f"{where}: split options 'test_groups' and 'val_groups' go together, got {dict(options)}")
    return out


def split_options(meta: Mapping[str, Any] | None, spec: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Split options of a prepared dataset: its sidecar's ``recipe.split`` and
    ``recipe.train_only``, with a study's ``spec["split"]`` (if the workflow passes one) taking
    precedence key by key.

    Returns:
        keyword arguments for :func:`make_splits` (``test_groups``, ``val_groups``,
        ``train_samples``, ``train_only``), only those that are set.
    """
    recipe = dict((meta or {}).get("recipe") or {})
    name = (meta or {}).get("name", "")
    opts: dict[str, Any] = dict(check_split_options(recipe.get("split"), f"dataset {name!r} sidecar"))
    opts.update(check_split_options((spec or {}).get("split"), f"dataset {name!r} study split"))
    if recipe.get("train_only"):
        opts["train_only"] = [str(i) for i in recipe["train_only"]]
    return opts


def _round_robin(members: dict[str, list[str]], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` samples taken one per group in turn (groups and members in ``rng`` order)."""
    order = [sorted(members)[i] for i in rng.permutation(len(members))]
    shuffled = {g: [members[g][i] for i in rng.permutation(len(members[g]))] for g in order}
    picked: list[str] = []
    depth = 0
    while len(picked) < n:
        for g in order:
            if depth < len(shuffled[g]):
                picked.append(shuffled[g][depth])
                if len(picked) == n:
                    break
        depth += 1
    return picked


def make_splits(
    ids: list[str],
    n_folds: int,
    fractions: list[float | str],
    seed: int = 0,
    val_fraction: float = 0.2,
    groups: list[str] | None = None,
    dataset: str = "",
    *,
    test_groups: int | None = None,
    val_groups: int | None = None,
    train_only: list[str] | None = None,
    train_samples: int | None = None,
) -> dict[str, Any]:
    """Build the split structure for one dataset.

    Args:
        ids: sample ids (any order; they are sorted first).
        n_folds: k of k-fold CV (>= 2).
        fractions: training fractions in (0, 1].
        seed: split seed.
        val_fraction: share of the non-test groups used for validation, in (0, 1) (unused with
            ``test_groups``).
        groups: optional group per id; a group never straddles train/val/test.
        dataset: name recorded in the file and used in error messages.
        test_groups: groups per fold in the test part (group-count folds, module docstring).
        val_groups: groups per fold in the validation part (with ``test_groups``).
        train_only: ids that may only be trained on (e.g. materialised random crops).
        train_samples: exact number of training samples per fold (round-robin over groups).

    Returns:
        ``{"dataset", "seed", "n_folds", "val_fraction", "folds": [{"fold", "train", "val",
        "test", "fractions": {"1": [...], ...}}]}``, plus ``test_groups``, ``val_groups``,
        ``train_only`` (pool size) and ``train_samples`` when those options are used.

    Raises:
        SplitError: more folds than samples (or groups), too few samples for a validation set,
            too few groups for the group-count folds or too few training candidates.
    """
    from sklearn.model_selection import GroupKFold, GroupShuffleSplit  # lazy: 1 s import

    order = np.argsort(np.asarray(ids, dtype=str), kind="stable")
    ids_sorted = [str(ids[i]) for i in order]
    grp = [str(groups[i]) for i in order] if groups is not None else ids_sorted
    pool = {str(i) for i in train_only or ()}
    unknown = sorted(pool - set(ids_sorted))
    if unknown:
        raise SplitError(f"dataset {dataset!r}: train_only ids {unknown[:5]} are not samples of the dataset")
    if (test_groups is None) != (val_groups is None):
        raise SplitError(f"dataset {dataset!r}: test_groups and val_groups go together")
    grp_arr = np.asarray(grp)
    eval_idx = np.asarray([i for i, s in enumerate(ids_sorted) if s not in pool], dtype=np.int64)
    if len(eval_idx) == 0:
        raise SplitError(f"dataset {dataset!r}: every sample is train_only; nothing to validate or test on")
    n_groups = len(set(grp_arr[eval_idx]))
    if n_folds < 2:
        raise SplitError(f"dataset {dataset!r}: folds must be >= 2, got {n_folds}")
    if n_folds > n_groups:
        what = "groups" if groups is not None else "images"
        raise SplitError(
            f"dataset {dataset!r}: folds = {n_folds} is more than its {n_groups} {what}"
        )
    fr_keys = sorted({fmt_fraction(f) for f in fractions}, key=float, reverse=True)

    # Held-out groups per fold: (test groups, val groups).
    held: list[tuple[set[str], set[str]]] = []
    if test_groups is None:
        kfold = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (rest_rel, test_rel) in enumerate(kfold.split(eval_idx, groups=grp_arr[eval_idx])):
            rest, test = eval_idx[rest_rel], eval_idx[test_rel]
            if len(set(grp_arr[rest])) < 2:
                raise SplitError(
                    f"dataset {dataset!r}: fold {k} leaves fewer than 2 groups for train + val"
                )
            gss = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed * 1000 + k)
            _, va_rel = next(gss.split(rest, groups=grp_arr[rest]))
            held.append((set(grp_arr[test]), set(grp_arr[rest[va_rel]])))
    else:
        assert val_groups is not None
        uniq = sorted(set(grp_arr[eval_idx]))
        need = n_folds * (test_groups + val_groups)
        if need >= len(uniq):
            raise SplitError(
                f"dataset {dataset!r}: {n_folds} folds x ({test_groups} test + {val_groups} val) "
                f"groups = {need} needs more than the {len(uniq)} groups (some must train)"
            )
        perm = [uniq[i] for i in np.random.default_rng(seed).permutation(len(uniq))]
        base = n_folds * test_groups
        for k in range(n_folds):
            held.append((
                set(perm[k * test_groups : (k + 1) * test_groups]),
                set(perm[base + k * val_groups : base + (k + 1) * val_groups]),
            ))

    eval_set = set(eval_idx.tolist())
    folds = []
    for k, (test_g, val_g) in enumerate(held):
        test_ids = sorted(ids_sorted[i] for i in eval_idx if grp[i] in test_g)
        val = sorted(ids_sorted[i] for i in eval_idx if grp[i] in val_g)
        cand = [
            i for i in range(len(ids_sorted))
            if grp[i] not in test_g and grp[i] not in val_g and ((i not in eval_set) == bool(pool))
        ]
        train = sorted(ids_sorted[i] for i in cand)
        if train_samples is not None:
            if train_samples > len(train):
                raise SplitError(
                    f"dataset {dataset!r}: fold {k} has {len(train)} training candidates, fewer "
                    f"than train_samples = {train_samples}"
                )
            members: dict[str, list[str]] = {}
            for i in cand:
                members.setdefault(grp[i], []).append(ids_sorted[i])
            train = sorted(_round_robin(members, train_samples, np.random.default_rng([seed, k, 1])))
        if not train:
            raise SplitError(f"dataset {dataset!r}: fold {k} has no training samples")
        perm_t = np.random.default_rng([seed, k]).permutation(len(train))
        shuffled = [train[i] for i in perm_t]
        subsets = {
            key: sorted(shuffled[: max(1, math.ceil(float(key) * len(train)))]) for key in fr_keys
        }
        folds.append(
            {"fold": k, "train": train, "val": val, "test": test_ids, "fractions": subsets}
        )
    out: dict[str, Any] = {
        "dataset": dataset,
        "seed": seed,
        "n_folds": n_folds,
        "val_fraction": val_fraction if test_groups is None else None,
        "folds": folds,
    }
    if test_groups is not None:
        out["test_groups"], out["val_groups"] = test_groups, val_groups
    if pool:
        out["train_only"] = len(pool)
    if train_samples is not None:
        out["train_samples"] = train_samples
    return out


def official_partition(meta: Mapping[str, Any] | None, where: str) -> dict[str, list[str]]:
    """The official partition a prepared dataset's sidecar records (``recipe.official_split``).

    Args:
        meta: the sidecar (``PreparedDataset.meta``).
        where: what the messages name first (dataset and sidecar file).

    Returns:
        ``{part: sorted ids}`` with parts from :data:`OFFICIAL_PARTS`.

    Raises:
        SplitError: naming ``where`` and the key, when the sidecar has no official partition, a
            part is unknown, ``train`` or ``test`` is missing or empty, or an id is in two parts.
    """
    recipe = (meta or {}).get("recipe") or {}
    official = recipe.get("official_split") if isinstance(recipe, Mapping) else None
    if not official:
        raise SplitError(
            f"{where}: split: official, but the sidecar has no key {OFFICIAL_KEY!r} (only a "
            "registry recipe that knows the dataset's published partition records it, e.g. "
            "volumes_3d with params.split_from_dir); use split: random for this dataset"
        )
    if not isinstance(official, Mapping):
        raise SplitError(f"{where}: {OFFICIAL_KEY} must map parts to id lists, got {official!r}")
    unknown = sorted(set(official) - set(OFFICIAL_PARTS))
    if unknown:
        raise SplitError(
            f"{where}: {OFFICIAL_KEY} has unknown part(s) {unknown}; allowed: {list(OFFICIAL_PARTS)}"
        )
    parts = {str(k): sorted(str(i) for i in v) for k, v in official.items()}
    for need in ("train", "test"):
        if not parts.get(need):
            raise SplitError(
                f"{where}: {OFFICIAL_KEY} has no {need!r} part (has {sorted(parts)}); an official "
                "split needs training and test cases"
            )
    seen: dict[str, str] = {}
    for part, members in parts.items():
        for i in members:
            if i in seen:
                raise SplitError(
                    f"{where}: {OFFICIAL_KEY}: id {i!r} is in both {seen[i]!r} and {part!r}"
                )
            seen[i] = part
    return parts


def official_splits(
    ids: list[str],
    official: Mapping[str, list[str]],
    fractions: list[float | str],
    seed: int = 0,
    val_fraction: float = 0.2,
    groups: list[str] | None = None,
    dataset: str = "",
) -> dict[str, Any]:
    """The split file of a dataset's official partition (module docstring, "Official partitions").

    Args:
        ids: sample ids of the prepared dataset (any order).
        official: ``{part: ids}`` from :func:`official_partition`; every id of ``ids`` is in
            exactly one part and every id of a part is a sample.
        fractions: training fractions in (0, 1].
        seed: split seed (validation share and fraction subsets).
        val_fraction: share of the official training groups used for validation, in (0, 1);
            unused (``null`` in the file) when the partition has a ``val`` part.
        groups: optional group per id; a group never straddles train / val.
        dataset: name recorded in the file and used in error messages.

    Returns:
        ``{"dataset", "seed", "n_folds": 1, "val_fraction", "source": "official", "folds":
        [{"fold": 0, "train", "val", "test", "fractions"}]}``.

    Raises:
        SplitError: ids outside the partition or partition ids that are not samples, or fewer
            than 2 training groups to draw a validation share from.
    """
    from sklearn.model_selection import GroupShuffleSplit  # lazy: 1 s import

    where = f"dataset {dataset!r}"
    ids_sorted = sorted(str(i) for i in ids)
    group_of = (
        {str(i): str(g) for i, g in zip(ids, groups, strict=True)}
        if groups is not None
        else {i: i for i in ids_sorted}
    )
    part_of = {str(i): part for part, members in official.items() for i in members}
    missing = [i for i in ids_sorted if i not in part_of]
    if missing:
        raise SplitError(
            f"{where}: {len(missing)} sample(s) are in no part of {OFFICIAL_KEY} "
            f"(e.g. {missing[:5]}); the official partition must cover the prepared dataset"
        )
    extra = sorted(set(part_of) - set(ids_sorted))
    if extra:
        raise SplitError(
            f"{where}: {OFFICIAL_KEY} names {len(extra)} id(s) that are not samples of the "
            f"prepared dataset (e.g. {extra[:5]})"
        )
    test_ids = sorted(i for i in ids_sorted if part_of[i] == "test")
    pool = [i for i in ids_sorted if part_of[i] == "train"]
    if "val" in official:
        val = sorted(i for i in ids_sorted if part_of[i] == "val")
        train = pool
        used_val_fraction: float | None = None
    else:
        grp = np.asarray([group_of[i] for i in pool])
        if len(set(grp.tolist())) < 2:
            raise SplitError(
                f"{where}: the official training part has fewer than 2 groups; no validation "
                "share can be drawn from it"
            )
        gss = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed * 1000)
        _, va_rel = next(gss.split(np.zeros(len(pool)), groups=grp))
        val_g = set(grp[va_rel].tolist())
        val = sorted(i for i in pool if group_of[i] in val_g)
        train = sorted(i for i in pool if group_of[i] not in val_g)
        used_val_fraction = val_fraction
    fr_keys = sorted({fmt_fraction(f) for f in fractions}, key=float, reverse=True)
    perm_t = np.random.default_rng([seed, 0]).permutation(len(train))
    shuffled = [train[i] for i in perm_t]
    subsets = {
        key: sorted(shuffled[: max(1, math.ceil(float(key) * len(train)))]) for key in fr_keys
    }
    return {
        "dataset": dataset,
        "seed": seed,
        "n_folds": 1,
        "val_fraction": used_val_fraction,
        "source": "official",
        "folds": [{"fold": 0, "train": train, "val": val, "test": test_ids, "fractions": subsets}],
    }


def prepared_splits(
    ids: list[str],
    groups: list[str] | None,
    meta: Mapping[str, Any] | None,
    spec: Mapping[str, Any],
    dataset: str,
    sidecar: str | os.PathLike[str] = "",
) -> dict[str, Any]:
    """The split file of a prepared dataset for the ``splits`` rule's spec
    (:func:`segbench.smk.split_params`: ``folds``, ``seed``, ``val_fraction``, ``fractions`` and,
    for ``datasets.<key>.split: official``, ``source: official``).

    Random (default): :func:`make_splits` with the sidecar's :func:`split_options`. Official:
    :func:`official_splits` over the sidecar's ``recipe.official_split``.

    Raises:
        SplitError: an unknown ``source``; ``official`` where the sidecar (named by ``sidecar``)
            has no official partition or also sets split options; whatever the split
            function raises.
    """
    source = spec.get("source", "random")
    if source not in SPLIT_SOURCES:
        raise SplitError(
            f"dataset {dataset!r}: split source {source!r} is unknown; allowed: {list(SPLIT_SOURCES)}"
        )
    if source == "random":
        return make_splits(
            ids,
            n_folds=int(spec["folds"]),
            fractions=spec["fractions"],
            seed=int(spec["seed"]),
            val_fraction=float(spec["val_fraction"]),
            groups=groups,
            dataset=dataset,
            **split_options(meta, spec),
        )
    where = f"dataset {dataset!r} ({sidecar})" if sidecar else f"dataset {dataset!r}"
    if split_options(meta, spec):
        raise SplitError(
            f"{where}: split: official cannot be combined with the split options "
            "recipe.split / recipe.train_only of the sidecar"
        )
    return official_splits(
        ids,
        official_partition(meta, where),
        fractions=spec["fractions"],
        seed=int(spec["seed"]),
        val_fraction=float(spec["val_fraction"]),
        groups=groups,
        dataset=dataset,
    )


def dumps(splits: dict[str, Any]) -> str:
    """Canonical JSON text (sorted keys, fixed indent) so equal splits are byte-identical."""
    return json.dumps(splits, indent=1, sort_keys=True) + "\n"


def load_splits(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a split file (``results/splits/{dataset}.json``, written by :func:`dumps`).

    Raises:
        SplitError: naming the path, when the file is missing, is not JSON or does not have the
            split structure; the message says how to recover (delete it and rerun: rule
            ``splits`` writes it again, identical for the same seed).
    """
    path = Path(path)
    recover = (
        f"Delete {path} and run the workflow again: rule splits writes it anew (the same "
        "seed gives the same file)"
    )
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SplitError(f"{path}: split file does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SplitError(f"{path}: cannot read the split file ({err}). {recover}.") from None
    try:
        splits = json.loads(text)
    except json.JSONDecodeError as err:
        raise SplitError(
            f"{path}: the split file is not valid JSON ({err}); it is damaged. {recover}."
        ) from None
    folds = splits.get("folds") if isinstance(splits, dict) else None
    keys = ("fold", "train", "val", "test", "fractions")
    if (
        not isinstance(folds, list)
        or not folds
        or not all(isinstance(f, dict) and all(k in f for k in keys) for f in folds)
        or "dataset" not in splits
    ):
        raise SplitError(
            f"{path}: not a split file (expected {{dataset, seed, n_folds, folds: [{{"
            f"{', '.join(keys)}}}, ...]}}). {recover}."
        )
    return splits


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
