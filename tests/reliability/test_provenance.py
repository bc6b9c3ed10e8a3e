"""Provenance: every run folder records the resolved config, git commit, package versions, device
and seed; Snakemake's rerun triggers (params, code, input) catch a changed config or script, and
exactly the affected jobs rerun after editing one loss's parameters, one dataset entry, one seed
list or one script."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import REPO
from tests.reliability.conftest import (
    STUDY,
    TARGETS,
    job_keys,
    parse_jobs,
    run_dir,
    runs_of,
    smk,
)

pytestmark = pytest.mark.slow


def test_every_run_folder_holds_its_provenance(reference):
    from segbench.config import validate_schema
    from segbench.smk import run_spec
    from segbench.train import RunSpec

    cfg = validate_schema(copy.deepcopy(STUDY))
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    runs = runs_of(STUDY)
    for run in runs:
        info = json.loads((run_dir(reference, run) / "run.json").read_text())
        wc = SimpleNamespace(**{k: str(v) for k, v in run.items()})
        spec = run_spec(cfg, wc)
        assert info["config"] == spec  # the resolved config (schema defaults filled in)
        assert info["config"]["training"]["optimizer"] == "adam"  # a default, not in STUDY
        assert info["config_digest"] == RunSpec(**spec).digest()
        assert info["run"] == {k: run[k] for k in info["run"]} and info["seed"] == run["seed"]
        # the workflow copy is no git checkout; the package it imported is this repository
        assert info["git"]["commit"] == "unknown" and info["git"]["path"] == str(reference)
        package = info["git"]["package"]
        assert package["commit"] == head and isinstance(package["dirty"], bool)
        for pkg in ("torch", "numpy", "segbench", "snakemake"):
            assert info["packages"][pkg] == importlib.metadata.version(pkg)
        assert info["device"]["device"] == "cpu" and info["device"]["cpu_threads"] >= 1
        timings = json.loads((run_dir(reference, run) / "timings.json").read_text())
        assert timings["wall_seconds"] > 0 and "wall_seconds" not in info


def _rerun_plan(wd: Path, tmp_path: Path, cfg: dict) -> tuple[list[tuple], str]:
    path = tmp_path / f"edited_{len(list(tmp_path.glob('edited_*')))}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    # targets first: --configfile takes every argument after it as a config file
    out = smk(wd, *TARGETS, "--dry-run", "--configfile", str(path)).stdout
    return job_keys(parse_jobs(out)), out


def _keys(*jobs: tuple[str, dict]) -> list[tuple]:
    return job_keys([(rule, {k: str(v) for k, v in wc.items()}) for rule, wc in jobs])


def _cell(ds: str, loss: str, seed: int = 0) -> dict:
    return {"dataset": ds, "model": "unet4", "loss": loss, "fraction": "1", "seed": seed}


REPORT = [("aggregate", {}), ("paper_table", {"dataset": "synth_organs"})]
REPORT += [("paper_table", {"dataset": "synth_vessels"})]


def test_rerun_triggers_rerun_exactly_the_affected_jobs(reference, tmp_path):
    # the reference itself is up to date
    assert "Nothing to be done" in smk(reference, "--dry-run", *TARGETS).stdout

    # 1. one loss's parameters: that loss's training and evaluation, then the tables
    cfg = copy.deepcopy(STUDY)
    cfg["losses"]["dicece"] = {"name": "dice_ce", "w_dice": 0.3, "w_ce": 0.7}
    plan, out = _rerun_plan(reference, tmp_path, cfg)
    cell = _cell("synth_organs", "dicece")
    assert plan == _keys(
        ("train_pack", cell),
        *(("evaluate", {**cell, "fold": k}) for k in (0, 1)),
        *REPORT,
    ), out[-3000:]
    assert "Params have changed since last execution" in out

    # 2. one dataset entry (the generator seed of synth_vessels): that dataset only, from the
    #    preparation on; synth_organs' runs are untouched
    cfg = copy.deepcopy(STUDY)
    cfg["datasets"]["synth_vessels"]["seed"] = 1
    plan, out = _rerun_plan(reference, tmp_path, cfg)
    cell = _cell("synth_vessels", "ce")
    assert plan == _keys(
        ("prepare_synthetic", {"dataset": "synth_vessels"}),
        ("splits", {"dataset": "synth_vessels"}),
        ("train_pack", cell),
        *(("evaluate", {**cell, "fold": k}) for k in (0, 1)),
        *REPORT,
    ), out[-3000:]

    # 3. one seed list (grid block 2 gains seed 1): only the new runs, then the tables
    cfg = copy.deepcopy(STUDY)
    cfg["grid"][1]["seeds"] = [0, 1]
    plan, out = _rerun_plan(reference, tmp_path, cfg)
    cell = _cell("synth_vessels", "ce", seed=1)
    assert plan == _keys(
        ("train_pack", cell),
        *(("evaluate", {**cell, "fold": k}) for k in (0, 1)),
        *REPORT,
    ), out[-3000:]


def test_code_change_reruns_the_jobs_of_that_script(fresh_copy):
    script = fresh_copy / "scripts" / "evaluate.py"
    script.write_text(script.read_text() + "\n# a change to the evaluation code\n")
    out = smk(fresh_copy, "--dry-run", *TARGETS).stdout
    runs = runs_of(STUDY)
    assert job_keys(parse_jobs(out)) == _keys(*(("evaluate", run) for run in runs), *REPORT), out[
        -3000:
    ]
    assert "Code has changed since last execution" in out
