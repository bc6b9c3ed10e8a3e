"""Fault injection for reliability tests: a real SIGKILL at a named point of a job.

Set ``SEGBENCH_FAULT="<point>@<epoch>"`` (e.g. ``checkpoint_write@2``) and, optionally,
``SEGBENCH_FAULT_ONCE=<marker file>``: the job kills itself with SIGKILL when it reaches
``point`` at ``epoch`` (any epoch when ``@<epoch>`` is left out); with the marker file set, only
the first time (the file is created, atomically, just before the kill, so of two concurrent jobs
only one dies), and a rerun completes. Points: ``step`` (mid-epoch, between optimiser steps),
``checkpoint_write`` (half of the checkpoint bytes written to the temp file), ``probs_write``
(half of the test probabilities written), ``metrics_write`` (evaluation, half of metrics.json
written). Unset in normal use: then :func:`point` does nothing.

Several faults at once: a comma-separated list, ``SEGBENCH_FAULT="checkpoint_write@1,step@2"``.
A marker path containing ``{point}`` gives one marker per point (each fault fires once); a plain
marker path is shared, so only the first fault of the list that is reached fires.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "SEGBENCH_FAULT"
ONCE = "SEGBENCH_FAULT_ONCE"
POINTS = ("step", "checkpoint_write", "probs_write", "metrics_write")


def parse(spec: str) -> list[tuple[str, int | None]]:
    """``"a@1,b"`` -> ``[("a", 1), ("b", None)]``.

    Raises:
        ValueError: naming the variable and the bad item, for an unknown point or epoch.
    """
    out: list[tuple[str, int | None]] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, _, at = item.partition("@")
        if name not in POINTS:
            raise ValueError(f"{ENV}={spec!r}: unknown fault point {name!r}; allowed: {POINTS}")
        try:
            out.append((name, int(at) if at else None))
        except ValueError:
            raise ValueError(f"{ENV}={spec!r}: epoch in {item!r} is not an integer") from None
    return out


def point(name: str, epoch: int = 0) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for want, at in parse(spec):
        if want != name or (at is not None and at != int(epoch)):
            continue
        marker = os.environ.get(ONCE)
        if marker:
            path = Path(marker.replace("{point}", name))
            try:  # O_EXCL: exactly one process claims the fault
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{name}@{epoch} pid={os.getpid()} cwd={os.getcwd()}\n")
        os.kill(os.getpid(), signal.SIGKILL)
