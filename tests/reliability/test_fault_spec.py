"""The fault-injection switch itself (segbench.faults): several points in one variable, one
marker per point, each fault fired once, a typo refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from segbench import faults

CHILD = "from segbench import faults; faults.point(sys.argv[1], int(sys.argv[2])); print('alive')"


def _hit(point: str, epoch: int, env: dict[str, str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; " + CHILD, point, str(epoch)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0 or proc.stdout.strip() == "alive", proc.stderr
    return proc.returncode


def test_parse_several_points_and_refuse_typos():
    assert faults.parse("checkpoint_write@1, step@2,metrics_write") == [
        ("checkpoint_write", 1),
        ("step", 2),
        ("metrics_write", None),
    ]
    with pytest.raises(ValueError, match="unknown fault point 'stepp'"):
        faults.parse("stepp@1")
    with pytest.raises(ValueError, match="epoch in 'step@x' is not an integer"):
        faults.parse("step@x")


def test_each_point_fires_once_with_a_marker_per_point(tmp_path):
    env = {
        faults.ENV: "step@2,metrics_write",
        faults.ONCE: str(tmp_path / "{point}.fired"),
    }
    assert _hit("step", 1, env) == 0  # other epoch
    assert _hit("probs_write", 2, env) == 0  # other point
    assert _hit("step", 2, env) == -signal.SIGKILL
    assert _hit("step", 2, env) == 0  # fired already
    assert _hit("metrics_write", 0, env) == -signal.SIGKILL  # its own marker
    assert _hit("metrics_write", 0, env) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics_write.fired", "step.fired"]
