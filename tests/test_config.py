"""Config validation: bad input stops before any job with a message naming key and allowed values."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
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


# ---------------------------------------------------------------- random hyper-parameter search
# Paper 002 (../shared/papers/002_bd5429997cd2b0b6.txt): "a random hyperparameter search ... with
# 25 and 10 runs for our 2D and 3D datasets" (l.118); "we further optimize for weight decay,
# initial learning rate, and momentum" and "the alpha parameter (beta = 1 - alpha)" (App. D).

SEARCH = yaml.safe_load((REPO / ".test" / "search.yaml").read_text())


def _search_cfg(n: int = 3, **search) -> dict:
    cfg = copy.deepcopy(SEARCH)
    cfg["grid"][1]["search"].update(n=n, **search)
    return cfg


def _specs(cfg: dict) -> dict[str, dict]:
    from types import SimpleNamespace

    from segbench.smk import run_spec

    return {
        f"{r.loss}/s{r.seed}/k{r.fold}": run_spec(cfg, SimpleNamespace(**r.wildcards()))
        for r in _check(cfg)
    }


def test_search_expansion_keys_seeds_and_paths():
    from segbench import paths
    from segbench.smk import run_paths

    runs = _check(_search_cfg(3))
    searched = [r for r in runs if r.loss != "ce"]
    assert sorted((r.loss, r.seed) for r in searched) == [
        (f"{loss}~hp{i:02d}", i) for loss in ("dice", "tversky") for i in range(3)
    ]
    assert [r.loss for r in runs if r.loss == "ce"] == ["ce"]  # the plain block is untouched
    assert "results/runs/synth_vessels/unet4/dice~hp01/f1/s1/k0/run.json" in run_paths(runs, "run")
    assert paths.RUN_DIR.startswith("results/runs/{dataset}/{model}/{loss}/")


def test_search_resolves_into_the_run_spec():
    specs = _specs(_search_cfg(3))
    plain = specs["ce/s0/k0"]
    assert plain["loss_cfg"] == {"name": "ce"} and "search" not in plain["training"]
    assert plain["training"]["lr"] == 0.001
    for i in range(3):
        d, t = specs[f"dice~hp{i:02d}/s{i}/k0"], specs[f"tversky~hp{i:02d}/s{i}/k0"]
        ident = t["training"]["search"]
        assert ident == {
            "config": i,
            "key": f"tversky~hp{i:02d}",
            "loss": "tversky",
            "sampled": {
                "loss.alpha": t["loss_cfg"]["alpha"],
                "loss.beta": t["loss_cfg"]["beta"],
                "training.lr": t["training"]["lr"],
                "training.weight_decay": t["training"]["weight_decay"],
            },
            "seed": 0,
        }  # no n / keep: growing the search leaves the params of existing runs unchanged
        assert 1e-4 <= t["training"]["lr"] <= 1e-2 and 1e-6 <= t["training"]["weight_decay"] <= 1e-3
        assert 0.1 <= t["loss_cfg"]["alpha"] <= 0.9
        assert t["loss_cfg"]["beta"] == pytest.approx(1 - t["loss_cfg"]["alpha"], abs=1e-9)
        # the losses of a block share configuration i's training draws (paired candidates)
        assert d["training"]["lr"] == t["training"]["lr"]
        assert d["loss_cfg"] == {"name": "dice"}
        # everything else is the study's training section
        rest = {k: v for k, v in t["training"].items() if k not in ("lr", "weight_decay", "search")}
        assert rest == {
            k: v for k, v in plain["training"].items() if k not in ("lr", "weight_decay")
        }
    assert len({specs[f"dice~hp{i:02d}/s{i}/k0"]["training"]["lr"] for i in range(3)}) == 3


def test_search_growth_keeps_the_first_configurations():
    """n = 25 -> 30 keeps configurations 0..24 (their params, hence their folders, unchanged)."""
    small, large = _specs(_search_cfg(25)), _specs(_search_cfg(30))
    assert set(small) < set(large) and len(large) - len(small) == 2 * 5
    assert all(large[k] == v for k, v in small.items())
    # a different sampling seed gives different configurations
    other = _specs(_search_cfg(25, seed=1))
    assert other["dice~hp00/s0/k0"]["training"]["lr"] != small["dice~hp00/s0/k0"]["training"]["lr"]


def test_search_parameter_streams_are_independent():
    """Adding a parameter to the space leaves the other parameters' draws unchanged."""
    base = _specs(_search_cfg(5))
    cfg = _search_cfg(5)
    cfg["grid"][1]["search"]["training"]["momentum"] = {"low": 0.8, "high": 0.99}
    more = _specs(cfg)
    for key, spec in base.items():
        for p in ("lr", "weight_decay"):
            assert more[key]["training"][p] == spec["training"][p]
        if "search" in spec["training"]:
            assert 0.8 <= more[key]["training"]["momentum"] <= 0.99


def test_search_distributions_log_uniform_and_uniform():
    """lr (log: true) is uniform in log space, momentum (linear) uniform; KS test against
    scipy.stats.uniform on [0, 1] after the closed-form transform (values rounded to 4
    significant digits, far below the KS resolution at n = 2000)."""
    from scipy import stats

    from segbench.config import sample_search

    space = {
        "seed": 3,
        "keep": 1,
        "n": 2000,
        "training": {
            "lr": {"low": 1e-4, "high": 1e-1, "log": True},
            "momentum": {"low": 0.9, "high": 0.99},
        },
        "losses": {"t": {"alpha": {"values": [0.2, 0.5]}}},
    }
    draws = [sample_search(space, "t", {"name": "tversky"}, i) for i in range(2000)]
    lr = np.array([d.training["lr"] for d in draws])
    mom = np.array([d.training["momentum"] for d in draws])
    u_lr = (np.log(lr) - np.log(1e-4)) / (np.log(1e-1) - np.log(1e-4))
    u_mom = (mom - 0.9) / 0.09
    assert stats.kstest(u_lr, "uniform").pvalue > 0.01
    assert stats.kstest(u_mom, "uniform").pvalue > 0.01
    # a linear-uniform lr would put ~0.1 % of the mass below 1e-3; log-uniform puts 1/3
    assert abs((lr < 1e-3).mean() - 1 / 3) < 0.05
    alphas = [d.loss_cfg["alpha"] for d in draws]
    assert set(alphas) == {0.2, 0.5} and abs(alphas.count(0.2) / 2000 - 0.5) < 0.05


def _search_mutate(fn):
    cfg = _search_cfg(3)
    fn(cfg["grid"][1], cfg)
    return cfg


SEARCH_CASES = [
    (
        lambda b, c: b["search"].update(keep=4),
        r"grid\[1\].search.keep: keep = 4 is more than n = 3",
    ),
    (
        lambda b, c: b["search"]["training"].update(lr={"low": 1e-2, "high": 1e-4, "log": True}),
        r"grid\[1\].search.training.lr: low must be < high",
    ),
    (
        lambda b, c: b["search"]["training"].update(lr={"low": 0.0, "high": 1e-2, "log": True}),
        r"grid\[1\].search.training.lr: a log-uniform range needs low > 0",
    ),
    (
        lambda b, c: b["search"]["training"].update(momentum={"low": -0.5, "high": 0.9}),
        r"grid\[1\].search.training.momentum: value -0.5: -0.5 is less than the minimum of 0",
    ),
    (
        lambda b, c: b["search"]["training"].update(optimizer={"values": ["sgd"]}),
        r"grid\[1\].search.training.optimizer: not a searchable training parameter; allowed:.*lr",
    ),
    (
        lambda b, c: b["search"]["training"].update(lr={"low": 1e-4}),
        r"grid\[1\].search.training.lr: give exactly one of",
    ),
    (
        lambda b, c: b["search"]["losses"].update(ce={"w": {"low": 0, "high": 1}}),
        r"grid\[1\].search.losses.ce: not a loss of this block; block losses: dice, tversky",
    ),
    (
        lambda b, c: b["search"]["losses"]["tversky"].update(alpha={"low": -1.0, "high": 0.5}),
        r"grid\[1\].search.losses.tversky.alpha: value -1.0 is invalid for loss 'tversky'",
    ),
    (
        lambda b, c: b["search"]["losses"]["tversky"].update(beta={"one_minus": "gamma"}),
        r"grid\[1\].search.losses.tversky.beta.one_minus: 'gamma' is not a sampled parameter",
    ),
    (
        lambda b, c: b["search"]["losses"]["tversky"].update(gama={"low": 1.0, "high": 2.0}),
        r"grid\[1\].search.losses.tversky.gama: value 1.0 is invalid for loss 'tversky'",
    ),
    (
        lambda b, c: b.update(seeds=[0, 1]),
        r"grid\[1\].seeds: a search block trains configuration i",
    ),
    (
        lambda b, c: c["grid"].append({"losses": ["dice"]}),
        r"grid\[2\] trains loss 'dice' on \(synth_vessels, unet4, fraction 1\) without a search",
    ),
    (
        lambda b, c: c["grid"].append(
            {"losses": ["dice"], "search": {"n": 3, "keep": 1, "training": {}}}
        ),
        r"grid\[2\].search: loss 'dice' is also searched by grid\[1\] with a different space",
    ),
    (
        # derived keys cannot collide with defined ones: the schema forbids '~' in loss keys
        lambda b, c: c["losses"].update({"ce~hp00": {"name": "ce"}}),
        r"key 'losses': 'ce~hp00' does not match",
    ),
    (lambda b, c: b["search"].pop("keep"), r"key 'grid.1.search': 'keep' is a required property"),
    (lambda b, c: b["search"].update(n=0), r"key 'grid.1.search.n': 0 is less than the minimum"),
]


@pytest.mark.parametrize("mutate, msg", SEARCH_CASES)
def test_bad_search_message(mutate, msg):
    with pytest.raises(ConfigError, match=msg):
        _check(_search_mutate(mutate))


def test_studies_without_search_resolve_as_before():
    """No search block: every run's spec is the study's own loss and training entries (the
    expansion the workflow had before search blocks existed)."""
    for path in [REPO / "config" / "config.yaml", REPO / ".test" / "config.yaml"]:
        cfg = load_study(path)
        for spec in _specs(cfg).values():
            assert spec["loss_cfg"] == dict(sorted(cfg["losses"][spec["loss"]].items()))
            assert spec["training"] == dict(sorted(cfg["training"].items()))


def test_per_dataset_folds_give_paper003_retinal_split_and_conflicts_are_named():
    """Paper 003 l.695-697: Retinal Lesions 70/10/20 beside 80/10/10 polyps needs a per-dataset
    fold count; a trained fold the dataset does not have is refused, naming key and value."""
    from segbench.reporting.estimate import split_sizes

    study = yaml.safe_load((REPO / "config" / "studies" / "paper003.yaml").read_text())
    validate_schema(study)
    check_study(study)
    rl = study["datasets"]["retinal_lesions"]
    n_train, n_val, n_test = split_sizes(1593, rl["folds"], rl["val_fraction"], 1.0)
    assert (n_train, n_val, n_test) == (1114, 160, 319)
    assert abs(n_test / 1593 - 0.2) < 0.005 and abs(n_val / 1593 - 0.1) < 0.005

    cfg = copy.deepcopy(TINY)
    first = next(iter(cfg["datasets"]))
    cfg["datasets"][first]["folds"] = 2
    cfg["run_folds"] = [0, 2]
    cfg["folds"] = max(int(cfg.get("folds", 3)), 3)
    with pytest.raises(ConfigError, match=rf"datasets\.{first}\.folds = 2, but fold 2"):
        _check(cfg)
    cfg["datasets"][first]["folds"] = 1
    with pytest.raises(ConfigError, match="folds"):
        _check(cfg)
