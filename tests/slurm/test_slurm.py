"""The workflow on a real Slurm cluster through ``profiles/slurm`` (snakemake-executor-plugin-slurm).

Needs a running Slurm (``.ci/run`` starts a one-node cluster with ``ci/slurm-cluster.sh``). Without
one the test is skipped, except under ``CI=true``, where a missing cluster is a failure.

What it checks, on the study ``tests/slurm/config.yaml`` (every rule, 4 runs):
- the run through Slurm (groups ``data``, ``train``, ``report``: a handful of Slurm jobs) exits 0;
- a running training job is preempted (``scontrol requeue``: Slurm reruns it under the same id,
  ``slurm-requeue`` in the profile) after it wrote a checkpoint, and the rerun resumes from it;
  set SEGBENCH_SLURM_REQUEUE_TEST=0 to leave this step out (saves ~40 s);
- the job is then cancelled with ``scancel`` after a new checkpoint; Snakemake resubmits it
  (``retries`` in the profile) with more memory and time, and the retried training resumes from
  the checkpoint;
- the final outputs are complete and equal a local run's (tables, metrics, per-image metrics,
  reliability, test probabilities, training history), wall-time fields excepted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import BIN, REPO, copy_workflow, snakemake_bin

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

CONFIG = Path(__file__).with_name("config.yaml")
PROFILE = REPO / "profiles" / "slurm"
SLURM_RUN_TIMEOUT = 540  # seconds for the whole Slurm run, retry included (measured: 4-6 min)
USABLE_NODE_STATES = ("idle", "mixed", "allocated", "completing")


def slurm_problem() -> str | None:
    """None when a Slurm controller answers and a node can run jobs, else what is wrong."""
    if shutil.which("sinfo") is None:
        return "`sinfo` not found (no Slurm client installed)"
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "`sinfo` timed out"
    if proc.returncode != 0:
        return f"`sinfo` failed: {proc.stderr.strip()[:300]}"
    states = [s.rstrip("*~#$@+!%^-") for s in proc.stdout.split()]
    if not any(s in USABLE_NODE_STATES for s in states):
        return f"no node can run jobs (sinfo states: {states})"
    return None


def slurm_has_gpus() -> bool:
    """Whether some node offers GPUs (gres); ci/slurm-cluster.sh can fake them (FAKE_GPUS=1)."""
    proc = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=20)
    return "gpu" in proc.stdout


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    problem = slurm_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"CI=true but no Slurm cluster is reachable: {problem}. "
            ".ci/run starts one with ci/slurm-cluster.sh up."
        )
    pytest.skip(f"no Slurm cluster reachable ({problem}); start one: sudo ci/slurm-cluster.sh up")


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Slurm jobs inherit this environment (sbatch --export=ALL) and run `python -m snakemake`.
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _group_of(rule: str) -> str | None:
    """The pack a rule travels in (the `group:` directives in workflow/rules say the same):
    data preparation, training + evaluation, and every later (report) rule."""
    if rule == "all" or rule.startswith(("download", "extract")):  # target / local rules
        return None
    if rule.startswith(("prepare", "splits")):
        return "data"
    if rule.startswith(("train", "evaluate")):  # train, train_pack, ... and their evaluation
        return "train"
    return "report"


def _group_args(wd: Path) -> list[str]:
    proc = subprocess.run(
        [snakemake_bin(), "--list-rules"],
        cwd=wd,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        check=True,
    )
    rules = [r for r in proc.stdout.split() if re.fullmatch(r"\w+", r)]
    return [f"{r}={g}" for r in rules if (g := _group_of(r))]


def _our_jobs(prefix: str) -> list[dict[str, str]]:
    proc = subprocess.run(
        ["squeue", "-h", "-o", "%i|%j|%T|%k"], capture_output=True, text=True, timeout=20
    )
    rows = [
        dict(zip(("id", "name", "state", "comment"), line.split("|", 3), strict=False))
        for line in proc.stdout.splitlines()
        if line.count("|") >= 3
    ]
    return [r for r in rows if r["name"].startswith(prefix)]


def _stop(proc: subprocess.Popen) -> None:
    """Stop a Snakemake run: SIGINT (it cancels its Slurm jobs), then SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _wait(proc: subprocess.Popen, deadline: float, what: str, check):
    """Poll ``check()`` every 0.2 s until it returns something truthy; fail if the Snakemake
    run ends first or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the Slurm run ended while waiting for {what}")
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _running_train_job(prefix: str) -> dict[str, str] | None:
    jobs = [j for j in _our_jobs(prefix) if j["state"] == "RUNNING" and "train" in j["comment"]]
    return jobs[0] if jobs else None


def _checkpoints(wd: Path, newer_than: float = 0.0) -> list[Path]:
    out = []
    for c in wd.glob("results/runs/**/checkpoint.pt"):
        try:
            if c.stat().st_mtime > newer_than:
                out.append(c)
        except FileNotFoundError:  # deleted by the engine at the end of the run
            pass
    return sorted(out)


def _wait_gone(prefix: str, job_id: str) -> None:
    """Until Slurm has stopped the job's processes (it is no longer RUNNING/COMPLETING)."""
    for _ in range(240):
        if not any(
            j["id"] == job_id and j["state"] in ("RUNNING", "COMPLETING") for j in _our_jobs(prefix)
        ):
            return
        time.sleep(0.25)
    raise AssertionError(f"Slurm job {job_id} did not stop")


def _disturb(proc: subprocess.Popen, wd: Path, prefix: str, requeue: bool) -> dict:
    """Preempt (``scontrol requeue``) and then cancel (``scancel``) a running training job, each
    time after it wrote a checkpoint. Returns the job and the checkpoints left by each event."""
    deadline = time.monotonic() + SLURM_RUN_TIMEOUT
    events: dict = {}

    def train_job_with_checkpoint(newer_than: float = 0.0):
        job = _running_train_job(prefix)
        return job if job and _checkpoints(wd, newer_than) else None

    job = _wait(proc, deadline, "a training job with a checkpoint", train_job_with_checkpoint)
    events["sbatch"] = subprocess.run(
        ["scontrol", "show", "job", job["id"]], capture_output=True, text=True, timeout=20
    ).stdout
    if requeue:
        # what preemption does: Slurm stops the job and queues it again under the same id
        subprocess.run(["scontrol", "requeue", job["id"]], check=True, timeout=20)
        _wait_gone(prefix, job["id"])
        t_requeue = time.time()
        events["requeued"] = {"job": job, "checkpoints": _checkpoints(wd)}
        job = _wait(
            proc,
            deadline,
            "the requeued job to run again and write a new checkpoint",
            lambda: train_job_with_checkpoint(newer_than=t_requeue),
        )
    subprocess.run(["scancel", job["id"]], check=True, timeout=20)
    _wait_gone(prefix, job["id"])
    events["cancelled"] = {"job": job, "checkpoints": _checkpoints(wd)}
    return events


def _requested(scontrol_show_job: str) -> dict[str, int]:
    """Memory (MB) and time limit (minutes) of a job, from `scontrol show job`."""
    mem = re.search(r"MinMemoryNode=(\d+)([MG])", scontrol_show_job)
    limit = re.search(r"TimeLimit=(?:(\d+)-)?(\d+):(\d+):(\d+)", scontrol_show_job)
    assert mem and limit, scontrol_show_job
    days, hours, minutes, _ = (int(x or 0) for x in limit.groups())
    return {
        "mem_mb": int(mem.group(1)) * (1024 if mem.group(2) == "G" else 1),
        "minutes": days * 1440 + hours * 60 + minutes,
    }


def _run_dirs(wd: Path) -> list[Path]:
    return sorted(p.parent.relative_to(wd) for p in wd.glob("results/runs/**/run.json"))


def _assert_same_outputs(slurm: Path, local: Path) -> None:
    cfg = yaml.safe_load(CONFIG.read_text())
    n_runs = (
        len(cfg["datasets"])
        * len(cfg["models"])
        * len(cfg["losses"])
        * len(cfg["fractions"])
        * len(cfg["seeds"])
        * cfg["folds"]
    )
    runs = _run_dirs(slurm)
    assert len(runs) == n_runs and runs == _run_dirs(local), runs
    finals = [Path("results/tables/tidy.csv"), Path("results/figures/miou_vs_fraction.png")]
    finals += [
        Path(f"results/tables/{d}_table.{ext}")
        for d in cfg["datasets"]
        for ext in ("csv", "md", "tex")
    ]
    for rel in finals:
        assert (slurm / rel).is_file() and (slurm / rel).stat().st_size > 0, rel
    # every file the local run made under results/ (tables, figures, statistics...) is there too
    made = sorted(p.relative_to(local) for p in (local / "results").rglob("*") if p.is_file())
    missing = [str(p) for p in made if not (slurm / p).is_file()]
    assert not missing, missing
    for rel in finals[:1] + [f for f in finals if f.suffix in (".csv", ".md", ".tex")]:
        assert (slurm / rel).read_text() == (local / rel).read_text(), rel
    for run in runs:
        for name in ("per_image.csv", "reliability.csv"):
            assert (slurm / run / name).read_text() == (local / run / name).read_text(), run
        hist = [
            pd.read_csv(wd / run / "history.csv").drop(columns=["seconds"], errors="ignore")
            for wd in (slurm, local)
        ]
        pd.testing.assert_frame_equal(hist[0], hist[1])
        metrics = [json.loads((wd / run / "metrics.json").read_text()) for wd in (slurm, local)]
        for m in metrics:
            for key in ("wall_seconds", "resumed_from_epoch"):
                m.get("result", {}).pop(key, None)
        assert metrics[0] == metrics[1], run
        with np.load(slurm / run / "probs.npz") as a, np.load(local / run / "probs.npz") as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{run}/probs.npz:{key}")


def test_slurm_run_survives_scancel_and_matches_local_run(slurm_cluster, tmp_path: Path):
    cfg = yaml.safe_load(CONFIG.read_text())
    gpus = slurm_has_gpus()
    if gpus:  # training asks Slurm for a GPU (resources only: it still trains on the CPU)
        cfg["resources"]["train_gpu"] = 1
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(cfg, sort_keys=False))
    local = copy_workflow(tmp_path / "local", study)
    slurm = copy_workflow(tmp_path / "slurm", study)
    prefix = f"segbench_ci_{uuid.uuid4().hex[:8]}"
    cmd = [
        snakemake_bin(),
        "--profile",
        str(PROFILE),
        "--cores",
        "2",  # CPUs per group job: the CI node has 2
        "--groups",
        *_group_args(slurm),
        "--group-components",
        "data=8",
        "train=2",
        "report=100",
        "--slurm-jobname-prefix",
        prefix,
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",
        "3",
        "--latency-wait",
        "10",
        "--slurm-keep-successful-logs",
    ]
    requeue = os.environ.get("SEGBENCH_SLURM_REQUEUE_TEST", "1") != "0"
    t0 = time.monotonic()
    # The local reference run shares the CPUs with the Slurm run, which mostly waits on Slurm.
    with (
        open(tmp_path / "local.log", "w") as local_log,
        open(tmp_path / "slurm.log", "w") as slurm_log,
    ):
        ref = subprocess.Popen(
            [snakemake_bin(), "--cores", "1"],
            cwd=local,
            stdout=local_log,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
        proc = subprocess.Popen(
            cmd, cwd=slurm, stdout=slurm_log, stderr=subprocess.STDOUT, env=_env()
        )
        error, events = None, {}
        try:
            events = _disturb(proc, slurm, prefix, requeue)
            proc.wait(timeout=max(10.0, SLURM_RUN_TIMEOUT - (time.monotonic() - t0)))
            ref.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pass
        except AssertionError as err:
            error = err
        finally:
            _stop(proc)
            _stop(ref)
            leftover = [j["id"] for j in _our_jobs(prefix)]
            if leftover:
                subprocess.run(["scancel", *leftover], check=False, timeout=20)
    elapsed = time.monotonic() - t0
    log = (tmp_path / "slurm.log").read_text()
    if error is not None:
        raise AssertionError(f"{error}\n--- Snakemake log (tail):\n{log[-6000:]}") from error
    assert ref.returncode == 0, (tmp_path / "local.log").read_text()[-4000:]
    assert proc.returncode == 0, f"Slurm run failed ({proc.returncode}):\n{log[-6000:]}"

    assert "cancelled" in events, f"no training job was disturbed:\n{log[-6000:]}"

    # one Slurm job per pack; the cancelled training pack was resubmitted as a new Slurm job
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: ([^)]*)\)", log)
    train_jobs = [jid for jid, path in submitted if "train" in Path(path).parent.name]
    cid = events["cancelled"]["job"]["id"]
    assert cid in train_jobs and len(train_jobs) >= 2, submitted
    assert train_jobs[-1] != cid and int(train_jobs[-1]) > int(cid), submitted
    assert len(submitted) <= 6, f"{len(submitted)} Slurm jobs (grouping off?): {submitted}"

    # the retry asked Slurm for more memory and time than the first attempt (rules scale mem_mb
    # and runtime with `attempt`)
    first = _requested(events["sbatch"])
    retry = _requested(
        subprocess.run(
            ["scontrol", "show", "job", train_jobs[-1]], capture_output=True, text=True, timeout=20
        ).stdout
    )
    assert retry["mem_mb"] > first["mem_mb"] and retry["minutes"] > first["minutes"], (first, retry)
    if gpus:  # the training pack's Slurm job got one GPU (sbatch --gpus=1)
        assert re.search(r"TresPerJob=gres:gpu:1\b", events["sbatch"]), events["sbatch"]

    _assert_same_outputs(slurm, local)

    if requeue:
        # the requeued job kept its id, ran again and resumed the training from its checkpoint
        rid = events["requeued"]["job"]["id"]
        assert rid == cid and rid in train_jobs, (rid, submitted)
        assert events["requeued"]["checkpoints"], "no checkpoint survived the requeue"
        (job_log,) = slurm.glob(f".snakemake/slurm_logs/**/{rid}.log")
        # the engine logs the resume to the job's stderr (Slurm log) and to the rule's log file,
        # which keeps every attempt; a later scancel may cut the Slurm log short
        # (requeue and scancel hit the same pack, so its rule log must show one resume per
        # disturbance that found a checkpoint)
        resumes = sum(p.read_text().count("resumed from") for p in slurm.glob("logs/train_pack/**/pack.log"))
        needed = 1 + bool(events["cancelled"]["checkpoints"])
        assert "resumed from" in job_log.read_text() or resumes >= needed, (job_log, resumes)
    # the runs killed by scancel after a checkpoint resumed from it in the retried job
    for ckpt in events["cancelled"]["checkpoints"]:
        run = json.loads((ckpt.parent / "run.json").read_text())
        assert run["result"]["resumed_from_epoch"], (ckpt, run["result"])
    assert not list(slurm.glob("results/runs/**/checkpoint.pt"))
    resumed = [str(c.parent.relative_to(slurm)) for c in events["cancelled"]["checkpoints"]]
    print(
        f"\nSlurm run {elapsed:.0f} s, {len(submitted)} Slurm jobs (GPUs: {gpus}), "
        f"{'requeued and then ' if requeue else ''}cancelled job {cid}; "
        f"runs resumed after scancel: {resumed}"
    )
