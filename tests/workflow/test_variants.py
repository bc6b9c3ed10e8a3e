"""Grid blocks with ``training`` overrides (paper 002 Fig. 5, App. D: "Training curves with
SGD+Nesterov Momentum and Adam optimizers for a dice loss training and a model with the same
hyperparameters trained with our dice surgery training objective"): derived loss keys
``{loss}~{tag}``, the resolved training of their runs, the config errors, the engine's Adam
(first step against the closed form of Kingma & Ba 2015, Alg. 1), and a tiny SGD vs Adam study
through the real Snakemake DAG to the runs' run.json and the training-curves figure.
"""

from __future__ import annotations

import copy
import json
import types
from pathlib import Path

import pytest
import torch
import yaml

from segbench import smk
from segbench.config import (
    ConfigError,
    base_loss,
    check_study,
    curve_runs,
    expand_runs,
    run_spec,
    validate_schema,
    variant_configs,
)
from segbench.runspec import Run
from segbench.train.optim import build_optimizer
from tests.conftest import REPO, copy_workflow, run_snakemake
from tests.reliability.conftest import parse_dag

TINY = REPO / ".test" / "config.yaml"
SGD = {"optimizer": "sgd", "nesterov": True, "lr": 0.01, "momentum": 0.99}
ADAM = {"optimizer": "adam", "lr": 0.001}


def _study(*blocks: dict, training: dict | None = None) -> dict:
    """The CI study on SGD + Nesterov, one dataset, with ``blocks`` as its grid."""
    cfg = yaml.safe_load(TINY.read_text())
    cfg["datasets"] = {"synth_vessels": cfg["datasets"]["synth_vessels"]}
    cfg["fractions"] = [1.0]
    cfg["training"] = {**cfg["training"], **SGD, **(training or {})}
    if blocks:
        cfg["grid"] = [copy.deepcopy(b) for b in blocks]
    validate_schema(cfg)
    return cfg


def _checked(*blocks: dict) -> dict:
    cfg = _study(*blocks)
    check_study(cfg)
    return cfg


MAIN = {"label": "main", "losses": ["ce", "dice"]}
FIG5_ADAM = {"label": "fig5_adam", "losses": ["dice"], "tag": "adam", "training": ADAM}


def test_variant_runs_get_derived_keys_and_their_overrides():
    cfg = _checked(MAIN, FIG5_ADAM)
    runs = expand_runs(cfg)
    plain = expand_runs(_checked(MAIN))
    assert sorted({r.loss for r in runs}) == ["ce", "dice", "dice~adam"]
    assert set(plain) < set(runs) and len(runs) == len(plain) + 2  # 2 folds of dice~adam
    (variant,) = variant_configs(cfg).values()
    assert (variant.key, variant.loss, variant.tag) == ("dice~adam", "dice", "adam")
    assert base_loss("dice~adam") == base_loss("dice~hp07") == base_loss("dice") == "dice"

    adam = run_spec(cfg, Run("synth_vessels", "unet4", "dice~adam", "1", 0, 0))
    sgd = run_spec(cfg, Run("synth_vessels", "unet4", "dice", "1", 0, 0))
    assert adam.loss_cfg == sgd.loss_cfg == cfg["losses"]["dice"]
    assert (adam.training["optimizer"], adam.training["lr"]) == ("adam", 0.001)
    assert (sgd.training["optimizer"], sgd.training["lr"]) == ("sgd", 0.01)
    assert adam.training["variant"] == {
        "key": "dice~adam", "loss": "dice", "tag": "adam", "overrides": ADAM,
    }  # fmt: skip
    # every key the block does not override is the study's ("the same hyperparameters")
    same = {k: v for k, v in sgd.training.items() if k not in ADAM}
    assert {k: adam.training[k] for k in same} == same
    assert "variant" not in sgd.training
    # the plain runs' params do not change when a variant block is added
    for r in plain:
        wc = types.SimpleNamespace(**r.wildcards())
        assert smk.run_spec(cfg, wc) == smk.run_spec(_checked(MAIN), wc)


def test_curve_runs_are_the_variants_and_the_study_training_runs_of_their_cells():
    cfg = _checked(MAIN, FIG5_ADAM)
    runs, variants = expand_runs(cfg), variant_configs(cfg)
    # dice~adam beside the study's (SGD) dice runs of the same cells; ce has no variant
    assert {(r.loss, r.fold) for r in curve_runs(runs, variants)} == {
        ("dice~adam", 0), ("dice~adam", 1), ("dice", 0), ("dice", 1),
    }  # fmt: skip
    plain = _checked(MAIN)
    assert curve_runs(expand_runs(plain), variant_configs(plain)) == expand_runs(plain)


def test_a_block_key_replaces_the_studys_key_whole():
    noise = {"noise": {"std": 0.1, "p": 0.5}}
    cfg = _study(MAIN, {**FIG5_ADAM, "training": {"augment": noise}},
                 training={"augment": {"gamma": {"range": [0.7, 1.5], "p": 0.3}}})  # fmt: skip
    check_study(cfg)
    spec = run_spec(cfg, Run("synth_vessels", "unet4", "dice~adam", "1", 0, 0))
    assert spec.training["augment"] == noise  # not merged with the study's gamma


def test_one_tag_in_several_blocks_and_beside_a_search():
    search = {
        "label": "search", "losses": ["dice"],
        "search": {"n": 2, "keep": 1, "training": {"lr": {"low": 1e-3, "high": 1e-1}}},
    }  # fmt: skip
    other = {**FIG5_ADAM, "label": "adam_ce", "losses": ["ce"]}
    cfg = _checked(search, FIG5_ADAM, other)  # dice is searched, dice~adam is not: no mix
    keys = {r.loss for r in expand_runs(cfg)}
    assert keys == {"dice~hp00", "dice~hp01", "dice~adam", "ce~adam"}


@pytest.mark.parametrize(
    ("block", "match"),
    [
        ({**FIG5_ADAM, "training": {"optimiser": "adam"}},
         r"grid\[1\]\.training\.optimiser: not a training key \(did you mean 'optimizer'\?\); "
         r"allowed: .*\bweight_decay\b"),
        ({**FIG5_ADAM, "training": {"optimizer": "rmsprop"}},
         r"grid\[1\]\.training\.optimizer'.*'rmsprop' is not one of \['adam', 'adamw', 'sgd'\]"),
        ({**FIG5_ADAM, "training": {"lr": -1.0}}, r"grid\[1\]\.training\.lr'.*-1\.0"),
        ({**FIG5_ADAM, "training": {"augment": {"noise": {"std": 0.1, "p": 2}}}},
         r"grid\[1\]\.training\.augment"),
        ({**FIG5_ADAM, "training": {"crop": 64}},
         r"grid\[1\]\.training\.crop: 64 is larger than the 32x32 images of dataset "
         r"'synth_vessels'"),
        ({**FIG5_ADAM, "training": {"crop": 30}},
         r"grid\[1\]\.training\.crop: 30 for model 'unet4' \(unet\)"),
        ({k: v for k, v in FIG5_ADAM.items() if k != "tag"},
         r"grid\[1\]\.training: a block with training overrides needs a 'tag'"),
        ({k: v for k, v in FIG5_ADAM.items() if k != "training"},
         r"grid\[1\]\.tag: 'adam' without 'training'"),
        ({**FIG5_ADAM, "tag": "hp07"},
         r"grid\[1\]\.tag: 'hp07': loss keys \{loss\}~hp07 would collide with the search"),
        ({**FIG5_ADAM, "search": {"n": 2, "keep": 1}},
         r"grid\[1\]: 'training' overrides and 'search' in one block are not supported"),
    ],
    ids=["unknown_key", "bad_enum", "bad_value", "bad_augment", "crop_size", "crop_divisor",
         "no_tag", "tag_alone",
         "search_tag", "with_search"],
)  # fmt: skip
def test_bad_training_blocks_name_the_key(block, match):
    cfg = _study(MAIN, block)
    with pytest.raises(ConfigError, match=match):
        check_study(cfg)


def test_one_tag_two_trainings_is_refused():
    lower = {**FIG5_ADAM, "label": "adam_low", "losses": ["ce"], "training": {**ADAM, "lr": 1e-4}}
    cfg = _study(FIG5_ADAM, lower)
    with pytest.raises(ConfigError, match=r"grid\[1\]\.tag: 'adam' is also the tag of grid\[0\]"):
        check_study(cfg)


def test_tag_outside_the_key_alphabet_is_a_schema_error():
    cfg = yaml.safe_load(TINY.read_text())
    cfg["grid"] = [{**FIG5_ADAM, "tag": "ad~am"}]
    with pytest.raises(ConfigError, match=r"grid\.0\.tag'.*does not match"):
        validate_schema(cfg)


def test_adam_first_step_is_the_closed_form():
    """Kingma & Ba (2015), Alg. 1: after one step with bias correction m_hat = g and
    v_hat = g^2, so theta_1 = theta_0 - lr * g / (|g| + eps); weight decay (L2) adds wd *
    theta_0 to g. Computed in float64."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2).double()
    theta0 = [p.detach().clone() for p in model.parameters()]
    opt = build_optimizer(
        model, {"optimizer": "adam", "lr": 0.01, "weight_decay": 0.1, "momentum": 0.9,
                "nesterov": False},
    )  # fmt: skip
    assert type(opt) is torch.optim.Adam
    model(torch.randn(4, 3, dtype=torch.float64)).pow(2).sum().backward()
    params = list(model.parameters())
    grads = [p.grad.detach().clone() + 0.1 * t for p, t in zip(params, theta0, strict=True)]
    opt.step()
    for p, t, g in zip(model.parameters(), theta0, grads, strict=True):
        expected = t - 0.01 * g / (g.abs() + 1e-8)
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=1e-12)


@pytest.mark.slow
def test_sgd_vs_adam_blocks_through_the_dag(tmp_path: Path):
    """The study trains CE and Dice with SGD + Nesterov; a block tagged adam trains Dice with
    Adam into its own run folders; run.json records the overridden training; the
    training-curves figure is in the default target and reads the Adam runs and the SGD runs
    of the same cell (not CE's)."""
    cfg = _study(MAIN, FIG5_ADAM, training={"epochs": 2, "val_every": 1})
    cfg["run_folds"] = [0]
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(cfg))
    check_study(cfg)
    wd = copy_workflow(tmp_path / "wf", study)

    jobs = parse_dag(run_snakemake(wd, "--dry-run").stdout)
    (fig,) = [j for j in jobs if j["rule"] == "training_curves"]
    want = {f"results/runs/synth_vessels/unet4/{loss}/f1/s0/k0/{f}" for loss in ("dice~adam", "dice")
            for f in ("run.json", "history.csv")}  # fmt: skip
    assert set(fig["input"]) == want

    run_snakemake(wd, "results/figures/training_curves.png")
    for loss, opt in (("dice~adam", "adam"), ("dice", "sgd")):
        record = json.loads(
            (wd / f"results/runs/synth_vessels/unet4/{loss}/f1/s0/k0/run.json").read_text()
        )
        training = record["config"]["training"]
        assert record["run"]["loss"] == loss and training["optimizer"] == opt
        assert record["config"]["loss_cfg"] == cfg["losses"]["dice"]
        assert training["lr"] == (0.001 if opt == "adam" else 0.01)
        assert training["nesterov"] is True  # the study's value, kept by the Adam block too
        assert training.get("variant", {}).get("tag") == ("adam" if "~" in loss else None)
    png = (wd / "results/figures/training_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    log = (wd / "logs/training_curves/training_curves.log").read_text()
    assert "['Adam', 'SGD + Nesterov momentum']" in log
