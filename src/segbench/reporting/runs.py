"""Reading run folders for the figures that need more than the tidy table.

Identity, status and ``include_background`` of a run are read from its ``metrics.json`` (never
parsed from the folder name, docs/CONVENTIONS.md); the matching file of the same run folder
(``reliability.csv``, ``per_image.csv``) is passed alongside, in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from segbench.reporting.figures import image_scores
from segbench.rundir import read_metrics_json
from segbench.runspec import RUN_KEYS


def run_identity(metrics_json: str | Path) -> dict[str, Any]:
    """``RUN_KEYS`` + ``status`` + ``include_background`` of a run from its metrics.json.

    Raises:
        RunFolderError: the file is not a valid metrics.json (named, with the recovery).
    """
    m = read_metrics_json(metrics_json)
    ident = {k: m["run"][k] for k in RUN_KEYS}
    ident["fraction"] = str(ident["fraction"])
    ident["status"] = m.get("status", "completed")
    ident["include_background"] = bool(m.get("include_background", True))
    return ident


def _completed(
    metrics: Sequence[str], files: Sequence[str]
) -> tuple[list[tuple[dict[str, Any], str]], int]:
    """``(identity, file)`` of every completed run, in order, and the number of runs skipped
    as not completed (diverged)."""
    if len(metrics) != len(files):
        raise ValueError(f"{len(metrics)} metrics.json files but {len(files)} run files")
    pairs = [(run_identity(m), f) for m, f in zip(metrics, files, strict=True)]
    done = [(ident, f) for ident, f in pairs if ident["status"] == "completed"]
    return done, len(pairs) - len(done)


def load_reliability(
    metrics: Sequence[str], reliability: Sequence[str]
) -> tuple[list[tuple[dict[str, Any], pd.DataFrame]], int]:
    """``(identity, bins)`` of every completed run, and the number of diverged runs skipped."""
    done, diverged = _completed(metrics, reliability)
    return [(ident, pd.read_csv(r)) for ident, r in done], diverged


def load_image_scores(
    metrics: Sequence[str], per_image: Sequence[str], metric: str = "dice"
) -> tuple[pd.DataFrame, int]:
    """Per-image scores (:func:`~segbench.reporting.figures.image_scores`) of every completed
    run with its identity columns, and the number of diverged runs skipped."""
    parts = []
    done, diverged = _completed(metrics, per_image)
    for ident, p in done:
        rows = pd.read_csv(p, dtype={"image": str})
        if rows.empty:
            continue
        scores = image_scores(rows, ident["include_background"], metric)
        for k in RUN_KEYS:
            scores[k] = ident[k]
        parts.append(scores)
    cols = [*RUN_KEYS, "image", "value"]
    if not parts:
        return pd.DataFrame(columns=cols), diverged
    return pd.concat(parts, ignore_index=True)[cols], diverged
