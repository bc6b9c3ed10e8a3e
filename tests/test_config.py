"""Config validation: bad input stops before any job with a message naming key and allowed values."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from segbench.config import (
    ConfigError,
    check_study,
    expand_runs,
    load_study,
    load_yaml,
    validate_schema,
)

REPO = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())


def _check(cfg):
    validate_schema(cfg)
    check_study(cfg)
    return expand_runs(cfg)


def test_tiny_config_expands_grid():
    runs = _check(copy.deepcopy(TINY))
    assert (
        len(runs) == 2 * 1 * 3 * 2 * 1 * 2
    )  # datasets x models x losses x fractions x seeds x folds
    assert {r.fraction for r in runs} == {"1", "0.5"}


def test_default_and_study_configs_are_valid():
    for path in [
        REPO / "config" / "config.yaml",
        *sorted((REPO / "config" / "studies").glob("*.yaml")),
    ]:
        load_study(path)


def test_defaults_are_filled():
    cfg = _check(copy.deepcopy(TINY)) and validate_schema(copy.deepcopy(TINY))
    assert (
        cfg["training"]["optimizer"] == "adam" and cfg["evaluation"]["include_background"] is True
    )


def _mutate(fn):
    cfg = copy.deepcopy(TINY)
    fn(cfg)
    return cfg


CASES = [
    (
        lambda c: c["losses"].update(x={"name": "dise"}),
        r"losses.x.name: unknown loss 'dise'.*Did you mean 'dice'",
    ),
    (
        lambda c: c["models"].update(m={"name": "unett"}),
        r"models.m.name: unknown model 'unett'.*known model names:.*unet",
    ),
    (
        lambda c: c.update(fractions=[0]),
        r"key 'fractions.0': 0 is less than or equal to the minimum of 0",
    ),
    (lambda c: c.update(fractions=[1.5]), r"key 'fractions.0'.*greater than the maximum of 1"),
    (lambda c: c.update(folds=13), r"folds = 13 is more than the 12 images of dataset"),
    (lambda c: c.update(unknown_key=1), r"Additional properties are not allowed \('unknown_key'"),
    (
        lambda c: c["training"].update(lr="fast"),
        r"key 'training.lr': 'fast' is not of type 'number'",
    ),
    (
        lambda c: c["training"].update(optimizer="rmsprop"),
        r"key 'training.optimizer': 'rmsprop' is not one of",
    ),
    (
        lambda c: c["losses"].update(t={"name": "dice_ce", "w_dice": -1}),
        r"losses.t \(dice_ce\): invalid parameters",
    ),
    (
        lambda c: c["datasets"].update(z={"source": "synthetic", "generator": "nope"}),
        r"datasets.z.generator: unknown synthetic generator 'nope'; allowed",
    ),
    (
        lambda c: c.update(grid=[{"losses": ["nope"]}]),
        r"grid\[0\].losses: 'nope' is not defined under 'losses'",
    ),
    (lambda c: c.update(run_folds=[5]), r"run_folds contains 5, but folds = 2"),
    (
        lambda c: c["models"].update(m={"name": "unet", "widht": 8}),
        r"models.m \(unet\): model 'unet' got unknown parameter\(s\) 'widht'",
    ),
    (
        lambda c: c["models"].update(m={"name": "unet", "depth": 6}),
        r"models.m \(unet\): model 'unet' cannot take spatial input size \(32, 32\)",
    ),
]


@pytest.mark.parametrize("mutate, msg", CASES)
def test_bad_config_message(mutate, msg):
    with pytest.raises(ConfigError, match=msg):
        _check(_mutate(mutate))


def test_malformed_yaml_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nlosses: {ce: {name: ce}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML"):
        load_yaml(bad)


def test_grid_blocks_union():
    cfg = copy.deepcopy(TINY)
    cfg["grid"] = [
        {"losses": ["ce", "dice"], "fractions": [1.0]},
        {"losses": ["dicece_0.5"], "datasets": ["synth_vessels"], "fractions": [0.5]},
    ]
    runs = _check(cfg)
    assert {(r.loss, r.fraction) for r in runs} == {
        ("ce", "1"),
        ("dice", "1"),
        ("dicece_0.5", "0.5"),
    }
    assert {r.dataset for r in runs if r.loss == "dicece_0.5"} == {"synth_vessels"}
