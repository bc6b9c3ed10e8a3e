"""A run folder's ``run.json``: written once (atomically) when a run finishes, read by the
evaluation and the reporting.

Keys (docs/CONVENTIONS.md "Run folders"): ``run`` (the identity, :data:`RUN_KEYS`), ``config``
(the resolved :class:`~segbench.runspec.RunSpec`), ``config_digest``, ``result`` (the
:class:`~segbench.train.spec.TrainResult`), ``n_train`` / ``n_val`` / ``n_test``,
``num_classes``, ``class_names``, ``git``, ``packages``, ``device``, ``seed``,
``wall_seconds``, ``command``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from segbench.io_utils import atomic_write_json
from segbench.provenance import device_info, git_commit, package_versions
from segbench.runspec import RUN_KEYS, Run, RunSpec

RUN_JSON = "run.json"
REQUIRED = ("run", "result")
"""Keys a ``run.json`` must have for the evaluation (checked on reading; more with
``require``)."""


def run_record(
    spec: RunSpec,
    result: Any,
    *,
    device: Any,
    n_train: int,
    n_val: int,
    n_test: int,
    num_classes: int,
    class_names: list[str],
) -> dict[str, Any]:
    """The ``run.json`` record of a finished run (``result``: a TrainResult dataclass)."""
    res = asdict(result) if is_dataclass(result) else dict(result)
    return {
        "run": spec.identity().wildcards(),
        "config": spec.as_dict(),
        "config_digest": spec.digest(),
        "result": res,
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "num_classes": num_classes,
        "class_names": class_names,
        "git": git_commit(),
        "packages": package_versions(),
        "device": device_info(device),
        "seed": spec.seed,
        "wall_seconds": res["wall_seconds"],
        "command": sys.argv,
    }


def write_run_json(run_dir: str | os.PathLike[str], record: dict[str, Any]) -> Path:
    """Write ``record`` to ``run_dir/run.json`` atomically (temp file + fsync + rename)."""
    path = Path(run_dir) / RUN_JSON
    atomic_write_json(path, record)
    return path


def read_run_json(
    path: str | os.PathLike[str], require: tuple[str, ...] = REQUIRED
) -> dict[str, Any]:
    """``run.json`` (the file, or the run folder holding it) as a dict.

    Raises:
        ValueError: naming the path, when the file is not a JSON object, lacks one of the
            ``require`` keys or its ``run`` lacks an identity key (:data:`RUN_KEYS`).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / RUN_JSON
    text = path.read_text()
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not a valid run.json ({err}); re-run the train job") from None
    if not isinstance(record, dict) or any(k not in record for k in ("run", *require)):
        have = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise ValueError(
            f"{path}: not a valid run.json: needs keys {list(require)}, has {have}; "
            "re-run the train job"
        )
    missing = [k for k in RUN_KEYS if not isinstance(record["run"], dict) or k not in record["run"]]
    if missing:
        raise ValueError(f"{path}: run.json 'run' lacks the identity keys {missing}")
    return record


def record_identity(record: dict[str, Any]) -> Run:
    """The :class:`Run` of a ``run.json`` record."""
    return Run(**{k: record["run"][k] for k in RUN_KEYS})


def record_spec(record: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` of a ``run.json`` record."""
    return RunSpec.from_dict(record["config"])
