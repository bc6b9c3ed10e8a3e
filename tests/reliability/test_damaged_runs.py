"""Damaged and deleted run outputs, byte-identical reruns and the workflow's own provenance,
each through the real workflow (``snakemake`` in a copy of it; issue 17).

1. A truncated ``best.pt`` / ``probs.npz`` / ``history.csv`` makes the evaluate job rerun (its
   input changed) and stop with one line naming the file (its sha256 differs from the one
   ``run.json`` recorded) and the recovery; a deleted run folder is redone by the default target
   and a table named alone as target warns.
2. A garbage ``probs.npz``, ``metrics.json`` or split file: one line naming the path and the
   recovery, no traceback.
3. Two fresh runs of the same study write every scientific output byte for byte again (the
   timings are in ``timings.csv`` / ``timings.json``).
4. ``run.json``'s ``git`` is the workflow's tree (a git repo here whose commit differs from the
   package's), with the package's tree named apart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.reliability.conftest import (
    SCIENTIFIC,
    executed_count,
    new_workdir,
    parse_jobs,
    run_dir,
    runs_of,
    smk,
    study,
)

pytestmark = pytest.mark.slow

TINY = study(
    datasets={"synth_organs": {"source": "synthetic", "n": 8, "size": 32}},
    losses={"ce": {"name": "ce"}},
    grid=None,
    training={
        "epochs": 2,
        "batch_size": 4,
        "steps_per_epoch": 1,
        "lr": 0.001,
        "crop": 32,
        "checkpoint_every": 1,
        "device": "cpu",
        "threads": 1,
    },
)
del TINY["grid"]
TIDY = "results/tables/tidy.csv"


def _git(wd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=wd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """The tiny study run once to its tidy table, in a workflow copy that is a git repo of its
    own (committed before the run: its tree is clean)."""
    wd = new_workdir(tmp_path_factory.mktemp("damaged") / "wd", TINY)
    (wd / ".gitignore").write_text("results/\nlogs/\ndata/\n.snakemake/\n")
    _git(wd, "init", "-q")
    _git(wd, "add", "-A")
    _git(wd, "commit", "-qm", "workflow copy")
    out = smk(wd, TIDY).stdout
    assert executed_count(out) == 6, out[-3000:]  # prepare, splits, train_pack, 2 evaluate, tidy
    return wd


@pytest.fixture()
def copy(finished: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(finished, dest, symlinks=True)
    return dest


def _runs() -> list[dict]:
    return runs_of(TINY)


def _one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """The run failed; its output has exactly one ``error:`` line holding every fragment, and
    no Python traceback."""
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout, proc.stdout[-6000:]
    lines = [ln for ln in proc.stdout.splitlines() if " error: " in ln or ln.startswith("error: ")]
    assert len(set(lines)) == 1, proc.stdout[-6000:]
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


@pytest.mark.parametrize("name", ["best.pt", "probs.npz", "history.csv"])
def test_truncated_training_output_is_named_with_the_recovery(copy: Path, name: str) -> None:
    d = run_dir(copy, _runs()[0])
    path = d / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    proc = smk(copy, TIDY, check=False)
    rel = str(path.relative_to(copy))
    line = _one_line_error(proc, rel, "sha256", "delete the run folder", "snakemake --cores N")
    if name == "probs.npz":  # checked before it is opened
        assert "damaged" in line
    # the recovery the line gives: delete the folder, run the default target (dry run: plan)
    shutil.rmtree(d)
    plan = parse_jobs(smk(copy, "--dry-run").stdout)
    rules = sorted(rule for rule, _ in plan)
    assert "train_pack" in rules and "evaluate" in rules and "aggregate" in rules, rules


def test_deleted_run_folder_is_redone_by_the_default_target(copy: Path, finished: Path) -> None:
    run = _runs()[1]
    shutil.rmtree(run_dir(copy, run))
    # a table named alone as target: Snakemake leaves it, segbench says so
    alone = smk(copy, "--dry-run", TIDY)
    assert "lack outputs although results/tables/tidy.csv exists" in alone.stdout, alone.stdout
    plan = parse_jobs(smk(copy, "--dry-run").stdout)
    cell = {k: str(v) for k, v in run.items() if k != "fold"}
    assert ("train_pack", cell) in plan, plan
    assert ("evaluate", {k: str(v) for k, v in run.items()}) in plan, plan
    assert any(rule == "aggregate" for rule, _ in plan), plan
    # the default target's run files and tables, built: the tidy table comes back identical
    smk(copy, *(str(run_dir(copy, run).relative_to(copy) / f) for f in SCIENTIFIC), TIDY)
    assert (copy / TIDY).read_bytes() == (finished / TIDY).read_bytes()
    assert "Nothing to be done" in smk(copy, "--dry-run", TIDY).stdout


@pytest.mark.parametrize("name", ["probs.npz", "metrics.json"])
def test_garbage_run_file_gives_one_line(copy: Path, name: str) -> None:
    d = run_dir(copy, _runs()[0])
    path = d / name
    path.write_bytes(b"\x00garbage, not a " + name.encode() + b"\n")
    if name == "probs.npz":  # a run.json without checksums (an older run): the reader decides
        record = json.loads((d / "run.json").read_text())
        record.pop("outputs")
        (d / "run.json").write_text(json.dumps(record))
    proc = smk(copy, TIDY, check=False)
    what = "not a readable .npz archive" if name == "probs.npz" else "not a valid metrics.json"
    _one_line_error(proc, str(path.relative_to(copy)), what, "delete the run folder")


def test_garbage_split_file_gives_one_line(copy: Path) -> None:
    split = copy / "results" / "splits" / "synth_organs.json"
    split.write_text('{"dataset": "synth_organs", "folds": [')
    proc = smk(copy, TIDY, check=False)
    _one_line_error(proc, "results/splits/synth_organs.json", "not valid JSON", "Delete")


def test_two_fresh_runs_are_byte_identical(finished: Path, tmp_path: Path) -> None:
    wd = new_workdir(tmp_path / "again", TINY)
    smk(wd, TIDY)
    assert (wd / TIDY).read_bytes() == (finished / TIDY).read_bytes()
    for run in _runs():
        a, b = run_dir(wd, run), run_dir(finished, run)
        for name in SCIENTIFIC:
            assert (a / name).read_bytes() == (b / name).read_bytes(), a / name
        assert "seconds" not in (a / "history.csv").read_text().splitlines()[0]
        assert (a / "timings.csv").read_text().startswith("epoch,seconds\n")
        assert json.loads((a / "timings.json").read_text())["wall_seconds"] > 0
        metrics = json.loads((a / "metrics.json").read_text())
        assert "wall_seconds" not in metrics["result"]
        assert "resumed_from_epoch" not in metrics["result"]


def test_run_json_records_the_workflow_tree(finished: Path) -> None:
    head = _git(finished, "rev-parse", "HEAD")
    package_head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert head != package_head
    for run in _runs():
        git = json.loads((run_dir(finished, run) / "run.json").read_text())["git"]
        assert git["commit"] == head and git["dirty"] is False
        assert Path(git["path"]).resolve() == finished.resolve()
        assert git["package"]["commit"] == package_head
        assert Path(git["package"]["path"]).resolve() == REPO.resolve()
        assert isinstance(git["package"]["dirty"], bool)
