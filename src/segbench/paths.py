"""Path templates of the workflow, in one tested place (rules never build paths inline)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from fractions import Fraction

DOWNLOAD_FILE = "data/downloads/{raw}/{file}"
"""A verified download of registry entry ``raw`` (rule download_file)."""
RAW_DIR = "data/raw/{raw}"
"""The verified, extracted content of registry entry ``raw`` (rule extract_dataset)."""
PREPARED_NPZ = "data/prepared/{dataset}.npz"
PREPARED_JSON = "data/prepared/{dataset}.json"
SPLITS = "results/splits/{dataset}.json"
RUN_DIR = "results/runs/{dataset}/{model}/{loss}/f{fraction}/s{seed}/k{fold}"
RUN_FILES = {
    "run": RUN_DIR + "/run.json",
    "history": RUN_DIR + "/history.csv",
    "best": RUN_DIR + "/best.pt",
    "metrics": RUN_DIR + "/metrics.json",
    "per_image": RUN_DIR + "/per_image.csv",
    "probs": RUN_DIR + "/probs.npz",
    "reliability": RUN_DIR + "/reliability.csv",
}
TIDY_TABLE = "results/tables/tidy.csv"


def fmt_fraction(fraction: float | str) -> str:
    """Canonical text form of a training fraction: 1 -> "1", 0.5 -> "0.5", 1/8 -> "0.125".

    Raises:
        ValueError: if the fraction is not in (0, 1].
    """
    value = float(Fraction(str(fraction)))
    if not 0.0 < value <= 1.0:
        raise ValueError(f"training fraction must be in (0, 1], got {fraction!r}")
    text = f"{value:.6g}"
    return text


def alternation(values: Iterable[object]) -> str:
    """A regex matching exactly one of ``values`` (``^$`` when empty), for wildcard_constraints.

    Longer values come first so that a value that is a prefix of another cannot shadow it.
    """
    vals = sorted({str(v) for v in values}, key=len, reverse=True)
    return "|".join(re.escape(v) for v in vals) if vals else "^$"
