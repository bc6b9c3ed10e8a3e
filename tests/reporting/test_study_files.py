"""Contract between the paper studies' files and the reporting code: on a fake tidy table with
every run of a study (class names from config/datasets.yaml), every published value of
config/paper_results/<study>.csv finds its reproduced cell, class and metric, and every claim of
config/claims/<study>.yaml can be evaluated. Random values: only the joins are checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from segbench.config import SEARCH_SEP, expand_runs, load_study
from segbench.reporting.comparison import claims_table, published_comparison, read_published
from tests.conftest import REPO

STUDIES = ["paper000", "paper002", "paper003", "paper004"]  # 2D studies with registry classes
RUN_METRICS = ("miou", "mdice", "nll", "ece", "mce", "brier")


def fake_tidy(cfg: dict) -> pd.DataFrame:
    registry = yaml.safe_load((REPO / "config/datasets.yaml").read_text())["datasets"]
    surface = bool(cfg["evaluation"].get("surface"))
    rng = np.random.default_rng(0)
    rows = []
    for run in expand_runs(cfg):
        entry = cfg["datasets"][run.dataset]
        classes = registry[entry.get("registry_id", run.dataset)]["classes"]
        # Search configurations (``dice~hp07``) appear under their base loss key, as in the
        # tables' input ``tidy_selected.csv`` (segbench.reporting.search.selected_tidy).
        base = {**run.wildcards(), "status": "completed"}
        base["loss"] = run.loss.split(SEARCH_SEP)[0]
        base.update({m: rng.random() for m in RUN_METRICS})
        if surface:
            base.update(mhd95=10 * rng.random(), mhd=20 * rng.random(), mnsd=rng.random())
        for c, name in enumerate(classes):
            row = {
                **base,
                "class": c,
                "class_name": name,
                "iou": rng.random(),
                "dice": rng.random(),
            }
            if surface:
                row.update(hd95=10 * rng.random(), hd=20 * rng.random(), nsd=rng.random())
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.parametrize("study", STUDIES)
def test_published_numbers_and_claims_join_the_runs(study):
    cfg = load_study(REPO / "config/studies" / f"{study}.yaml")
    tidy = fake_tidy(cfg)
    published = read_published(str(REPO / "config/paper_results" / f"{study}.csv"))
    out = published_comparison(tidy, published)
    assert len(out) > 0
    bad = out[~out["status"].isin(["compared", "no published value"])]
    assert bad.empty, bad[["dataset", "model", "loss", "metric", "class", "status"]].head()
    claims = yaml.safe_load((REPO / "config/claims" / f"{study}.yaml").read_text())
    table = claims_table(tidy, claims)
    skipped = table[table["verdict"] == "not evaluated"]
    assert skipped.empty, skipped[["id", "note"]]
    assert set(table["id"]) == {str(c["id"]) for c in claims}
