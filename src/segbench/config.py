"""Study configuration: load, validate (JSON Schema + registry cross-checks), expand the grid.

This is the one place where config dicts become objects. Snakemake validates with
``snakemake.utils.validate`` against the same schema, then calls :func:`check_study`.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import json
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from segbench.paths import RUN_DIR, fmt_fraction
from segbench.runspec import Run, RunSpec, split_name
from segbench.schema import (
    SCHEMA_PATH,
    ConfigError,
    DefaultFillingValidator,
    first_error,
    load_schema,
)

__all__ = [
    "SCHEMA_PATH",
    "ConfigError",
    "Run",
    "RunSpec",
    "SearchConfig",
    "VariantConfig",
    "base_loss",
    "check_configfiles",
    "check_device",
    "check_registry",
    "check_study",
    "curve_runs",
    "dataset_include_background",
    "exit_on_error",
    "expand_runs",
    "load_schema",
    "load_study",
    "run_spec",
    "search_configs",
    "validate_schema",
    "variant_configs",
]

_Validator = DefaultFillingValidator


CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
"""What a study file may be called: a word after ``--configfile`` that ends otherwise is a
target Snakemake has read as one more config file (``--configfile F TARGET``)."""

_TARGET_HINT = (
    "Snakemake reads every word after --configfile as a config file: end the list of config "
    "files with '--' before any target (snakemake --configfile F -- TARGET)"
)


def _duplicate_key(node: yaml.Node, path: str, text_path: Path, seen: set[int]) -> None:
    """Raise ConfigError at the first key given twice in one mapping of the composed YAML
    ``node`` (PyYAML and Snakemake's loader keep the last one silently), naming the dotted key
    and both lines. Merge keys (``<<``) are left to YAML: an explicit key overrides a merged
    one by design."""
    if id(node) in seen:  # an alias: already walked
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else None
            at = f"{path}.{key}" if path else str(key)
            line = key_node.start_mark.line + 1
            if key is not None and key in lines:
                raise ConfigError(
                    f"{text_path}: duplicate key '{at}' at lines {lines[key]} and {line} "
                    "(YAML would keep only the second silently); keep one of them"
                )
            if key is not None:
                lines[key] = line
            _duplicate_key(value_node, at, text_path, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _duplicate_key(item, f"{path}[{i}]", text_path, seen)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file strictly.

    Raises:
        ConfigError: naming the file and line for malformed YAML, the key and both lines for a
            key given twice in one mapping, and the file for a top level that is not a mapping
            or a YTE template (``__use_yte__: true``: its embedded Python would run while the
            file is read; segbench studies are plain YAML).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except (IsADirectoryError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not a readable text config file ({err})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            _duplicate_key(node, "", path, set())
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: malformed YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    if "__use_yte__" in data:
        raise ConfigError(
            f"{path}: __use_yte__: {data['__use_yte__']!r}: YTE templates are refused (Snakemake "
            "would run their embedded Python while reading the file); write the study as plain "
            "YAML"
        )
    return data


def check_configfiles(paths: list[str] | tuple[str, ...]) -> None:
    """The workflow's first check (``Snakefile``): every config file Snakemake was given is a
    ``.yaml`` / ``.yml`` / ``.json`` file that :func:`load_yaml` reads strictly (Snakemake's own
    loader accepts duplicate keys and runs YTE templates).

    Raises:
        ConfigError: naming the file (and key and lines), with the ``--`` hint for a word that
            is no config file.
    """
    for name in paths:
        path = Path(name)
        if path.suffix.lower() not in CONFIG_SUFFIXES:
            raise ConfigError(
                f"{path}: not a config file (a config file ends in "
                f"{', '.join(CONFIG_SUFFIXES)}); {_TARGET_HINT}"
            )
        if not path.is_file():
            raise ConfigError(f"{path}: config file does not exist; {_TARGET_HINT}")
        load_yaml(path)


def exit_on_error(check: Callable[..., None], *args: Any) -> None:
    """``check(*args)``; on a :class:`ConfigError` print ``segbench config error: <message>``
    to stderr and exit with status 1 (the Snakefile's checks: one line, no traceback)."""
    import sys

    try:
        check(*args)
    except ConfigError as err:
        print(f"segbench config error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


def check_device(config: dict[str, Any], where: str = "config") -> None:
    """``training.device: cuda`` needs a CUDA device on this machine (the workflow checks it
    before the first job when jobs run locally; ``python -m segbench.config`` always).

    Raises:
        ConfigError: naming the key and what to use instead.
    """
    if config.get("training", {}).get("device") != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(
            f"{where}: training.device: 'cuda', but torch {torch.__version__} finds no CUDA "
            f"device on this machine (torch built for CUDA {torch.version.cuda}); use "
            "device: auto (cuda when available, else cpu) or cpu, or run on a GPU machine"
        )


def validate_schema(config: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Validate against the JSON schema and fill defaults (in place). Raises ConfigError.

    The same default-filling validator resolves a hand-built spec's partial ``training``
    (:func:`segbench.runspec.resolve_training`), so both give the same resolved values.
    """
    for section in ("training", "evaluation", "resources", "report"):
        config.setdefault(section, {})
    err = first_error(config, load_schema(), where)
    if err is not None:
        raise err
    return config


def check_study(config: dict[str, Any], where: str = "config") -> None:
    """Cross-checks the schema cannot express; raises ConfigError naming key and allowed values."""
    from segbench.data.synthetic import GENERATORS, VOLUME_GENERATORS

    _check_finite(config, "", where)
    _check_fractions(config, where)
    from segbench.losses import LOSSES, build_loss
    from segbench.models import MODEL_INFO, MODELS, check_input_size, input_divisor

    for key, entry in config["losses"].items():
        name, params = split_name(entry)
        if name not in LOSSES:
            raise ConfigError(f"{where}: losses.{key}.name: {LOSSES.unknown_message(name)}")
        try:
            build_loss(name, **params)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"{where}: losses.{key} ({name}): invalid parameters {params}: {err}"
            ) from None
    from segbench.train.augment import check_config as check_augment

    try:
        check_augment(config.get("training", {}).get("augment"))
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None
    crop = config.get("training", {}).get("crop")
    for key, entry in config["models"].items():
        if entry["name"] not in MODELS:
            raise ConfigError(
                f"{where}: models.{key}.name: {MODELS.unknown_message(entry['name'])}"
            )
        _, params = split_name(entry)
        try:
            input_divisor(entry["name"], **params)  # unknown / bad parameters
            if crop is not None:
                check_input_size(entry["name"], int(crop), **params)
            for ds_key, ds in config["datasets"].items():
                if "patch" in ds:  # 3D: training patches and sliding windows of this size
                    if getattr(MODEL_INFO.get(entry["name"]), "spatial_dims", 2) == 3:
                        check_input_size(entry["name"], list(ds["patch"]), **params)
                elif ds["source"] == "synthetic" and (
                    ds.get("generator", ds_key) not in VOLUME_GENERATORS
                ):  # validation and test run on whole images
                    check_input_size(entry["name"], int(ds.get("size", 64)), **params)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: models.{key} ({entry['name']}): {err}") from None
    folds = int(config["folds"])
    for fold in config.get("run_folds", []):
        if fold >= folds:
            raise ConfigError(
                f"{where}: run_folds contains {fold}, but folds = {folds} (allowed 0..{folds - 1})"
            )
    trained = config.get("run_folds") or list(range(folds))
    for key, entry in config["datasets"].items():
        if entry.get("split", "random") == "official":
            _check_official_split(key, entry, trained, where)
            continue
        ds_folds = int(entry.get("folds", folds))
        for fold in trained:
            if fold >= ds_folds:
                raise ConfigError(
                    f"{where}: datasets.{key}.folds = {ds_folds}, but fold {fold} is trained "
                    f"(run_folds / folds = {folds}); allowed folds 0..{ds_folds - 1}: set "
                    "run_folds to folds every dataset has"
                )
    for key, entry in config["datasets"].items():
        if entry["source"] == "synthetic":
            gen = entry.get("generator", key)
            if gen in VOLUME_GENERATORS:
                _check_volume_dataset(config, key, where)
            elif gen not in GENERATORS:
                raise ConfigError(
                    f"{where}: datasets.{key}.generator: unknown synthetic generator {gen!r}; "
                    f"allowed: {', '.join(sorted([*GENERATORS, *VOLUME_GENERATORS]))}"
                )
            elif any(k in entry for k in PATCH_KEYS):
                raise ConfigError(
                    f"{where}: datasets.{key}: {[k for k in PATCH_KEYS if k in entry]} apply to "
                    f"3D datasets only; generator {gen!r} is 2D"
                )
            elif int(entry.get("size", 64)) < 32:
                raise ConfigError(
                    f"{where}: datasets.{key}.size = {entry['size']}: the 2D generator {gen!r} "
                    "needs size >= 32"
                )
            if gen in VOLUME_GENERATORS:
                n = int(entry.get("n", 40))
                if folds > n:
                    raise ConfigError(
                        f"{where}: folds = {folds} is more than the {n} volumes of dataset {key!r}"
                    )
                continue
            size = int(entry.get("size", 64))
            if crop is not None and int(crop) > size:
                raise ConfigError(
                    f"{where}: training.crop = {crop} is larger than the {size}x{size} images "
                    f"of dataset {key!r} (datasets.{key}.size); use crop <= {size} or null"
                )
            n = int(entry.get("n", 40))
            if folds > n:
                raise ConfigError(
                    f"{where}: folds = {folds} is more than the {n} images of dataset {key!r}"
                )
    for i, block in enumerate(config.get("grid", [])):
        for kind in ("datasets", "models", "losses"):
            for name in block.get(kind, []):
                if name not in config[kind]:
                    raise ConfigError(
                        f"{where}: grid[{i}].{kind}: {name!r} is not defined under '{kind}'; "
                        f"defined: {', '.join(sorted(config[kind]))}"
                    )
    check_variants(config, where)
    check_search(config, where)


def _check_official_split(key: str, entry: dict[str, Any], trained: list[int], where: str) -> None:
    """``datasets.<key>.split: official`` (segbench.splits.official_splits): a registry dataset
    (the registry check, :func:`check_registry`, asks its recipe for the partition), one fold 0.
    """
    at = f"{where}: datasets.{key}.split = 'official'"
    if entry["source"] != "registry":
        raise ConfigError(
            f"{at}: a {entry['source']} dataset has no official split; official splits come "
            "from registry recipes that record one (params.split_from_dir); use split: random"
        )
    if "folds" in entry:
        raise ConfigError(
            f"{at}: an official split has one fold; remove datasets.{key}.folds = {entry['folds']}"
        )
    if list(trained) != [0]:
        raise ConfigError(
            f"{at}: an official split has one fold (0), but folds {list(trained)} are trained; "
            "set run_folds: [0]"
        )


PATCH_KEYS = ("patch", "fg_rate", "patches_per_volume")
"""Per-dataset 3D patch keys (``datasets.<key>``), passed to the run as ``training.patch``."""


def _check_volume_dataset(config: dict[str, Any], key: str, where: str) -> None:
    """A 3D synthetic dataset trains with ``pack_mode: sequential`` and no ``augment``
    (docs/3d.md); its patch fits the padded volume side."""
    training = config.get("training", {})
    mode = training.get("pack_mode", "sequential")
    if mode != "sequential":
        raise ConfigError(
            f"{where}: training.pack_mode = {mode!r} is not supported for the 3D dataset "
            f"{key!r}; allowed for 3D: 'sequential' (docs/3d.md)"
        )
    if training.get("augment"):
        raise ConfigError(
            f"{where}: training.augment is 2D only; the 3D dataset {key!r} needs augment: null"
        )


def _patch_protocol(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """``training.patch`` of a run on the dataset ``entry`` (None when it sets no patch key)."""
    names = {"patch": "size", "fg_rate": "fg_rate", "patches_per_volume": "samples_per_volume"}
    given = {names[k]: copy.deepcopy(entry[k]) for k in PATCH_KEYS if k in entry}
    return given or None


def _check_finite(node: Any, at: str, where: str) -> None:
    """Every number of the study is finite: JSON Schema's bounds let ``.nan`` through
    (``nan < 0`` is false) and ``.inf`` wherever there is no upper bound (``lr: .inf``)."""
    if isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(
            f"{where}: {at or '<top level>'}: {node!r} is not a finite number (.nan / .inf "
            "are not allowed)"
        )
    if isinstance(node, Mapping):
        for key, value in node.items():
            _check_finite(value, f"{at}.{key}" if at else str(key), where)
    elif isinstance(node, list | tuple):
        for i, value in enumerate(node):
            _check_finite(value, f"{at}[{i}]", where)


def _check_fractions(config: dict[str, Any], where: str) -> None:
    """No two fractions of one list share a run folder ``f{fmt_fraction(value)}``
    (``[0.5, 0.5000001]`` -> both ``f0.5``: one run folder, half the runs)."""
    lists = [("fractions", config["fractions"])]
    lists += [
        (f"datasets.{k}.fractions", e["fractions"])
        for k, e in config["datasets"].items()
        if "fractions" in e
    ]
    lists += [
        (f"grid[{i}].fractions", b["fractions"])
        for i, b in enumerate(config.get("grid") or [])
        if "fractions" in b
    ]
    for at, values in lists:
        folders: dict[str, Any] = {}
        for value in values:
            text = fmt_fraction(value)
            if text in folders:
                raise ConfigError(
                    f"{where}: {at}: {folders[text]!r} and {value!r} are the same training "
                    "fraction after formatting (one run folder "
                    f"{RUN_DIR.replace('{fraction}', text)}); give each fraction once"
                )
            folders[text] = value


def check_registry(config: dict[str, Any], where: str = "config") -> None:
    """Every ``source: registry`` dataset names an entry of ``download.registry`` (read relative
    to the working directory, as the workflow does).

    Not part of :func:`check_study`: the 3D study configs name registry entries that do not
    exist yet and are meant to validate (:func:`load_study`) as the fixed protocol of a
    follow-up. ``python -m segbench.config`` (``make check-config``) runs it, and the Snakefile
    right after the schema (the DAG would otherwise fail inside an input function).

    A dataset with ``split: official`` must name an entry whose recipe records an official
    train / test partition (``params.split_from_dir``; segbench.splits.official_splits).

    Raises:
        ConfigError: naming the dataset key, the missing id, the registry file and its ids; or
            the key, entry and registry file of an official split the entry does not record.
    """
    keys = [k for k, e in config["datasets"].items() if e["source"] == "registry"]
    if not keys:
        return
    from segbench.data.registry import RegistryError, load_registry

    registry_path = config.get("download", {}).get("registry", "config/datasets.yaml")
    try:
        registry = load_registry(registry_path)
    except RegistryError as err:
        raise ConfigError(f"{where}: download.registry: {err}") from None
    for key in keys:
        rid = config["datasets"][key].get("registry_id", key)
        try:
            entry = registry[rid]
        except RegistryError as err:
            field = f"datasets.{key}" + (
                ".registry_id" if "registry_id" in config["datasets"][key] else ""
            )
            raise ConfigError(f"{where}: {field}: {err}") from None
        if entry.recipe_name == "volumes_3d":  # a 3D dataset (docs/3d.md)
            _check_volume_dataset(config, key, where)
        if config["datasets"][key].get("split", "random") == "official":
            parts = (entry.recipe_params or {}).get("split_from_dir") or {}
            have = sorted(set(parts.values())) if isinstance(parts, dict) else []
            if not {"train", "test"} <= set(have):
                raise ConfigError(
                    f"{where}: datasets.{key}.split = 'official', but registry entry {rid!r} "
                    f"({registry_path}) records no official train / test partition: recipe "
                    f"{entry.recipe_name!r} has params.split_from_dir = {parts or None} (parts "
                    f"{have}); use split: random or give split_from_dir {{folder: train|val|test}}"
                )


def dataset_fractions(config: dict[str, Any], dataset: str) -> list[str]:
    entry = config["datasets"][dataset]
    return [fmt_fraction(f) for f in entry.get("fractions", config["fractions"])]


def all_fractions(config: dict[str, Any], dataset: str) -> list[str]:
    """Every fraction any block of the grid uses for ``dataset`` (the splits file holds them all)."""
    fr = set(dataset_fractions(config, dataset))
    for block in config.get("grid", []):
        if dataset in block.get("datasets", config["datasets"]) and "fractions" in block:
            fr.update(fmt_fraction(f) for f in block["fractions"])
    return sorted(fr, key=float, reverse=True)


def expand_runs(config: dict[str, Any]) -> list[Run]:
    """All runs of the study: the union of the grid blocks' products, sorted, without duplicates.

    A block with a ``search`` section contributes, per (dataset, model, loss, fraction, fold),
    one run per sampled configuration i < ``search.n``: loss key ``{loss}~hp{i:02d}``
    (:func:`search_key`), seed i (see :func:`search_configs`). A block with ``training``
    overrides trains its losses as ``{loss}~{tag}`` (:func:`variant_key`,
    :func:`variant_configs`); every other block's runs keep the plain loss key.
    """
    folds = config.get("run_folds") or list(range(int(config["folds"])))
    blocks = config.get("grid") or [{}]
    runs: set[Run] = set()
    for block in blocks:
        datasets = block.get("datasets", list(config["datasets"]))
        for ds in datasets:
            fractions = (
                [fmt_fraction(f) for f in block["fractions"]]
                if "fractions" in block
                else dataset_fractions(config, ds)
            )
            search = block.get("search")
            tag = block.get("tag") if "training" in block else None
            if search:  # configuration i: derived loss key {loss}~hp{i:02d}, training seed i
                for model, loss, frac, index, fold in itertools.product(
                    block.get("models", list(config["models"])),
                    block.get("losses", list(config["losses"])),
                    fractions,
                    range(int(search["n"])),
                    folds,
                ):
                    runs.add(Run(ds, model, search_key(loss, index), frac, index, int(fold)))
                continue
            for model, loss, frac, seed, fold in itertools.product(
                block.get("models", list(config["models"])),
                block.get("losses", list(config["losses"])),
                fractions,
                block.get("seeds", config["seeds"]),
                folds,
            ):
                key = loss if tag is None else variant_key(loss, tag)
                runs.add(Run(ds, model, key, frac, int(seed), int(fold)))
    return sorted(runs)


# ---------------------------------------------------------------------------------------------
# Random hyper-parameter search (grid blocks with a ``search`` section; paper 002, Sec. 4 and
# App. D: "a random hyperparameter search ... with 25 and 10 runs for our 2D and 3D datasets",
# Table 1 "the 5 best runs out of 25 (selected through validation dice scores)", Table 2 "Best
# out of 10 runs").

SEARCH_SEP = "~hp"
"""Derived loss keys of search configurations: ``{loss}~hp{i:02d}`` (``dice~hp07``). The schema
allows only ``[A-Za-z0-9_.-]`` in the keys of ``losses``, so a derived key never equals a
defined one."""

SEARCH_SIG_DIGITS = 4
"""Sampled values are rounded to this many significant digits (readable run.json / params)."""


@dataclass(frozen=True)
class SearchConfig:
    """One sampled configuration of a search block, trained as an ordinary run folder.

    Attributes:
        key: derived loss key, ``{loss}~hp{index:02d}``; the run folder is
            ``results/runs/{dataset}/{model}/{key}/f{fraction}/s{index}/k{fold}``.
        loss: the base loss key of the study's ``losses`` section (the table row).
        index: configuration number i (0-based); also the run's training seed.
        loss_cfg: the base loss entry with the sampled loss parameters applied.
        training: the sampled training overrides (``lr``, ``weight_decay``, ...).
        sampled: every sampled value, by name (``training.lr``, ``loss.alpha``).
        seed: the search's sampling seed.
        keep: how many configurations the selection keeps per (dataset, model, loss, fraction).
    """

    key: str
    loss: str
    index: int
    loss_cfg: dict[str, Any]
    training: dict[str, Any]
    sampled: dict[str, float]
    seed: int
    keep: int

    def identity(self) -> dict[str, Any]:
        """What run.json records (``config.training.search``); excludes ``n`` and ``keep`` so
        that growing the search leaves the existing runs' params (and folders) untouched."""
        return {
            "key": self.key,
            "loss": self.loss,
            "config": self.index,
            "seed": self.seed,
            "sampled": dict(self.sampled),
        }


def search_key(loss: str, index: int) -> str:
    """Derived loss key of configuration ``index`` of ``loss`` (``dice``, 7 -> ``dice~hp07``)."""
    return f"{loss}{SEARCH_SEP}{index:02d}"


def _round_sig(value: float) -> float:
    return float(f"{value:.{SEARCH_SIG_DIGITS}g}")


def _stream(seed: int, index: int, name: str) -> np.random.Generator:
    """The generator of one (configuration, parameter): seeded by the search seed, the
    configuration index and the parameter name (crc32), so configuration i never depends on how
    many configurations are drawn nor on the other parameters of the space."""
    return np.random.default_rng([int(seed), int(index), zlib.crc32(name.encode())])


def _draw(spec: dict[str, Any], rng: np.random.Generator) -> Any:
    """One value of a parameter spec: ``{low, high, log}`` (uniform, or log-uniform with
    ``log: true``) or ``{values: [...]}`` (uniform choice)."""
    if "values" in spec:
        return spec["values"][int(rng.integers(len(spec["values"])))]
    u = float(rng.random())
    lo, hi = float(spec["low"]), float(spec["high"])
    if spec.get("log", False):
        return _round_sig(math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))))
    return _round_sig(lo + u * (hi - lo))


def _sample_space(
    space: dict[str, dict[str, Any]], prefix: str, seed: int, index: int
) -> dict[str, Any]:
    """Sample a space ``{param: spec}``; ``{one_minus: other}`` specs are ``1 - other``."""
    out: dict[str, Any] = {}
    for name in sorted(space):
        spec = space[name]
        if "one_minus" not in spec:
            out[name] = _draw(spec, _stream(seed, index, f"{prefix}.{name}"))
    for name in sorted(space):
        spec = space[name]
        if "one_minus" in spec:
            out[name] = _round_sig(1.0 - float(out[spec["one_minus"]]))
    return out


def sample_search(
    search: dict[str, Any], loss_key: str, loss_entry: dict[str, Any], index: int
) -> SearchConfig:
    """Configuration ``index`` of ``search`` for one loss of the block.

    The training parameters of configuration i are drawn from streams named ``training.{key}``
    and the loss parameters from ``loss.{param}``: every loss of the block shares the training
    draws of configuration i, and losses with a same-named parameter over the same range (Tversky
    and Tversky - Surgery ``alpha``) share its draw too (paired candidates; a documented choice,
    the paper does not say how its random search was seeded).
    """
    seed = int(search.get("seed", 0))
    training = _sample_space(search.get("training", {}), "training", seed, index)
    loss_params = _sample_space(search.get("losses", {}).get(loss_key, {}), "loss", seed, index)
    sampled = {f"training.{k}": v for k, v in training.items()}
    sampled.update({f"loss.{k}": v for k, v in loss_params.items()})
    return SearchConfig(
        key=search_key(loss_key, index),
        loss=loss_key,
        index=index,
        loss_cfg={**loss_entry, **loss_params},
        training=training,
        sampled=sampled,
        seed=seed,
        keep=int(search["keep"]),
    )


def _search_signature(search: dict[str, Any], loss_key: str) -> tuple[Any, ...]:
    """What configuration i of ``loss_key`` depends on (not ``n``)."""
    return (
        int(search.get("seed", 0)),
        json.dumps(search.get("training", {}), sort_keys=True),
        json.dumps(search.get("losses", {}).get(loss_key, {}), sort_keys=True),
        int(search["keep"]),
    )


def search_configs(config: dict[str, Any]) -> dict[str, SearchConfig]:
    """Every sampled configuration of the study's search blocks, by derived loss key.

    Empty for a study without a search block. A loss searched by several blocks must be searched
    with the same space, seed and ``keep`` (checked by :func:`check_study`), so a derived key
    means one configuration everywhere; its ``n`` may differ (the first ``n`` are shared).
    """
    out: dict[str, SearchConfig] = {}
    for block in config.get("grid") or []:
        search = block.get("search")
        if not search:
            continue
        for loss in block.get("losses", list(config["losses"])):
            for i in range(int(search["n"])):
                key = search_key(loss, i)
                if key not in out:
                    out[key] = sample_search(search, loss, config["losses"][loss], i)
    return out


def _searchable_training() -> dict[str, dict[str, Any]]:
    props = load_schema()["properties"]["training"]["properties"]
    return {
        k: v
        for k, v in props.items()
        if v.get("type") in ("number", "integer") and k not in ("threads", "jobs_per_gpu")
    }


def _check_space(space: Any, where: str) -> None:
    """A ``{param: spec}`` mapping: each spec exactly one of ``{low, high[, log]}``,
    ``{values}``, ``{one_minus}``; low < high; log needs low > 0."""
    for name, spec in space.items():
        at = f"{where}.{name}"
        forms = [f for f in ("low", "values", "one_minus") if f in spec]
        if len(forms) != 1 or ("high" in spec) != ("low" in spec):
            raise ConfigError(
                f"{at}: give exactly one of {{low, high[, log]}}, {{values: [...]}} or "
                f"{{one_minus: <param>}}; got {sorted(spec)}"
            )
        if "low" in spec:
            lo, hi = float(spec["low"]), float(spec["high"])
            if not lo < hi:
                raise ConfigError(f"{at}: low must be < high, got low={lo}, high={hi}")
            if spec.get("log", False) and lo <= 0:
                raise ConfigError(f"{at}: a log-uniform range needs low > 0, got low={lo}")
        elif "log" in spec:
            raise ConfigError(f"{at}: 'log' applies to a {{low, high}} range only")
        if "one_minus" in spec:
            other = spec["one_minus"]
            if other not in space or "one_minus" in space[other]:
                raise ConfigError(
                    f"{at}.one_minus: {other!r} is not a sampled parameter of the same space; "
                    f"sampled: {', '.join(sorted(k for k in space if 'one_minus' not in space[k]))}"
                )


def _space_values(spec: dict[str, Any]) -> list[Any]:
    """The values that bound a spec (range ends, or every choice)."""
    if "values" in spec:
        return list(spec["values"])
    return [spec["low"], spec["high"]]


def check_search(config: dict[str, Any], where: str = "config") -> None:
    """Cross-checks of the grid's search blocks; raises ConfigError naming the key."""
    from segbench.losses import build_loss

    schema = load_schema()["properties"]["training"]
    searchable = _searchable_training()
    blocks = config.get("grid") or []
    seen: dict[str, tuple[int, tuple[Any, ...]]] = {}
    searched_cells: dict[tuple[str, str, str, str], int] = {}
    plain_cells: dict[tuple[str, str, str, str], int] = {}
    for i, block in enumerate(blocks):
        search = block.get("search")
        cells = {
            (ds, model, loss, frac)
            for ds in block.get("datasets", list(config["datasets"]))
            for model in block.get("models", list(config["models"]))
            for loss in block.get("losses", list(config["losses"]))
            for frac in (
                [fmt_fraction(f) for f in block["fractions"]]
                if "fractions" in block
                else dataset_fractions(config, ds)
            )
        }
        if "training" in block:  # a training variant: its own loss keys {loss}~{tag}
            cells = {(d, m, variant_key(loss, str(block.get("tag"))), f) for d, m, loss, f in cells}
        for cell in cells:
            (searched_cells if search else plain_cells).setdefault(cell, i)
        if not search:
            continue
        at = f"{where}: grid[{i}].search"
        n, keep = int(search["n"]), int(search["keep"])
        if keep > n:
            raise ConfigError(f"{at}.keep: keep = {keep} is more than n = {n} configurations")
        if "seeds" in block:
            raise ConfigError(
                f"{where}: grid[{i}].seeds: a search block trains configuration i with seed i; "
                "remove 'seeds' from the block"
            )
        tspace = search.get("training", {})
        for name in tspace:
            if name not in searchable:
                raise ConfigError(
                    f"{at}.training.{name}: not a searchable training parameter; allowed: "
                    f"{', '.join(sorted(searchable))}"
                )
        _check_space(tspace, f"{at}.training")
        validator = _Validator(schema)
        for name, spec in tspace.items():
            if "one_minus" in spec:
                continue
            for value in _space_values(spec):
                trial = {**config["training"], name: value}
                err = next(iter(validator.iter_errors(copy.deepcopy(trial))), None)
                if err is not None:
                    raise ConfigError(f"{at}.training.{name}: value {value!r}: {err.message}")
        block_losses = block.get("losses", list(config["losses"]))
        for loss, space in search.get("losses", {}).items():
            if loss not in block_losses:
                raise ConfigError(
                    f"{at}.losses.{loss}: not a loss of this block; block losses: "
                    f"{', '.join(block_losses)}"
                )
            _check_space(space, f"{at}.losses.{loss}")
            entry = config["losses"][loss]
            for name, spec in space.items():
                if "one_minus" in spec:
                    continue
                for value in _space_values(spec):
                    params = split_name(entry)[1]
                    params[name] = value
                    for other, ospec in space.items():
                        if ospec.get("one_minus") == name:
                            params[other] = 1.0 - float(value)
                    try:
                        build_loss(entry["name"], **params)
                    except (TypeError, ValueError) as err:
                        raise ConfigError(
                            f"{at}.losses.{loss}.{name}: value {value!r} is invalid for loss "
                            f"{entry['name']!r}: {err}"
                        ) from None
        for loss in block_losses:
            sig = _search_signature(search, loss)
            if loss in seen and seen[loss][1] != sig:
                raise ConfigError(
                    f"{at}: loss {loss!r} is also searched by grid[{seen[loss][0]}] with a "
                    "different space, seed or keep; use a separate loss key"
                )
            seen.setdefault(loss, (i, sig))
    for cell, i in sorted(searched_cells.items()):
        if cell in plain_cells:
            ds, model, loss, frac = cell
            raise ConfigError(
                f"{where}: grid[{plain_cells[cell]}] trains loss {loss!r} on ({ds}, {model}, "
                f"fraction {frac}) without a search, and grid[{i}] searches the same cell: the "
                "tables would mix both; use a separate loss key for one of them"
            )


# ---------------------------------------------------------------------------------------------
# Training variants (grid blocks with ``training`` overrides; paper 002 Fig. 5, App. D:
# "Training curves with SGD+Nesterov Momentum and Adam optimizers for a dice loss training and a
# model with the same hyperparameters trained with our dice surgery training objective").

VARIANT_SEP = "~"
"""Derived loss keys of training variants: ``{loss}~{tag}`` (``dice~adam``). The schema allows
only ``[A-Za-z0-9_.-]`` in the keys of ``losses`` and in tags, so a derived key never equals a
defined one and its base loss is the part before the first ``~`` (:func:`base_loss`)."""

RESERVED_TAG = re.compile(r"hp\d+")
"""Tags a block may not use: ``{loss}~hp{i:02d}`` are the search configurations' keys."""


@dataclass(frozen=True)
class VariantConfig:
    """The runs of one loss of a grid block with ``training`` overrides.

    Attributes:
        key: derived loss key, ``{loss}~{tag}``; the run folders are
            ``results/runs/{dataset}/{model}/{key}/f{fraction}/s{seed}/k{fold}``.
        loss: the base loss key of the study's ``losses`` section (the loss trained).
        tag: the block's ``tag``.
        training: the block's overrides (``optimizer``, ``lr``, ...), as given.
    """

    key: str
    loss: str
    tag: str
    training: dict[str, Any]

    def identity(self) -> dict[str, Any]:
        """What run.json records (``config.training.variant``)."""
        return {
            "key": self.key,
            "loss": self.loss,
            "tag": self.tag,
            "overrides": copy.deepcopy(self.training),
        }


def variant_key(loss: str, tag: str) -> str:
    """Derived loss key of loss ``loss`` in a block tagged ``tag`` (``dice``, ``adam`` ->
    ``dice~adam``)."""
    return f"{loss}{VARIANT_SEP}{tag}"


def base_loss(key: str) -> str:
    """The ``losses`` key a run's loss key trains: ``dice~hp07`` and ``dice~adam`` -> ``dice``;
    a plain key is its own base."""
    return key.split(VARIANT_SEP, 1)[0]


def variant_configs(config: dict[str, Any]) -> dict[str, VariantConfig]:
    """Every training variant of the study's grid blocks, by derived loss key (empty for a
    study without ``training`` blocks). One tag has one set of overrides in every block
    (checked by :func:`check_variants`), so a derived key means one configuration everywhere."""
    out: dict[str, VariantConfig] = {}
    for block in config.get("grid") or []:
        if "training" not in block:
            continue
        tag = str(block["tag"])
        for loss in block.get("losses", list(config["losses"])):
            key = variant_key(loss, tag)
            out.setdefault(key, VariantConfig(key, loss, tag, dict(block["training"])))
    return out


def curve_runs(runs: list[Run], variants: Mapping[str, VariantConfig]) -> list[Run]:
    """The runs of the training-curves figure (paper 002 Fig. 5): every training variant's run
    and the study-training runs of the same cells (dataset, model, base loss, fraction) - the
    curves a variant is compared with - or every run when the study has no variant.

    Args:
        runs: :func:`expand_runs` of the study.
        variants: :func:`variant_configs` of the study.
    """
    tagged = [r for r in runs if r.loss in variants]
    if not tagged:
        return list(runs)
    cells = {(r.dataset, r.model, variants[r.loss].loss, r.fraction) for r in tagged}
    plain = [
        r
        for r in runs
        if r.loss not in variants and (r.dataset, r.model, r.loss, r.fraction) in cells
    ]
    return sorted([*tagged, *plain])


def _training_keys() -> list[str]:
    """The keys of the top-level ``training`` schema (what a block may override)."""
    return sorted(load_schema()["properties"]["training"]["properties"])


def _check_block_crop(config: dict[str, Any], block: dict[str, Any], crop: int, at: str) -> None:
    """A block's own crop fits its models (input divisor) and its synthetic images."""
    from segbench.models import check_input_size

    for key in block.get("models", list(config["models"])):
        name, params = split_name(config["models"][key])
        try:
            check_input_size(name, crop, **params)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{at}: {crop} for model {key!r} ({name}): {err}") from None
    for key in block.get("datasets", list(config["datasets"])):
        entry = config["datasets"][key]
        if entry["source"] == "synthetic" and crop > int(entry.get("size", 64)):
            raise ConfigError(
                f"{at}: {crop} is larger than the {entry.get('size', 64)}x{entry.get('size', 64)} "
                f"images of dataset {key!r} (datasets.{key}.size)"
            )


def check_variants(config: dict[str, Any], where: str = "config") -> None:
    """Cross-checks of the grid blocks with ``training`` overrides (:func:`variant_configs`).

    Raises:
        ConfigError: naming ``grid[i].training`` / ``grid[i].tag`` and the value: ``training``
            without ``tag`` or ``tag`` without ``training``; ``training`` with ``search``; an
            unknown training key (allowed keys and the closest listed) or a value the top-level
            ``training`` schema rejects (the merged section is validated, augmentation and the
            block's crop against its models and synthetic image sizes included);
            a tag reserved for search keys (``hp`` + digits) or used by another block with other
            overrides (one derived key, two trainings).
    """
    schema = load_schema()["properties"]["training"]
    allowed = _training_keys()
    tags: dict[str, tuple[int, str]] = {}
    for i, block in enumerate(config.get("grid") or []):
        at = f"{where}: grid[{i}]"
        if "training" not in block and "tag" not in block:
            continue
        if "tag" not in block:
            raise ConfigError(
                f"{at}.training: a block with training overrides needs a 'tag' (its runs are "
                "trained as loss key {loss}~{tag}, e.g. tag: adam -> dice~adam)"
            )
        tag = str(block["tag"])
        if "training" not in block:
            raise ConfigError(
                f"{at}.tag: {tag!r} without 'training': a tag names a block's training "
                "overrides; add training: {...} or remove the tag"
            )
        if "search" in block:
            raise ConfigError(
                f"{at}: 'training' overrides and 'search' in one block are not supported; "
                "override the study's training in a block without a search"
            )
        overrides = block["training"]
        if RESERVED_TAG.fullmatch(tag):
            raise ConfigError(
                f"{at}.tag: {tag!r}: loss keys {{loss}}~{tag} would collide with the search "
                f"configuration keys {{loss}}~hp{{i:02d}} (e.g. {search_key('dice', 7)}); use "
                "another tag"
            )
        for name in overrides:
            if name not in allowed:
                near = difflib.get_close_matches(str(name), allowed, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise ConfigError(
                    f"{at}.training.{name}: not a training key{hint}; allowed: {', '.join(allowed)}"
                )
        merged = copy.deepcopy({**config["training"], **overrides})
        err = first_error(merged, schema, where, prefix=f"grid[{i}].training")
        if err is not None:
            raise err
        from segbench.train.augment import check_config as check_augment

        try:
            check_augment(merged.get("augment"))
        except (ValueError, TypeError) as err:
            raise ConfigError(f"{at}.training.augment: {err}") from None
        if "crop" in overrides and merged["crop"] is not None:
            _check_block_crop(config, block, int(merged["crop"]), f"{at}.training.crop")
        text = json.dumps(overrides, sort_keys=True)
        if tag in tags and tags[tag][1] != text:
            first = tags[tag][0]
            raise ConfigError(
                f"{at}.tag: {tag!r} is also the tag of grid[{first}] with other training "
                f"overrides: the loss keys {{loss}}~{tag} would mean two trainings; give each "
                "set of overrides its own tag"
            )
        tags.setdefault(tag, (i, text))
        for loss in block.get("losses", list(config["losses"])):
            if variant_key(loss, tag) in config["losses"]:  # unreachable through the schema
                raise ConfigError(
                    f"{at}.tag: {variant_key(loss, tag)!r} is already a key of 'losses'"
                )


def dataset_include_background(config: dict[str, Any], dataset: str) -> bool:
    """``datasets.{dataset}.include_background``, else ``evaluation.include_background`` of a
    validated config (its schema default filled)."""
    entry = config["datasets"][dataset]
    return bool(entry.get("include_background", config["evaluation"]["include_background"]))


def run_spec(
    config: dict[str, Any],
    run: Run,
    searches: Mapping[str, SearchConfig] | None = None,
    variants: Mapping[str, VariantConfig] | None = None,
) -> RunSpec:
    """The :class:`RunSpec` of ``run`` in a validated study config: the one place a run's
    resolved configuration is assembled (the workflow's params, :func:`segbench.smk.run_spec`).

    For a search configuration (loss key ``{loss}~hp{i:02d}``) ``loss_cfg`` is the base loss
    with the sampled loss parameters, ``training`` the study's training section with the sampled
    values and ``training.search`` its identity (base loss, index, sampled values), which
    ``run.json`` records; the training code reads nothing else. For a training variant (loss
    key ``{loss}~{tag}``, a grid block with ``training`` overrides) ``loss_cfg`` is the base
    loss and ``training`` the study's training section with the block's overrides and
    ``training.variant`` its identity (:meth:`VariantConfig.identity`).

    Args:
        config: validated study config (schema defaults filled).
        run: the run's identity.
        searches: :func:`search_configs` of ``config`` (computed when not given).
        variants: :func:`variant_configs` of ``config`` (computed when not given).
    """
    search = (search_configs(config) if searches is None else searches).get(run.loss)
    variant = (variant_configs(config) if variants is None else variants).get(run.loss)
    if variant is not None:  # a training variant: the block's overrides over the study's
        loss_cfg = config["losses"][variant.loss]
        training = {**config["training"], **variant.training, "variant": variant.identity()}
    elif search is None:
        loss_cfg, training = config["losses"][run.loss], config["training"]
    else:  # a search configuration: its sampled values resolved into the run's own config
        loss_cfg = search.loss_cfg
        training = {**config["training"], **search.training, "search": search.identity()}
    patch = _patch_protocol(config["datasets"][run.dataset])
    if patch is not None:  # 3D: the dataset's patch protocol (segbench.train.patches)
        training = {**training, "patch": patch}
    return RunSpec(
        **run.wildcards(),
        model_cfg=copy.deepcopy(config["models"][run.model]),
        loss_cfg=copy.deepcopy(loss_cfg),
        training=training,  # copied and resolved by RunSpec
        evaluation={"include_background": dataset_include_background(config, run.dataset)},
    )


def load_study(path: str | Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load, validate and cross-check a study config file (for scripts and tests)."""
    config = load_yaml(path)
    if overrides:
        config.update(overrides)
    validate_schema(config, str(path))
    check_study(config, str(path))
    return config


def shrink_study(
    config: dict[str, Any],
    datasets: dict[str, dict[str, Any]],
    models: dict[str, dict[str, Any]],
    *,
    seeds: list[int] | None = None,
    folds: int = 2,
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A smoke-test copy of a study: same losses, grid blocks and report settings, tiny data.

    ``datasets`` maps the study's dataset keys that are kept to replacement entries (e.g.
    ``{"chase_db1": {"source": "synthetic", "generator": "synth_vessels", "n": 16, "size": 32}}``);
    ``models`` likewise for model keys. Grid blocks are restricted to the kept keys and
    dropped when nothing is left; per-dataset fractions and flags are kept.
    """
    cfg = copy.deepcopy(config)
    cfg["datasets"] = {
        k: {
            **{
                kk: vv
                for kk, vv in cfg["datasets"][k].items()
                if kk in ("fractions", "include_background", "val_fraction")
            },
            **v,
        }
        for k, v in datasets.items()
    }
    cfg["models"] = copy.deepcopy(models)
    blocks = []
    for block in cfg.get("grid", []):
        b = dict(block)
        for kind in ("datasets", "models"):
            if kind in b:
                b[kind] = [k for k in b[kind] if k in cfg[kind]]
        if all(b.get(kind, [None]) for kind in ("datasets", "models")):
            blocks.append(b)
    if "grid" in cfg:
        cfg["grid"] = blocks
    used = (
        {loss for b in blocks for loss in b.get("losses", cfg["losses"])}
        if blocks
        else set(cfg["losses"])
    )
    cfg["losses"] = {k: v for k, v in cfg["losses"].items() if k in used}
    cfg["seeds"] = seeds or cfg["seeds"][:1]
    cfg["folds"] = folds
    cfg.pop("run_folds", None)
    cfg["training"] = {**cfg.get("training", {}), **(training or {})}
    cfg["study"] = f"{cfg['study']}_smoke"
    return cfg


def main(argv: list[str] | None = None) -> int:
    """``python -m segbench.config [--no-device-check] STUDY.yaml ...`` (``make check-config``):
    check study files the way the workflow does, naming the file and line of malformed YAML and
    of duplicate keys (Snakemake's own message for a ``--configfile`` it cannot parse names
    neither, and its loader keeps the last of two equal keys). Also checks that
    ``training.device: cuda`` finds a CUDA device here (``--no-device-check`` on a cluster
    login node that submits the jobs). Exit status 1 on the first bad file."""
    import sys

    args = sys.argv[1:] if argv is None else list(argv)
    device_check = "--no-device-check" not in args
    paths = [a for a in args if a != "--no-device-check"]
    if not paths:
        print(
            "usage: python -m segbench.config [--no-device-check] STUDY.yaml [...]",
            file=sys.stderr,
        )
        return 2
    for path in paths:
        try:
            check_configfiles([path])
            config = load_study(path)
            check_registry(config, str(path))
            if device_check:
                check_device(config, str(path))
            runs = expand_runs(config)
        except ConfigError as err:
            print(f"segbench config error: {err}", file=sys.stderr)
            return 1
        print(f"{path}: ok, {len(runs)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
