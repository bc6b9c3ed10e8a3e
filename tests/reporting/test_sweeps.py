"""Parameter sweeps (paper 003 Fig. 3 lambda, paper 004 Fig. 3 alpha) and the training curves
of paper 002 Fig. 5: sweep resolution against the loss constructors, the DAG-time request
against the resolved sweep on every shipped study, curve points against an independent
computation, and each figure built from a tiny fake run set, byte-identical across builds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from segbench.config import expand_runs, load_study
from segbench.reporting.figures import (
    alpha_ablation,
    lambda_ablation,
    load_histories,
    optimizer_label,
    sweep_curves,
    sweep_references,
    training_curve_panels,
    training_curves,
)
from segbench.reporting.sweeps import (
    SWEEPS,
    get_sweep,
    parameter_sweeps,
    reference_losses,
    requests_sweep_figure,
    sweeps_from_runs,
)
from tests.conftest import REPO
from tests.reporting.conftest import make_tidy

STUDIES = sorted(p.stem for p in (REPO / "config" / "studies").glob("*.yaml"))
PNG = b"\x89PNG\r\n\x1a\n"


def _run_json(path: Path, run: dict, loss_cfg: dict, training: dict, status: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "run": run,
        "config": {"loss": run["loss"], "loss_cfg": loss_cfg, "training": training},
        "result": {"status": status},
    }
    path.write_text(json.dumps(record))
    return path


# ------------------------------------------------------------------------------ sweeps


def test_swept_values_resolve_as_the_losses_are_built():
    losses = {
        "rce_l1": {"name": "rce", "penalty": "l1"},  # lam default 1.0 (L1)
        "rce_l1_01": {"name": "rce", "penalty": "l1", "lam": 0.1},
        "rce_kl": {"name": "rce", "penalty": "kl"},  # lam default 0.1 (KL): one value only
        "dice_ce": {"name": "dice_ce"},  # w_dice default 1.0 (constructor signature)
        "dice_ce_01": {"name": "dice_ce", "w_dice": 0.1},
        "dice_ce_fg": {"name": "dice_ce", "w_dice": 0.1, "include_background": False},
        "balance": {"name": "balance", "alpha": 0.3},
        "ce": {"name": "ce"},
    }
    lam = parameter_sweeps(losses, "lambda")
    assert dict(zip(lam["loss"], lam["lam"], strict=True)) == {
        "rce_l1": 1.0, "rce_l1_01": 0.1, "dice_ce": 1.0, "dice_ce_01": 0.1,
    }  # fmt: skip
    assert set(lam["label"]) == {"rce", "dice_ce"}
    assert parameter_sweeps(losses, "alpha").empty  # one alpha value
    alpha = parameter_sweeps({**losses, "balance_b": {"name": "balance"}}, "alpha")
    assert sorted(alpha["alpha"]) == [0.3, 0.5]  # the constructor's default 0.5
    with pytest.raises(ValueError, match="unknown sweep 'beta'; known: lambda, alpha"):
        get_sweep("beta")


def test_labels_name_only_the_parameters_that_differ():
    losses = {f"{p}_{v}": {"name": "rce", "penalty": p, "lam": v, "tau": 10.0}
              for p in ("l1", "kl") for v in (0.1, 1.0)}  # fmt: skip
    sw = parameter_sweeps(losses)
    assert set(sw["label"]) == {"rce(penalty=l1)", "rce(penalty=kl)"}


@pytest.mark.parametrize("name", STUDIES)
@pytest.mark.parametrize("sweep", list(SWEEPS))
def test_dag_time_request_equals_the_resolved_sweep(name, sweep):
    cfg = load_study(REPO / "config" / "studies" / f"{name}.yaml")
    used = {r.loss for r in expand_runs(cfg)} & set(cfg["losses"])
    losses = {k: cfg["losses"][k] for k in sorted(used)}
    assert requests_sweep_figure(losses, sweep) == (not parameter_sweeps(losses, sweep).empty)


def test_paper_blocks_request_their_figures():
    p3 = load_study(REPO / "config" / "studies" / "paper003.yaml")
    sw = parameter_sweeps(p3["losses"], "lambda")
    # Fig. 3: RCE-L1, RCE-KL, DiceCE, LogDiceCE, DBCE (the Dice-related ones in both forms: binary
    # foreground-only on Retinal Lesions), each at 5 lambdas
    assert sw.groupby("label")["lam"].nunique().to_dict() == {
        "dbce": 5, "dbce(include_background=False)": 5, "dice_ce": 5, "dice_ce(include_background=False)": 5, "log_dice_ce": 5,
        "log_dice_ce(include_background=False)": 5, "rce(penalty=kl)": 5, "rce(penalty=l1)": 5,
    }  # fmt: skip
    p4 = load_study(REPO / "config" / "studies" / "paper004.yaml")
    alpha = parameter_sweeps(p4["losses"], "alpha")
    assert sorted(alpha["alpha"]) == [0.0, *np.round(np.arange(0.1, 1.0, 0.1), 1)]
    used = {r.loss for r in expand_runs(p4)}
    assert reference_losses(p4["grid"], p4["losses"], used, "alpha") == [
        "ce", "focal", "dice", "tversky", "combo", "unified_focal", "rce",
    ]  # fmt: skip
    assert reference_losses(p3["grid"], p3["losses"], used, "lambda") == []  # no dashed lines


# ----------------------------------------------------------------------- sweep figures

LAM = {"rce_01": 0.1, "rce_1": 1.0, "rce_10": 10.0}


def _sweep_runs(root: Path, losses: dict[str, dict]) -> list[Path]:
    """A run.json per (loss, seed, fold) of make_tidy's default grid on dataset dsA."""
    out = []
    for loss, cfg in losses.items():
        for s in (0, 1):
            for k in (0, 1, 2):
                run = {"dataset": "dsA", "model": "m", "loss": loss, "fraction": "1",
                       "seed": s, "fold": k}  # fmt: skip
                path = root / loss / f"s{s}" / f"k{k}" / "run.json"
                out.append(_run_json(path, run, cfg, {"optimizer": "adam"}, "completed"))
    return out


def test_sweep_curves_are_the_run_means(tmp_path):
    losses = {k: {"name": "rce", "lam": v} for k, v in LAM.items()}
    losses["ce"] = {"name": "ce"}
    tidy = make_tidy(datasets={"dsA": ["bg", "fg"]}, losses={**dict.fromkeys(LAM, 0.01), "ce": 0})
    sweeps = sweeps_from_runs(_sweep_runs(tmp_path, losses))
    curves = sweep_curves(tidy, sweeps, "lambda", "iou", 100.0)
    # one point per (fraction, lam): fractions "1" and "0.5" x 3 lambdas
    assert len(curves) == 6 and set(curves["lam"]) == set(LAM.values())
    runs = tidy.drop_duplicates(["dataset", "model", "loss", "fraction", "seed", "fold"])
    for _, row in curves.iterrows():
        loss = next(k for k, v in LAM.items() if v == row["lam"])
        vals = 100 * runs[(runs["loss"] == loss) & (runs["fraction"] == row["fraction"])]["miou"]
        assert row["n"] == len(vals) == 6
        assert row["mean"] == pytest.approx(float(np.mean(vals)))
        assert row["sd"] == pytest.approx(float(np.std(vals, ddof=1)))
    refs = sweep_references(tidy, ["ce"], "dice", 100.0)
    ce = runs[runs["loss"] == "ce"]
    for _, row in refs.iterrows():
        vals = 100 * ce[ce["fraction"] == row["fraction"]]["mdice"]
        assert row["mean"] == pytest.approx(float(np.mean(vals)))


def test_a_family_at_one_value_in_a_cell_draws_no_curve_there():
    tidy = make_tidy(
        datasets={"dsA": ["bg", "fg"], "dsB": ["bg", "fg"]}, losses=dict.fromkeys(LAM, 0)
    )
    sweeps = parameter_sweeps({k: {"name": "rce", "lam": v} for k, v in LAM.items()})
    # dsB keeps only one lambda: its cell is no curve (a main-table loss on another dataset)
    tidy = tidy[(tidy["dataset"] == "dsA") | (tidy["loss"] == "rce_1")]
    assert set(sweep_curves(tidy, sweeps)["dataset"]) == {"dsA"}


def test_sweep_figures_from_fake_runs_are_byte_identical(tmp_path):
    lam_losses = {k: {"name": "rce", "lam": v} for k, v in LAM.items()}
    alpha_losses = {f"bal_{a}": {"name": "balance", "alpha": a} for a in (0.1, 0.5, 0.9)}
    effects = {**dict.fromkeys(LAM, 0.01), **dict.fromkeys(alpha_losses, 0.02), "ce": 0.0}
    tidy = make_tidy(datasets={"dsA": ["bg", "fg"]}, losses=effects)
    runs = _sweep_runs(tmp_path / "runs", {**lam_losses, **alpha_losses, "ce": {"name": "ce"}})
    lam, alpha = sweeps_from_runs(runs, "lambda"), sweeps_from_runs(runs, "alpha")
    for i in (1, 2):
        lambda_ablation(tidy, lam, tmp_path / f"lam{i}.png")
        alpha_ablation(tidy, alpha, tmp_path / f"alpha{i}.png", reference=["ce"])
    for stem in ("lam", "alpha"):
        first = (tmp_path / f"{stem}1.png").read_bytes()
        assert first[:8] == PNG and len(first) > 5000
        assert first == (tmp_path / f"{stem}2.png").read_bytes(), stem
    alpha_ablation(tidy, alpha, tmp_path / "noref.png")
    assert (tmp_path / "noref.png").read_bytes() != (tmp_path / "alpha1.png").read_bytes()
    alpha_ablation(tidy, parameter_sweeps({"ce": {"name": "ce"}}, "alpha"), tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG  # placeholder


# --------------------------------------------------------------------- training curves


def _history_runs(root: Path) -> tuple[list[Path], list[Path]]:
    """Paper 002 Fig. 5 in small: dice and dice_surgery, SGD + Nesterov and Adam, 2 seeds,
    10 epochs, validation every other epoch; one Adam run diverged."""
    jsons, hists = [], []
    optimizers = {"sgd": {"optimizer": "sgd", "nesterov": True}, "adam": {"optimizer": "adam"}}
    for opt, training in optimizers.items():
        for loss in ("dice", "dice_surgery"):
            for s in (0, 1):
                key = f"{loss}~{opt}"
                run = {"dataset": "inbreast", "model": "res_unet", "loss": key, "fraction": "1",
                       "seed": s, "fold": 0}  # fmt: skip
                d = root / opt / loss / f"s{s}"
                status = "diverged" if (opt, loss, s) == ("adam", "dice", 1) else "completed"
                jsons.append(_run_json(d / "run.json", run, {"name": loss}, training, status))
                rng = np.random.default_rng([s, len(jsons)])
                epochs = np.arange(1, 11)
                hist = pd.DataFrame({
                    "epoch": epochs,
                    "train_loss": 1 / epochs + rng.uniform(0, 0.05, 10),
                    "val_miou": np.where(epochs % 2 == 0, 1 - 1 / epochs, np.nan),
                    "lr": 0.01, "val_loss": np.nan,
                })  # fmt: skip
                hist.to_csv(d / "history.csv", index=False)
                hists.append(d / "history.csv")
    return jsons, hists


def test_histories_carry_identity_and_optimizer(tmp_path):
    jsons, hists = _history_runs(tmp_path)
    h = load_histories(jsons, hists)
    assert len(h) == 7 * 10  # the diverged run is left out
    assert sorted(h["optimizer"].unique()) == ["Adam", "SGD + Nesterov momentum"]
    assert sorted(h["loss"].unique()) == ["dice", "dice_surgery"]  # base losses of the keys
    assert h["loss_key"].nunique() == 4
    assert optimizer_label({"optimizer": "sgd"}) == "SGD"
    with pytest.raises(ValueError, match="8 run.json files but 7 history.csv files"):
        load_histories(jsons, hists[:-1])


def test_training_curves_from_fake_runs_are_byte_identical(tmp_path):
    jsons, hists = _history_runs(tmp_path / "runs")
    for i in (1, 2):
        training_curves(load_histories(jsons, hists), tmp_path / f"tc{i}.png", ["dice"])
    first = (tmp_path / "tc1.png").read_bytes()
    assert first[:8] == PNG and len(first) > 5000
    assert first == (tmp_path / "tc2.png").read_bytes()
    training_curves(pd.DataFrame(), tmp_path / "empty.png")
    assert (tmp_path / "empty.png").read_bytes()[:8] == PNG  # placeholder


def _fig5_runs(root: Path, variants: dict[str, dict]) -> tuple[list[Path], list[Path]]:
    """Paper 002 Fig. 5 as the study trains it (blocks fig5_sgd / fig5_adam): FIVES, Dice and
    Dice - Surgery, one seed, each run's training carrying its variant identity (run.json
    ``config.training.variant``, :meth:`segbench.config.VariantConfig.identity`)."""
    jsons, hists = [], []
    for tag, overrides in variants.items():
        for i, loss in enumerate(("dice", "dice_surgery")):
            key = f"{loss}~{tag}"
            run = {"dataset": "fives", "model": "res_unet", "loss": key, "fraction": "1",
                   "seed": 0, "fold": 0}  # fmt: skip
            variant = {"key": key, "loss": loss, "tag": tag, "overrides": overrides}
            training = {"optimizer": "sgd", "nesterov": True, **overrides, "variant": variant}
            d = root / tag / loss
            jsons.append(_run_json(d / "run.json", run, {"name": loss}, training, "completed"))
            epochs = np.arange(1, 6)
            pd.DataFrame({
                "epoch": epochs, "train_loss": 1 / (epochs + i), "val_miou": 1 - 1 / (epochs + i),
                "lr": 0.01, "val_loss": np.nan,
            }).to_csv(d / "history.csv", index=False)  # fmt: skip
            hists.append(d / "history.csv")
    return jsons, hists


FIG5 = {"sgd": {"optimizer": "sgd", "nesterov": True}, "adam": {"optimizer": "adam", "lr": 1e-3}}


def test_fig5_panels_in_the_papers_order_from_the_variant_identity(tmp_path):
    jsons, hists = _fig5_runs(tmp_path, {"adam": FIG5["adam"], "sgd": FIG5["sgd"]})
    h = load_histories(jsons, hists)
    assert sorted(h["loss"].unique()) == ["dice", "dice_surgery"]  # base losses: one colour each
    assert sorted(h["variant"].unique()) == ["adam", "sgd"]
    # SGD + Nesterov first, then Adam (Fig. 5 caption order), titled by the optimiser only
    assert training_curve_panels(h) == [
        ("fives", "SGD + Nesterov momentum", "sgd", "SGD + Nesterov momentum"),
        ("fives", "Adam", "adam", "Adam"),
    ]
    # the curves drawn are the histories' values: one run per (loss, optimiser), so the line is
    # the run's own history (mean over one run) with no band
    cell = h[(h["variant"] == "adam") & (h["loss"] == "dice_surgery")]
    np.testing.assert_allclose(cell.groupby("epoch")["train_loss"].mean(), 1 / np.arange(2, 7))
    for i in (1, 2):
        training_curves(h, tmp_path / f"fig5_{i}.png", ["dice", "dice_surgery"])
    first = (tmp_path / "fig5_1.png").read_bytes()
    assert first[:8] == PNG and len(first) > 5000
    assert first == (tmp_path / "fig5_2.png").read_bytes()


def test_two_variants_of_one_optimiser_get_a_column_each(tmp_path):
    low = {"optimizer": "adam", "lr": 1e-4}
    jsons, hists = _fig5_runs(tmp_path, {**FIG5, "adam_low": low})
    panels = training_curve_panels(load_histories(jsons, hists))
    assert [p[2:] for p in panels] == [
        ("sgd", "SGD + Nesterov momentum"), ("adam", "Adam (adam)"),
        ("adam_low", "Adam (adam_low)"),
    ]  # fmt: skip
    # runs without a variant (a study-wide optimiser) beside a tagged one of the same optimiser
    plain = load_histories(*_history_runs(tmp_path / "plain"))
    both = pd.concat([plain, load_histories(jsons[2:4], hists[2:4]).assign(dataset="inbreast")])
    titles = [p[3] for p in training_curve_panels(both) if p[1] == "Adam"]
    assert titles == ["Adam (study training)", "Adam (adam)"]
