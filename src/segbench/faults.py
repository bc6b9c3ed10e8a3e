"""Fault injection for reliability tests: a real SIGKILL at a named point of a job.

Set ``SEGBENCH_FAULT="<point>@<epoch>"`` (e.g. ``checkpoint_write@2``) and, optionally,
``SEGBENCH_FAULT_ONCE=<marker file>``: the job kills itself with SIGKILL when it reaches
``point`` at ``epoch``; with the marker file set, only the first time (the file is created
just before the kill), so a rerun completes. Points: ``step`` (mid-epoch, between optimiser
steps), ``checkpoint_write`` (half of the checkpoint bytes written to the temp file),
``probs_write`` (half of the test probabilities written), ``metrics_write`` (evaluation, half of
metrics.json written). Unset in normal use: then :func:`point` does nothing.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "SEGBENCH_FAULT"
ONCE = "SEGBENCH_FAULT_ONCE"


def point(name: str, epoch: int = 0) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    want, _, at = spec.partition("@")
    if want != name or (at and int(at) != int(epoch)):
        return
    marker = os.environ.get(ONCE)
    if marker:
        if Path(marker).exists():
            return
        Path(marker).write_text(f"{name}@{epoch}\n")
    os.kill(os.getpid(), signal.SIGKILL)
