"""Random hyper-parameter search (paper 002): the selection step (unit tests on hand-made run
tables) and a tiny search (n = 3, keep = 2, synthetic data, 2 epochs x 2 steps) through the real
Snakemake DAG to the selection table and the metrics table built from the kept runs.

Paper 002 (../shared/papers/002_bd5429997cd2b0b6.txt): Table 1 "Average test set performance of
the 5 best runs out of 25 (selected through validation dice scores)" (l.95); Table 2 "Best out of
10 runs" (l.122). Conventions compared: the closed forms stated in segbench.reporting.search
(pooled Dice = 2 IoU / (1 + IoU) for one scored class; kept = top ``keep`` by mean validation
score, ties to the lower index; mean ± std over the kept runs).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from segbench.reporting.search import read_search_runs, select_configs, selected_tidy
from tests.conftest import REPO, copy_workflow, run_snakemake
from tests.reliability.conftest import parse_jobs

SEARCH = REPO / ".test" / "search.yaml"


def _runs(scores: dict[int, list[float]], status: dict[int, str] | None = None) -> pd.DataFrame:
    rows = []
    for cfg, vals in scores.items():
        for fold, v in enumerate(vals):
            last = fold == len(vals) - 1  # `status` applies to a configuration's last fold
            st = (status or {}).get(cfg, "completed") if last else "completed"
            rows.append(
                {
                    "dataset": "d", "model": "m", "loss": "dice", "fraction": "1",
                    "config": cfg, "search_loss": f"dice~hp{cfg:02d}", "seed": cfg,
                    "fold": fold, "status": st,
                    "val_miou": v if st == "completed" else np.nan,
                    "val_dice": 2 * v / (1 + v) if st == "completed" else np.nan,
                    "training.lr": 0.01 * (cfg + 1),
                }
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_select_keeps_top_k_by_mean_validation_score():
    # config 3 has the best single fold but the 4th-best mean; 1 and 4 tie (lower index first);
    # 5 diverged in one fold: not eligible whatever its other fold scored
    runs = _runs(
        {0: [0.5, 0.5], 1: [0.7, 0.7], 2: [0.2, 0.2], 3: [0.9, 0.1], 4: [0.6, 0.8], 5: [0.99, 0]},
        status={5: "diverged"},
    )
    sel = select_configs(runs, {"dice": 3})
    assert list(sel["config"]) == [1, 4, 0, 3, 2, 5]  # by rank, ineligible last
    assert list(sel["rank"].astype("float").fillna(-1)) == [1, 2, 3, 4, 5, -1]
    assert list(sel[sel["kept"]]["config"]) == [1, 4, 0]
    assert sel.set_index("config").loc[3, "val_miou"] == pytest.approx(0.5)
    assert not sel.set_index("config").loc[5, "eligible"]
    assert list(sel["n_runs"]) == [2] * 6 and sel.set_index("config").loc[5, "n_completed"] == 1
    assert sel.set_index("config").loc[4, "training.lr"] == pytest.approx(0.05)
    # fewer eligible configurations than keep: all eligible ones are kept
    few = select_configs(_runs({0: [0.3], 1: [0.4]}, status={1: "diverged"}), {"dice": 2})
    assert list(few["kept"]) == [True, False]
    with pytest.raises(ValueError, match="no search.keep for loss 'dice'"):
        select_configs(runs, {"tversky": 1})


def _run_json(path: Path, loss: str, cfg: int, best: float, n_classes: int, bg: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "run": {"dataset": "d", "model": "m", "loss": f"{loss}~hp{cfg:02d}",
                        "fraction": "1", "seed": cfg, "fold": 0},
                "config": {"training": {"lr": 0.1, "search": {
                    "key": f"{loss}~hp{cfg:02d}", "loss": loss, "config": cfg, "seed": 0,
                    "sampled": {"training.lr": 0.1}}},
                    "evaluation": {"include_background": bg}},
                "result": {"status": "completed", "best_val": best, "best_epoch": 2},
                "num_classes": n_classes,
            }
        )
    )  # fmt: skip
    return path


def test_validation_dice_from_the_recorded_miou(tmp_path: Path):
    one = _run_json(tmp_path / "a/run.json", "dice", 0, 0.6, n_classes=2, bg=False)
    two = _run_json(tmp_path / "b/run.json", "dice", 1, 0.6, n_classes=2, bg=True)
    runs = read_search_runs([one, two]).set_index("config")
    assert runs.loc[0, "val_dice"] == pytest.approx(2 * 0.6 / 1.6)  # one scored class
    assert np.isnan(runs.loc[1, "val_dice"])  # two scored classes: no pooled Dice recorded
    assert runs.loc[1, "val_miou"] == 0.6 and runs.loc[0, "training.lr"] == 0.1
    plain = _run_json(tmp_path / "c/run.json", "dice", 2, 0.6, n_classes=2, bg=False)
    record = json.loads(plain.read_text())
    del record["config"]["training"]["search"]  # a valid run.json of a run outside the search
    plain.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="no config.training.search"):
        read_search_runs([plain])


def test_selected_tidy_relabels_kept_runs_and_passes_others():
    base = {
        "dataset": "d",
        "model": "m",
        "fraction": "1",
        "fold": 0,
        "class": 1,
        "status": "completed",
    }
    tidy = pd.DataFrame(
        [
            {**base, "loss": "ce", "seed": 0, "mdice": 0.1},
            {**base, "loss": "dice~hp00", "seed": 0, "mdice": 0.2},
            {**base, "loss": "dice~hp01", "seed": 1, "mdice": 0.3},
            {**base, "loss": "dice~hp02", "seed": 2, "mdice": 0.4},
        ]
    )
    sel = select_configs(_runs({0: [0.1], 1: [0.3], 2: [0.2]}), {"dice": 2})
    out = selected_tidy(tidy, sel)
    assert list(zip(out["loss"], out["seed"], out["mdice"], strict=True)) == [
        ("ce", 0, 0.1),
        ("dice", 1, 0.3),
        ("dice", 2, 0.4),
    ]
    clash = pd.concat([tidy, pd.DataFrame([{**base, "loss": "dice", "seed": 1, "mdice": 0.9}])])
    with pytest.raises(ValueError, match="collide with non-search runs"):
        selected_tidy(clash, sel)


@pytest.mark.slow
def test_tiny_search_through_the_dag(tmp_path: Path):
    cfg = yaml.safe_load(SEARCH.read_text())
    wd = copy_workflow(tmp_path / "wf", SEARCH)
    targets = ["results/tables/search_selection.csv", "results/tables/synth_vessels_metrics.csv"]
    run_snakemake(wd, *targets)

    sel = pd.read_csv(wd / "results/tables/search_selection.csv", dtype={"fraction": str})
    assert len(sel) == 2 * 3 and set(sel["loss"]) == {"dice", "tversky"}
    for loss, g in sel.groupby("loss"):
        assert g["kept"].sum() == 2 and sorted(g["config"]) == [0, 1, 2]
        best = g.sort_values(["val_miou", "config"], ascending=[False, True])["config"][:2]
        assert set(g[g["kept"]]["config"]) == set(best)
        for _, row in g.iterrows():
            run = json.loads(
                (wd / f"results/runs/synth_vessels/unet4/{row['search_loss']}/f1"
                 f"/s{row['config']}/k0/run.json").read_text()
            )  # fmt: skip
            search = run["config"]["training"]["search"]
            assert search["config"] == row["config"] and search["loss"] == loss
            assert run["config"]["training"]["lr"] == search["sampled"]["training.lr"]
            assert row["training.lr"] == pytest.approx(search["sampled"]["training.lr"])
            m = run["result"]["best_val"]
            assert row["val_miou"] == pytest.approx(m)
            assert row["val_dice"] == pytest.approx(2 * m / (1 + m))  # foreground only
            if loss == "tversky":
                lc = run["config"]["loss_cfg"]
                assert (
                    lc["beta"] == pytest.approx(1 - lc["alpha"])
                    and lc["alpha"] == row["loss.alpha"]
                )

    tidy = pd.read_csv(wd / "results/tables/tidy.csv", dtype={"fraction": str})
    kept = pd.read_csv(wd / "results/tables/tidy_selected.csv", dtype={"fraction": str})
    assert set(kept["loss"]) == {"ce", "dice", "tversky"}
    runs = tidy.drop_duplicates(["loss", "seed", "fold"]).set_index("loss")
    metrics = pd.read_csv(wd / "results/tables/synth_vessels_metrics.csv", dtype={"fraction": str})
    for loss in ("dice", "tversky"):
        keys = sel[(sel["loss"] == loss) & sel["kept"]]["search_loss"]
        assert sorted(kept[kept["loss"] == loss]["seed"].unique()) == sorted(
            sel[(sel["loss"] == loss) & sel["kept"]]["config"]
        )
        # the table cell is mean ± std (ddof 1) over the kept runs' test mDSC, in percent,
        # printed with 2 decimals; `runs` counts the kept runs
        vals = runs.loc[list(keys), "mdice"].to_numpy() * 100
        row = metrics[metrics["loss"] == loss]
        assert len(row) == 1 and int(row["runs"].iloc[0]) == 2
        mean, std = (
            float(v) for v in re.sub(r"\*|</?u>", "", row["mDSC (%) ↑"].iloc[0]).split("±")
        )
        assert mean == pytest.approx(vals.mean(), abs=0.006)
        assert std == pytest.approx(vals.std(ddof=1), abs=0.006)
    assert (wd / "logs/search_selection/search_selection.log").exists()

    # growing the search (n = 3 -> 4) trains only configuration 3 of each loss
    cfg["grid"][1]["search"]["n"] = 4
    grown = tmp_path / "grown.yaml"
    grown.write_text(yaml.safe_dump(cfg))
    out = run_snakemake(wd, *targets, "--dry-run", "--configfile", str(grown)).stdout
    trained = {(wc["loss"], wc["seed"]) for rule, wc in parse_jobs(out) if rule == "train_pack"}
    assert trained == {("dice~hp03", "3"), ("tversky~hp03", "3")}, out[-3000:]
