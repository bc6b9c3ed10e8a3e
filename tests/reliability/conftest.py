"""Shared pieces of the reliability tests: the small study, one uninterrupted reference run of it
(session-scoped: every module compares against the same run), Snakemake helpers and the checks
that compare two result trees.

The study (``STUDY``): synth_organs x 3 losses (``ce``, ``dicece`` and ``blowup``, a Dice+CE whose
CE weight of 3e38 overflows float32 so training diverges at epoch 1, deterministically) plus
synth_vessels x ``ce`` (a second grid block, so edits to one dataset or one block can be seen to
leave the rest alone); 1 model, 1 fraction, 1 seed, 2 folds, 3 epochs with a checkpoint after
every epoch: 8 runs, 4 training jobs (one ``train_pack`` per cell); 19 Snakemake jobs build
the tidy table and the paper tables (``TARGETS``).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake_bin

STUDY: dict[str, Any] = {
    "study": "reliability",
    "split_seed": 0,
    "folds": 2,
    "seeds": [0],
    "fractions": [1.0],
    "val_fraction": 0.25,
    "datasets": {
        "synth_organs": {"source": "synthetic", "n": 12, "size": 32},
        "synth_vessels": {"source": "synthetic", "n": 12, "size": 32},
    },
    "models": {"unet4": {"name": "unet", "base_channels": 4, "depth": 2}},
    "losses": {
        "ce": {"name": "ce"},
        "dicece": {"name": "dice_ce", "w_dice": 0.5, "w_ce": 0.5},
        # 3e38 * CE (about 1.39 with 4 classes) overflows float32: inf at the first step.
        "blowup": {"name": "dice_ce", "w_dice": 0.0, "w_ce": 3.0e38},
    },
    "grid": [
        {"datasets": ["synth_organs"], "label": "all losses"},
        {"datasets": ["synth_vessels"], "losses": ["ce"], "seeds": [0], "label": "one loss"},
    ],
    "training": {
        "epochs": 3,
        "batch_size": 4,
        "steps_per_epoch": 2,
        "lr": 0.001,
        "crop": 32,
        "checkpoint_every": 1,
        "device": "cpu",
        "threads": 1,
    },
}
DATASETS = ["synth_organs", "synth_vessels"]
# What the tests build: the tidy table and the paper tables (the reporting stage's other
# figures and statistics are left out to keep the runs short; test_divergence builds `all`).
TARGETS = [
    "results/tables/tidy.csv",
    *(f"results/tables/{ds}_table.{ext}" for ds in DATASETS for ext in ("csv", "md", "tex")),
]
CORE_JOBS = 2 + 2 + 4 + 8 + 1 + 2  # prepare, splits, train_pack, evaluate, aggregate, paper_table
RUN_KEYS = ("dataset", "model", "loss", "fraction", "seed", "fold")
TRAIN_OUT = ("best.pt", "history.csv", "probs.npz", "run.json")
EVAL_OUT = ("metrics.json", "per_image.csv", "reliability.csv")
SCIENTIFIC = (*(f for f in TRAIN_OUT if f != "run.json"), *EVAL_OUT)
"""A run folder's scientific outputs: byte-identical across reruns and resumes (run.json holds
the host, command and resume epoch; timings.csv / timings.json the seconds)."""


def study(**changes: Any) -> dict[str, Any]:
    """A deep copy of STUDY (top-level keys replaced by ``changes``)."""
    cfg = copy.deepcopy(STUDY)
    cfg.update(copy.deepcopy(changes))
    return cfg


def runs_of(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a study, as wildcard dicts (segbench's own grid expansion)."""
    from segbench.config import check_study, expand_runs, validate_schema

    cfg = copy.deepcopy(cfg)
    validate_schema(cfg)
    check_study(cfg)
    return [r.wildcards() for r in expand_runs(cfg)]


def run_dir(wd: Path, run: dict[str, Any]) -> Path:
    from segbench.paths import RUN_DIR

    return wd / RUN_DIR.format(**run)


def cell_of(run: dict[str, Any]) -> tuple:
    return tuple(str(run[k]) for k in RUN_KEYS[:-1])


def new_workdir(dest: Path, cfg: dict[str, Any]) -> Path:
    """A copy of the workflow in ``dest`` whose config/config.yaml is ``cfg``."""
    dest.mkdir(parents=True, exist_ok=True)
    wd = copy_workflow(dest)
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return wd


def smk_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for key in ("SEGBENCH_FAULT", "SEGBENCH_FAULT_ONCE"):
        env.pop(key, None)
    env.update(extra)
    return env


def smk(
    wd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    check: bool = True,
    cores: int = 2,
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """Run snakemake in ``wd`` (output captured, stdout and stderr together in ``.stdout``)."""
    proc = subprocess.run(
        [snakemake_bin(), "--cores", str(cores), *args],
        cwd=wd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        env=env or smk_env(),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-8000:]}"
        )
    return proc


def parse_jobs(listing: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run (or a run) lists."""
    return [(job["rule"], job["wildcards"]) for job in parse_dag(listing)]


def parse_dag(listing: str) -> list[dict[str, Any]]:
    """Every job a dry run lists: ``{"rule", "wildcards", "input", "output"}``."""
    jobs = []
    for block in re.split(r"\n(?=[ \t]*(?:local)?rule \w+:)", listing):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not m:
            continue
        fields = {}
        for key in ("wildcards", "input", "output"):
            hit = re.search(rf"\n\s+{key}: (.*)", block)
            fields[key] = hit.group(1).split(", ") if hit else []
        jobs.append(
            {
                "rule": m.group(1),
                "wildcards": dict(kv.split("=", 1) for kv in fields["wildcards"]),
                "input": fields["input"],
                "output": fields["output"],
            }
        )
    return jobs


def job_keys(jobs: list[tuple[str, dict[str, str]]]) -> list[tuple]:
    """Sortable identity of each job: the rule and its wildcard values."""
    return sorted((rule, tuple(sorted(wc.items()))) for rule, wc in jobs)


def executed_count(run_output: str) -> int:
    """How many jobs a (non-dry) run executed, from its final 'N of N steps (100%) done'."""
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", run_output)
    if done:
        return int(done[-1][0])
    if "Nothing to be done" in run_output:
        return 0
    raise AssertionError(f"no completion line in the snakemake output:\n{run_output[-3000:]}")


def incomplete_outputs(wd: Path) -> set[str]:
    """Output files Snakemake has marked incomplete (a job started on them and never finished).

    Snakemake 9 keeps one marker per output under ``.snakemake/incomplete/``, named by the
    url-safe base64 of the path, split into chunks of at most NAME_MAX (earlier chunks as
    ``@``-prefixed folders).
    """
    root = wd / ".snakemake" / "incomplete"
    out = set()
    if not root.is_dir():
        return out
    for marker in root.rglob("*"):
        if not marker.is_file() or marker.name == "migration_underway":
            continue
        parts = marker.relative_to(root).parts
        b64 = "".join(p.removeprefix("@") for p in parts)
        path = base64.urlsafe_b64decode(b64.encode()).decode()
        out.add(os.path.relpath(path, wd) if os.path.isabs(path) else path)
    return out


# ----------------------------------------------------------------------------- comparisons


def table_files(wd: Path) -> list[Path]:
    tables = [wd / "results" / "tables" / "tidy.csv"]
    for ds in DATASETS:
        tables += [wd / "results" / "tables" / f"{ds}_table.{ext}" for ext in ("csv", "md", "tex")]
    return tables


def assert_same_results(wd: Path, ref: Path, runs: list[dict[str, Any]]) -> None:
    """Every table byte-identical to the reference; every run's scientific outputs too
    (probabilities, best weights, history, metrics: the timings are in timings.csv/json)."""
    import torch

    for table in table_files(ref):
        rel = table.relative_to(ref)
        assert (wd / rel).read_bytes() == table.read_bytes(), f"{rel} differs from the reference"
    for run in runs:
        a, b = run_dir(wd, run), run_dir(ref, run)
        with np.load(a / "probs.npz") as za, np.load(b / "probs.npz") as zb:
            assert np.array_equal(za["probs"], zb["probs"]), a
            assert list(za["ids"]) == list(zb["ids"]), a
        wa = torch.load(a / "best.pt", map_location="cpu", weights_only=True)
        wb = torch.load(b / "best.pt", map_location="cpu", weights_only=True)
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), a
        for name in SCIENTIFIC:
            assert (a / name).read_bytes() == (b / name).read_bytes(), a / name


def assert_outputs_intact(wd: Path) -> dict[str, int]:
    """No output file under results/ is truncated: each one that exists parses completely.

    Returns counts of files checked and of leftover temporary files (``.<name>.<random>.tmp``
    from atomic writes that a SIGKILL interrupted; never named like an output).
    """
    import pandas as pd
    import torch

    counts = {"checked": 0, "tmp_leftovers": 0}
    results = wd / "results"
    if not results.exists():
        return counts
    for path in sorted(results.rglob("*")):
        if not path.is_file():
            continue
        name = path.name
        if name.endswith(".tmp"):
            assert name.startswith("."), path  # a temp file never looks like an output
            counts["tmp_leftovers"] += 1
            continue
        assert path.stat().st_size > 0, f"{path} is empty"
        if name.endswith(".json"):
            json.loads(path.read_text())
        elif name.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                for key in z.files:
                    z[key]
        elif name.endswith(".pt"):
            torch.load(path, map_location="cpu", weights_only=True)
        elif name.endswith(".csv"):
            pd.read_csv(path)
        elif name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        counts["checked"] += 1
    return counts


# ----------------------------------------------------------------------------- the reference


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """The study run once, uninterrupted, by ``snakemake --cores 2``."""
    wd = new_workdir(tmp_path_factory.mktemp("reference"), STUDY)
    out = smk(wd, *TARGETS).stdout
    assert executed_count(out) == CORE_JOBS, out[-3000:]
    return wd


@pytest.fixture()
def fresh_copy(tmp_path: Path, reference: Path) -> Path:
    """A copy of the finished reference folder (results, metadata and all), to edit freely."""
    dest = tmp_path / "copy"
    shutil.copytree(reference, dest, symlinks=True)
    return dest


def set_path(path: str, value: object) -> Callable[[dict], None]:
    """Mutator setting ``cfg[a][b]... = value`` for a dotted ``path``."""

    def mutate(cfg: dict) -> None:
        *parents, last = path.split(".")
        node = cfg
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value

    return mutate
