"""Local multi-GPU job slots: give each concurrently running training job its own GPU.

Snakemake's ``gpu`` resource only limits how many GPU jobs run at once; it does not say which
GPU a job should use. Each job therefore claims a free slot ``(gpu, k)`` with ``k <
jobs_per_gpu`` by taking an exclusive, non-blocking ``flock`` on ``<lock_dir>/gpu<i>.slot<k>``.
The lock is released by the kernel when the process exits, also on SIGKILL, so slots never
leak. A job started inside an environment that already pins one device (Slurm sets
``CUDA_VISIBLE_DEVICES`` per job) sees one GPU and takes slot (0, k).

Once the slot is claimed, and before CUDA is initialised in the process, the job narrows
``CUDA_VISIBLE_DEVICES`` to its slot's GPU (:func:`visible_devices_for`), so that the process
sees one device (``cuda:0``) and creates no context on the others, whatever the libraries it
uses do by default.
"""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

DEFAULT_LOCK_DIR = ".segbench_gpu_slots"


@dataclass
class Slot:
    gpu: int
    index: int
    handle: IO[str]

    def release(self) -> None:
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


def acquire_slot(
    n_gpus: int,
    jobs_per_gpu: int = 1,
    lock_dir: str | Path | None = None,
    timeout: float = 3600.0,
    poll: float = 0.5,
) -> Slot:
    """Claim a free (gpu, slot) pair, least-loaded GPU first; wait while all are taken.

    Raises:
        ValueError: ``n_gpus`` or ``jobs_per_gpu`` < 1.
        TimeoutError: no slot became free within ``timeout`` seconds.
    """
    if n_gpus < 1 or jobs_per_gpu < 1:
        raise ValueError(f"need n_gpus >= 1 and jobs_per_gpu >= 1, got {n_gpus}, {jobs_per_gpu}")
    lock_dir = Path(lock_dir or os.environ.get("SEGBENCH_GPU_LOCK_DIR", DEFAULT_LOCK_DIR))
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        # slot-major order spreads jobs over GPUs before stacking them on one
        for k in range(jobs_per_gpu):
            for gpu in range(n_gpus):
                fh = open(lock_dir / f"gpu{gpu}.slot{k}", "a+")  # noqa: SIM115 (held until exit)
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    continue
                fh.seek(0)
                fh.truncate()
                fh.write(f"{os.getpid()}\n")
                fh.flush()
                return Slot(gpu=gpu, index=k, handle=fh)
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU slot in {lock_dir} after {timeout} s")
        time.sleep(poll)


def visible_devices_for(gpu: int, n_gpus: int, current: str | None) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value that leaves only the ``gpu``-th visible device.

    ``current`` is the variable as set (None or empty: all ``n_gpus`` devices, numbered
    ``0..n_gpus-1``); its entries (indices or ``GPU-<uuid>``/``MIG-`` names) are kept verbatim.

    Raises:
        ValueError: ``gpu`` is not one of the visible devices.
    """
    entries = [e.strip() for e in current.split(",") if e.strip()] if current else []
    if not entries:
        entries = [str(i) for i in range(n_gpus)]
    if not 0 <= gpu < len(entries):
        raise ValueError(
            f"GPU slot {gpu} is not among the {len(entries)} visible devices "
            f"(CUDA_VISIBLE_DEVICES={current!r})"
        )
    return entries[gpu]
