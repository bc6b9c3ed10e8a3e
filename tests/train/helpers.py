"""Helpers of the training tests: run a training in a child process that SIGKILLs itself at a
named fault point (segbench.faults), as a real crash or preemption would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from segbench.train import RunSpec

RUN_CHILD = """
import sys, json
from segbench.train import RunSpec, train_run
train_run(RunSpec(**json.loads(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4])
"""
PACK_CHILD = """
import sys, json
from segbench.train import RunSpec, train_pack
specs = [RunSpec(**d) for d in json.loads(sys.argv[1])]
train_pack(specs, sys.argv[2], sys.argv[3], json.loads(sys.argv[4]))
"""


def _killed(code: str, args: Sequence[str], fault: str) -> None:
    env = dict(os.environ, SEGBENCH_FAULT=fault)
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def kill_run(spec: RunSpec, npz: Path, splits: Path, out: Path, fault: str) -> None:
    """``train_run`` in a child process, SIGKILLed at ``fault`` (e.g. ``"step@3"``)."""
    _killed(RUN_CHILD, [json.dumps(spec.as_dict()), str(npz), str(splits), str(out)], fault)


def kill_pack(
    specs: Sequence[RunSpec], npz: Path, splits: Path, outs: Sequence[Path], fault: str
) -> None:
    """``train_pack`` in a child process, SIGKILLed at ``fault``."""
    args = [
        json.dumps([s.as_dict() for s in specs]),
        str(npz),
        str(splits),
        json.dumps([str(o) for o in outs]),
    ]
    _killed(PACK_CHILD, args, fault)
