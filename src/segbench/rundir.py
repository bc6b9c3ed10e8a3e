"""A run folder's ``run.json``: written once (atomically) when a run finishes, read by the
evaluation and the reporting; and the checks every consumer of a run folder makes.

Keys (docs/CONVENTIONS.md "Run folders"): ``run`` (the identity, :data:`RUN_KEYS`), ``config``
(the resolved :class:`~segbench.runspec.RunSpec`), ``config_digest``, ``result`` (the
:class:`~segbench.train.spec.TrainResult` without its wall time), ``n_train`` / ``n_val`` /
``n_test``, ``num_classes``, ``class_names``, ``git`` (:func:`segbench.provenance.git_provenance`:
the workflow's tree, and the package's when it is another one), ``packages``, ``device``,
``seed``, ``outputs`` (sha256 of each of :data:`CHECKSUMMED`, checked by the evaluation before it
reads the folder), ``command``.

Timings are kept out of every scientific output so that a rerun (or a resume after a kill)
writes them byte for byte again: ``timings.csv`` (seconds per epoch) and ``timings.json``
(``wall_seconds`` of the job that finished the run) sit next to ``run.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from segbench.io_utils import atomic_write_json
from segbench.provenance import device_info, git_provenance, package_versions
from segbench.runspec import RUN_KEYS, Run, RunSpec

RUN_JSON = "run.json"
TIMINGS_JSON = "timings.json"
TIMINGS_CSV = "timings.csv"
METRICS_JSON = "metrics.json"
CHECKSUMMED = ("best.pt", "history.csv", "probs.npz")
"""Training outputs whose sha256 ``run.json`` records (key ``outputs``)."""
RUN_OUTPUTS = (*CHECKSUMMED, RUN_JSON, METRICS_JSON, "per_image.csv", "reliability.csv")
"""Every file a finished and evaluated run folder holds (timings aside)."""
TIMING_KEYS = ("wall_seconds",)
"""``TrainResult`` fields that are timings: in ``timings.json``, not in ``run.json``."""
HOW_IT_RAN = ("wall_seconds", "resumed_from_epoch")
"""``result`` fields that say how a run went, not what it found: ``run.json`` keeps
``resumed_from_epoch``, ``metrics.json`` (a scientific output) keeps neither."""
REQUIRED = ("run", "result")
"""Keys a ``run.json`` must have for the evaluation (checked on reading; more with
``require``)."""


class RunFolderError(ValueError):
    """A run folder's file is missing, unreadable or does not match its checksum; the message
    names the file and the recovery (:func:`recovery`)."""


def recovery(run_dir: str | os.PathLike[str]) -> str:
    """How to rebuild a damaged run folder (the sentence every run-folder error ends with)."""
    return (
        f"delete the run folder ({run_dir}) and run the workflow again with its default target "
        "(snakemake --cores N --configfile STUDY, or make run CONFIG=STUDY): it retrains and "
        "re-evaluates that run"
    )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def output_checksums(run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``{name: sha256}`` of the :data:`CHECKSUMMED` files present in ``run_dir``."""
    run_dir = Path(run_dir)
    return {n: sha256_file(run_dir / n) for n in CHECKSUMMED if (run_dir / n).exists()}


def verify_outputs(
    run_dir: str | os.PathLike[str],
    record: dict[str, Any],
    names: Iterable[str] = CHECKSUMMED,
) -> None:
    """Check ``names`` in ``run_dir`` against the sha256 ``record["outputs"]`` holds (a
    ``run.json`` written before checksums existed has none: nothing to check).

    Raises:
        RunFolderError: naming the first missing or changed file and the recovery.
    """
    run_dir = Path(run_dir)
    sums = record.get("outputs") or {}
    for name in names:
        if name not in sums:
            continue
        path = run_dir / name
        if not path.exists():
            raise RunFolderError(f"{path}: missing from its run folder; {recovery(run_dir)}")
        if sha256_file(path) != sums[name]:
            raise RunFolderError(
                f"{path}: damaged (sha256 differs from the one {run_dir / RUN_JSON} recorded "
                f"when the run finished); {recovery(run_dir)}"
            )


def missing_outputs(run_dirs: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The run folders of ``run_dirs`` that lack one of :data:`RUN_OUTPUTS`."""
    return [Path(d) for d in run_dirs if not all((Path(d) / name).exists() for name in RUN_OUTPUTS)]


def science_result(result: dict[str, Any]) -> dict[str, Any]:
    """``result`` without the fields that say how a run went (:data:`HOW_IT_RAN`)."""
    return {k: v for k, v in result.items() if k not in HOW_IT_RAN}


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
    outputs: dict[str, str] | None = None,
    workflow_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The ``run.json`` record of a finished run.

    Args:
        result: a TrainResult (its timings, :data:`TIMING_KEYS`, are left out: they go to
            ``timings.json``).
        outputs: ``{name: sha256}`` of the run's outputs (:func:`output_checksums`).
        workflow_dir: the workflow's directory for ``git`` (default: the current directory,
            Snakemake's working directory in a job).
    """
    res = asdict(result) if is_dataclass(result) else dict(result)
    res = {k: v for k, v in res.items() if k not in TIMING_KEYS}
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
        "git": git_provenance(workflow_dir),
        "packages": package_versions(),
        "device": device_info(device),
        "seed": spec.seed,
        "outputs": dict(outputs or {}),
        "command": sys.argv,
    }


def write_timings_json(
    run_dir: str | os.PathLike[str], result: Any, epoch_seconds: list[float]
) -> None:
    """``timings.json`` (:data:`TIMING_KEYS` of ``result``, and the number of epochs timed in
    this job) of a finished run; ``epoch_seconds`` are in ``timings.csv`` already."""
    res = asdict(result) if is_dataclass(result) else dict(result)
    record = {k: res[k] for k in TIMING_KEYS}
    record["epochs_timed"] = len(epoch_seconds)
    record["epoch_seconds_total"] = round(float(sum(epoch_seconds)), 4)
    atomic_write_json(Path(run_dir) / TIMINGS_JSON, record)


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
    try:
        record = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(
            f"{path}: not a valid run.json ({err}); {recovery(path.parent)}"
        ) from None
    if not isinstance(record, dict) or any(k not in record for k in ("run", *require)):
        have = sorted(record) if isinstance(record, dict) else type(record).__name__
        raise RunFolderError(
            f"{path}: not a valid run.json: needs keys {list(require)}, has {have}; "
            f"{recovery(path.parent)}"
        )
    missing = [k for k in RUN_KEYS if not isinstance(record["run"], dict) or k not in record["run"]]
    if missing:
        raise RunFolderError(
            f"{path}: run.json 'run' lacks the identity keys {missing}; {recovery(path.parent)}"
        )
    return record


def read_metrics_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``metrics.json`` as a dict (what the tables and figures read).

    Raises:
        RunFolderError: naming the path and the recovery, when the file is missing, not JSON,
            not an object or lacks ``run`` (with its identity keys) or ``classes``.
    """
    path = Path(path)
    try:
        m = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise RunFolderError(f"{path}: does not exist; {recovery(path.parent)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(
            f"{path}: not a valid metrics.json ({err}); {recovery(path.parent)}"
        ) from None
    run = m.get("run") if isinstance(m, dict) else None
    if (
        not isinstance(run, dict)
        or any(k not in run for k in RUN_KEYS)
        or not isinstance(m.get("classes"), list)
    ):
        raise RunFolderError(
            f"{path}: not a valid metrics.json (needs 'run' with {list(RUN_KEYS)} and "
            f"'classes'); {recovery(path.parent)}"
        )
    return m


def record_identity(record: dict[str, Any]) -> Run:
    """The :class:`Run` of a ``run.json`` record."""
    return Run(**{k: record["run"][k] for k in RUN_KEYS})


def record_spec(record: dict[str, Any]) -> RunSpec:
    """The :class:`RunSpec` of a ``run.json`` record."""
    return RunSpec.from_dict(record["config"])


def warn_missing_runs(runs: Iterable[Run], table: str | os.PathLike[str]) -> list[Path]:
    """Print one line to stderr when ``table`` exists but run folders of ``runs`` lack files
    (deleted or damaged since): only the default target rebuilds them; a table named as the
    target alone would be left as it is (Snakemake does not redo a missing intermediate file
    whose consumers are up to date). Returns those run folders."""
    from segbench.paths import RUN_DIR

    missing = missing_outputs(RUN_DIR.format(**r.wildcards()) for r in runs)
    if missing:
        print(
            f"segbench: {len(missing)} run folder(s) lack outputs although {table} exists "
            f"(first: {missing[0]}): the default target (snakemake --cores N --configfile "
            "STUDY) redoes them and then the tables; a table named as the only target does not",
            file=sys.stderr,
        )
    return missing
