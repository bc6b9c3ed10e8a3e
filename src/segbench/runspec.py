"""One run: its identity (:class:`Run`, the grid cell) and its resolved configuration
(:class:`RunSpec`).

The identity fields are spelled once, here (:data:`RUN_KEYS` is derived from them); the
configuration, the workflow and every table read them from this module. ``RunSpec`` is built
from a study config in one place (:func:`segbench.config.run_spec`), travels to the train job
as a plain dict (Snakemake's params, :meth:`RunSpec.as_dict` / :meth:`RunSpec.from_dict`) and is
recorded in ``run.json`` (:mod:`segbench.rundir`). Its ``training`` is always resolved: the
schema's defaults fill every missing key (:func:`resolve_training`), so the training code reads
``spec.training["epochs"]`` and no default is repeated outside the schema.

Imports only :mod:`segbench.schema` (no import circle: config, smk, train, evaluate, reporting
and stats import this; losses, models and metrics never do).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from segbench.schema import ConfigError, resolve_section, section_schema

DERIVED_TRAINING_KEYS = ("search", "variant", "patch")
"""Keys of a run's ``training`` that no study sets: ``search`` is the identity of a random
search configuration (:meth:`segbench.config.SearchConfig.identity`), ``variant`` that of a
grid block's training overrides (:meth:`segbench.config.VariantConfig.identity`), ``patch``
the 3D patch protocol of the run's dataset (``datasets.<key>.patch`` / ``fg_rate`` /
``patches_per_volume`` as ``{size, fg_rate, samples_per_volume}``), all added by
:func:`segbench.config.run_spec`; they are kept as given and not checked against the schema."""


@dataclass(frozen=True, order=True)
class Run:
    """Identity of one training run of the grid: one run folder
    (``results/runs/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}``)."""

    dataset: str
    model: str
    loss: str
    fraction: str
    seed: int
    fold: int

    def wildcards(self) -> dict[str, Any]:
        """The identity as ``{key: value}`` (:data:`RUN_KEYS` order): the run folder's
        wildcards and ``run.json``'s ``run`` record."""
        return {k: getattr(self, k) for k in RUN_KEYS}


RUN_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Run))
"""Columns that identify one training run (tidy table, ``run.json`` ``run``, ``metrics.json``)."""


def split_name(entry: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A ``models`` / ``losses`` entry as ``(registry name, parameters)``:
    ``{"name": "dice_ce", "w_dice": 0.5}`` -> ``("dice_ce", {"w_dice": 0.5})``."""
    return entry["name"], {k: v for k, v in entry.items() if k != "name"}


def resolve_training(partial: Mapping[str, Any] | None, where: str = "training") -> dict[str, Any]:
    """``partial`` with every schema default of ``training`` filled in and validated
    (:func:`segbench.schema.resolve_section`); :data:`DERIVED_TRAINING_KEYS` pass through.

    Raises:
        ConfigError: naming the key, the value and the allowed values.
    """
    given = dict(partial or {})
    derived = {k: given.pop(k) for k in DERIVED_TRAINING_KEYS if k in given}
    return {**resolve_section("training", given, where), **derived}


def resolve_evaluation(partial: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a run's ``evaluation`` holds: ``include_background`` (schema default if absent).

    Only this key is filled: the train job's params (and the resume digest) hold the evaluation
    settings the training reads, not the whole ``evaluation`` section.
    """
    out = dict(partial or {})
    if "include_background" not in out:
        out["include_background"] = section_schema("evaluation")["properties"][
            "include_background"
        ]["default"]
    return out


@dataclass(frozen=True)
class RunSpec(Run):
    """Everything that defines one run: identity + resolved configuration. Its
    :meth:`digest` decides whether a checkpoint may be resumed.

    ``training`` is resolved on construction (:func:`resolve_training`); ``evaluation`` gets
    ``include_background`` (:func:`resolve_evaluation`).
    """

    model_cfg: dict[str, Any]
    loss_cfg: dict[str, Any]
    training: dict[str, Any]
    evaluation: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "training", resolve_training(self.training))
        object.__setattr__(self, "evaluation", resolve_evaluation(self.evaluation))

    def identity(self) -> Run:
        return Run(**self.wildcards())

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (``RunSpec.from_dict(spec.as_dict()) == spec``)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """The spec of :meth:`as_dict` (Snakemake's params, ``run.json``'s ``config``).

        Raises:
            ConfigError: naming missing or unknown keys.
        """
        names = [f.name for f in fields(cls)]
        required = [f.name for f in fields(cls) if f.name != "evaluation"]
        missing = [k for k in required if k not in data]
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise ConfigError(
                f"run spec: missing keys {missing}, unknown keys {unknown}; expected {names}"
            )
        return cls(**dict(data))

    def digest(self) -> str:
        text = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
