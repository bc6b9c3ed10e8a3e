"""GPU job slots (segbench.train.gpu_slots): real flock across real processes; no GPU needed,
since a slot is only a lock file and the device choice it leads to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segbench.train.gpu_slots import acquire_slot, visible_devices_for

HOLDER = """
import sys, time
from segbench.train.gpu_slots import acquire_slot
s = acquire_slot(int(sys.argv[2]), int(sys.argv[3]), lock_dir=sys.argv[1], timeout=30)
print(s.gpu, s.index, flush=True)
time.sleep(60)
"""


def _hold(lock_dir: Path, n_gpus: int, per_gpu: int) -> tuple[subprocess.Popen, tuple[int, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir), str(n_gpus), str(per_gpu)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline().split()
    return proc, (int(line[0]), int(line[1]))


def test_concurrent_jobs_get_distinct_slots_spread_over_gpus_first(tmp_path):
    procs = []
    try:
        got = []
        for _ in range(4):
            proc, slot = _hold(tmp_path, 2, 2)
            procs.append(proc)
            got.append(slot)
        # slot-major: both GPUs get a job before any GPU gets a second one
        assert got == [(0, 0), (1, 0), (0, 1), (1, 1)]
        with pytest.raises(TimeoutError, match="no free GPU slot"):
            acquire_slot(2, 2, lock_dir=tmp_path, timeout=0.3, poll=0.1)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_sigkilled_job_releases_its_slot(tmp_path):
    proc, slot = _hold(tmp_path, 1, 1)
    assert slot == (0, 0)
    with pytest.raises(TimeoutError):
        acquire_slot(1, 1, lock_dir=tmp_path, timeout=0.2, poll=0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.monotonic()
    s = acquire_slot(1, 1, lock_dir=tmp_path, timeout=10, poll=0.05)
    assert (s.gpu, s.index) == (0, 0) and time.monotonic() - t0 < 5
    s.release()


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="jobs_per_gpu >= 1"):
        acquire_slot(1, 0, lock_dir=tmp_path)


@pytest.mark.parametrize(
    "gpu,n,current,expected",
    [
        (2, 4, None, "2"),
        (0, 1, "", "0"),
        (1, 2, "3,5", "5"),  # an already narrowed set (e.g. a Slurm allocation) keeps its ids
        (0, 1, "GPU-8f2a", "GPU-8f2a"),
        (1, 2, " 6 , 7 ", "7"),
    ],
)
def test_visible_devices_for(gpu, n, current, expected):
    assert visible_devices_for(gpu, n, current) == expected


def test_visible_devices_for_names_the_bad_slot():
    with pytest.raises(ValueError, match=r"GPU slot 2 .* 2 visible devices .*'0,1'"):
        visible_devices_for(2, 2, "0,1")
