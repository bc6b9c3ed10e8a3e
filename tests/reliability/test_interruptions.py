"""Real SIGKILLs in the real workflow, then ``snakemake --rerun-incomplete``: every run completes,
no output is truncated or stale, and every table equals the uninterrupted reference (CPU, fixed
seeds).

1. Jobs kill themselves (``segbench.faults``) at four points in one grid: mid-epoch, half-way
   through a checkpoint write, half-way through the probabilities write, half-way through the
   metrics write. A checkpoint planted by an attacker on the way is refused, not unpickled.
2. ``snakemake`` itself is killed mid-grid with its whole process group; the rerun does exactly
   the jobs whose outputs are missing or marked incomplete, and nothing else.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import snakemake_bin
from tests.reliability.conftest import (
    CORE_JOBS,
    STUDY,
    TARGETS,
    assert_outputs_intact,
    assert_same_results,
    executed_count,
    incomplete_outputs,
    job_keys,
    new_workdir,
    parse_dag,
    parse_jobs,
    run_dir,
    runs_of,
    smk,
    smk_env,
)

pytestmark = pytest.mark.slow

FAULTS = ["checkpoint_write@1", "step@2", "probs_write@3", "metrics_write"]


class _Payload:
    """Pickles to ``os.mkdir(<path>)``: runs on any load that is not weights-only."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_jobs_killed_at_four_points_then_rerun_equals_reference(reference, tmp_path):
    wd = new_workdir(tmp_path / "wd", STUDY)
    runs = runs_of(STUDY)
    markers = tmp_path / "markers"
    markers.mkdir()
    env = smk_env(
        SEGBENCH_FAULT=",".join(FAULTS), SEGBENCH_FAULT_ONCE=str(markers / "{point}.fired")
    )
    pwned = tmp_path / "pwned"
    planted: Path | None = None
    history = []
    seen_tmp: set[Path] = set()
    for attempt in range(1, 6):
        proc = smk(wd, "--keep-going", "--rerun-incomplete", *TARGETS, env=env, check=False)
        fired = sorted(p.name.split(".")[0] for p in markers.iterdir())
        counts = assert_outputs_intact(wd)
        history.append((attempt, proc.returncode, fired, counts))
        if proc.returncode == 0:
            break
        # A killed job leaves no output of its own: Snakemake deletes the outputs of a failed
        # job, and the half-written file is a hidden temp file, never the output itself.
        for run in runs:
            d = run_dir(wd, run)
            for name in ("checkpoint.pt", "probs.npz", "metrics.json"):
                for tmp in set(d.glob(f".{name}.*.tmp")) - seen_tmp:
                    seen_tmp.add(tmp)
                    if name != "checkpoint.pt":
                        assert not (d / name).exists(), f"{d / name} kept after a kill"
        if planted is None:
            # A run whose training has not started yet gets a malicious checkpoint.pt: it must
            # be refused (weights_only=True), the payload must not run, training starts fresh.
            for run in runs:
                d = run_dir(wd, run)
                if not (d / "run.json").exists() and not (d / "checkpoint.pt").exists():
                    d.mkdir(parents=True, exist_ok=True)
                    torch.save({"digest": "x", "model": _Payload(str(pwned))}, d / "checkpoint.pt")
                    planted = d
                    break
    else:
        pytest.fail(f"the workflow never completed: {history}")

    failed = [h for h in history if h[1] != 0]
    assert failed, history  # at least one invocation was killed
    assert sorted(p.name for p in markers.iterdir()) == sorted(
        f"{f.split('@')[0]}.fired" for f in FAULTS
    ), history  # each of the four faults fired exactly once
    assert planted is not None and not pwned.exists()
    log = (wd / "logs").rglob("pack.log")
    assert any("ignoring unreadable checkpoint" in p.read_text() for p in log)

    # Resumes happened where a checkpoint existed: after the kill at step@2 (checkpoint of
    # epoch 1) and at probs_write@3 (last checkpoint: epoch 2).
    resumed = sorted(
        json.loads((run_dir(wd, r) / "run.json").read_text())["result"]["resumed_from_epoch"] or 0
        for r in runs
    )
    assert 1 in resumed and 2 in resumed, resumed
    assert not list((wd / "results").rglob("checkpoint.pt"))  # removed once a run completes

    assert_same_results(wd, reference, runs)
    assert "Nothing to be done" in smk(wd, "--dry-run", *TARGETS).stdout
    print(f"fault-injection invocations (attempt, rc, faults fired, files): {history}")


def _expected_rerun(wd: Path, dag: list[dict], incomplete: set[str]) -> list[tuple]:
    """The jobs a rerun must do, from what is on disk after the kill and the full DAG: a job
    reruns when one of its outputs is missing or marked incomplete, or when a job producing one
    of its inputs reruns."""
    producer = {out: i for i, job in enumerate(dag) for out in job["output"]}
    redo: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, job in enumerate(dag):
            if i in redo:
                continue
            lost = any(not (wd / o).exists() or o in incomplete for o in job["output"])
            if lost or any(producer.get(x) in redo for x in job["input"]):
                redo.add(i)
                changed = True
    return job_keys([(dag[i]["rule"], dag[i]["wildcards"]) for i in redo])


def test_snakemake_killed_mid_grid_reruns_only_missing_jobs(reference, tmp_path):
    wd = new_workdir(tmp_path / "wd", STUDY)
    runs = runs_of(STUDY)
    metrics = [run_dir(wd, r) / "metrics.json" for r in runs]
    log = (tmp_path / "snakemake.log").open("w")
    proc = subprocess.Popen(
        [snakemake_bin(), "--cores", "2", *TARGETS],
        cwd=wd,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=smk_env(),
        start_new_session=True,  # its own process group: the kill takes its jobs too
    )
    try:
        deadline = time.time() + 400
        while True:
            done = sum(p.exists() for p in metrics)
            if 1 <= done < len(metrics):
                break
            assert proc.poll() is None, "snakemake finished before it could be killed"
            assert time.time() < deadline, "no metrics.json appeared in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    deadline = time.time() + 30
    while True:  # wait until no process of the group is left (the killed jobs included)
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.time() < deadline, "processes of the killed snakemake survived"
        time.sleep(0.1)
    assert proc.returncode == -signal.SIGKILL
    n_metrics = sum(p.exists() for p in metrics)
    assert 1 <= n_metrics < len(metrics)
    counts = assert_outputs_intact(wd)

    # The killed snakemake left its lock: a plain rerun refuses to start (and does nothing);
    # --unlock is the documented first step.
    assert list((wd / ".snakemake" / "locks").glob("*.lock"))
    locked = smk(wd, "--rerun-incomplete", *TARGETS, check=False)
    assert locked.returncode != 0 and "cannot be locked" in locked.stdout.lower(), locked.stdout
    smk(wd, "--unlock")
    incomplete = incomplete_outputs(wd)
    if incomplete:  # outputs of the jobs that were running: Snakemake refuses to trust them
        plain = smk(wd, "--dry-run", *TARGETS, check=False)
        assert plain.returncode != 0 and "incomplete" in plain.stdout.lower(), plain.stdout[-2000:]

    dag = parse_dag(smk(wd, "--dry-run", "--forceall", "--rerun-incomplete", *TARGETS).stdout)
    assert len(dag) == CORE_JOBS
    planned = job_keys(parse_jobs(smk(wd, "--dry-run", "--rerun-incomplete", *TARGETS).stdout))
    expected = _expected_rerun(wd, dag, incomplete)
    assert planned == expected, (planned, expected)
    assert 0 < len(planned) < CORE_JOBS  # not the whole grid again

    out = smk(wd, "--rerun-incomplete", *TARGETS).stdout
    assert executed_count(out) == len(planned), out[-3000:]
    assert_same_results(wd, reference, runs)
    print(
        f"snakemake killed with {n_metrics}/{len(metrics)} runs evaluated, "
        f"{len(incomplete)} outputs marked incomplete, files {counts}; "
        f"rerun: {len(planned)} of {CORE_JOBS} jobs"
    )
