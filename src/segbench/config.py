"""Study configuration: load, validate (JSON Schema + registry cross-checks), expand the grid.

This is the one place where config dicts become objects. Snakemake validates with
``snakemake.utils.validate`` against the same schema, then calls :func:`check_study`.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from segbench.paths import fmt_fraction

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The study configuration is invalid; the message names the key and the allowed values."""


@dataclass(frozen=True, order=True)
class Run:
    """Identity of one training run of the grid."""

    dataset: str
    model: str
    loss: str
    fraction: str
    seed: int
    fold: int

    def wildcards(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "model": self.model,
            "loss": self.loss,
            "fraction": self.fraction,
            "seed": self.seed,
            "fold": self.fold,
        }


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file; malformed YAML raises ConfigError naming the file and line."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file does not exist") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: malformed YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _with_defaults(validator_cls: type) -> type:
    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: dict, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def validate_schema(config: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """Validate against the JSON schema and fill defaults (in place). Raises ConfigError."""
    schema = load_schema()
    for section in ("training", "evaluation", "resources", "report"):
        config.setdefault(section, {})
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
        raise ConfigError(f"{where}: invalid value at key '{key}': {err.message}")
    return config


def check_study(config: dict[str, Any], where: str = "config") -> None:
    """Cross-checks the schema cannot express; raises ConfigError naming key and allowed values."""
    from segbench.data.synthetic import GENERATORS
    from segbench.losses import LOSSES, build_loss
    from segbench.models import MODELS, check_input_size, input_divisor

    for key, entry in config["losses"].items():
        name = entry["name"]
        if name not in LOSSES:
            raise ConfigError(f"{where}: losses.{key}.name: {LOSSES.unknown_message(name)}")
        params = {k: v for k, v in entry.items() if k != "name"}
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
        params = {k: v for k, v in entry.items() if k != "name"}
        try:
            input_divisor(entry["name"], **params)  # unknown / bad parameters
            if crop is not None:
                check_input_size(entry["name"], int(crop), **params)
            for ds in config["datasets"].values():
                if ds["source"] == "synthetic":  # validation and test run on whole images
                    check_input_size(entry["name"], int(ds.get("size", 64)), **params)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: models.{key} ({entry['name']}): {err}") from None
    folds = int(config["folds"])
    for fold in config.get("run_folds", []):
        if fold >= folds:
            raise ConfigError(
                f"{where}: run_folds contains {fold}, but folds = {folds} (allowed 0..{folds - 1})"
            )
    for key, entry in config["datasets"].items():
        if entry["source"] == "synthetic":
            gen = entry.get("generator", key)
            if gen not in GENERATORS:
                raise ConfigError(
                    f"{where}: datasets.{key}.generator: unknown synthetic generator {gen!r}; "
                    f"allowed: {', '.join(sorted(GENERATORS))}"
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
    """All runs of the study: the union of the grid blocks' products, sorted, without duplicates."""
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
            for model, loss, frac, seed, fold in itertools.product(
                block.get("models", list(config["models"])),
                block.get("losses", list(config["losses"])),
                fractions,
                block.get("seeds", config["seeds"]),
                folds,
            ):
                runs.add(Run(ds, model, loss, frac, int(seed), int(fold)))
    return sorted(runs)


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
    """``python -m segbench.config STUDY.yaml ...``: check study files the way the workflow does,
    naming the file and line of malformed YAML (Snakemake's own message for a ``--configfile``
    it cannot parse names neither). Exit status 1 on the first bad file."""
    import sys

    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m segbench.config STUDY.yaml [...]", file=sys.stderr)
        return 2
    for path in paths:
        try:
            runs = expand_runs(load_study(path))
        except ConfigError as err:
            print(f"segbench config error: {err}", file=sys.stderr)
            return 1
        print(f"{path}: ok, {len(runs)} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
