"""Glue between Snakemake and the package: config checks, wildcard constraints, run specs,
and logging for ``script:`` entry points. ``workflow/rules/common.smk`` only wires these.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from segbench import paths
from segbench.config import (
    ConfigError,
    Run,
    SearchConfig,
    all_fractions,
    check_study,
    expand_runs,
    search_configs,
    validate_schema,
)
from segbench.config import dataset_include_background as dataset_include_background
from segbench.config import run_spec as build_run_spec
from segbench.paths import alternation
from segbench.rundir import RunFolderError
from segbench.runspec import RUN_KEYS
from segbench.splits import SplitError


def prepare_config(config: dict[str, Any]) -> list[Run]:
    """Validate (schema defaults filled in place) and cross-check; return the runs of the grid.

    On a bad config, prints the message naming the key and the allowed values and exits with
    status 1 before any job runs.
    """
    try:
        validate_schema(config, "config")
        check_study(config, "config")
        runs = expand_runs(config)
    except ConfigError as err:
        print(f"segbench config error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    return runs


def build_wildcard_constraints(config: dict[str, Any], runs: list[Run]) -> dict[str, str]:
    return {
        "dataset": alternation(list(config["datasets"])),
        "model": alternation(list(config["models"])),
        "loss": alternation([*config["losses"], *(r.loss for r in runs)]),
        "fraction": alternation([r.fraction for r in runs]) if runs else r"[0-9.]+",
        "seed": r"\d+",
        "fold": r"\d+",
    }


def run_paths(runs: list[Run], key: str) -> list[str]:
    template = paths.RUN_FILES[key]
    return [template.format(**r.wildcards()) for r in runs]


def canonical(obj: Any) -> Any:
    """Dicts with sorted keys, recursively: Snakemake's params trigger compares the params'
    text, so two configs that differ only in key order must give identical params."""
    if isinstance(obj, dict):
        return {str(k): canonical(obj[k]) for k in sorted(obj, key=str)}
    if isinstance(obj, list | tuple):
        return [canonical(v) for v in obj]
    return obj


def run_spec(config: dict[str, Any], wc: Any, fold: int | None = None) -> dict[str, Any]:
    """Everything a train job depends on, as one dict (Snakemake's params trigger watches it):
    :meth:`RunSpec.as_dict` of :func:`segbench.config.run_spec`, keys sorted (:func:`canonical`).

    ``fold`` overrides the wildcard (a pack job has no fold wildcard); the train script turns
    the dict back into the spec (:meth:`RunSpec.from_dict`).
    """
    ident = {k: getattr(wc, k, None) for k in RUN_KEYS}
    ident.update(seed=int(wc.seed), fold=int(wc.fold if fold is None else fold))
    run = Run(**ident)
    return canonical(build_run_spec(config, run, cached_search_configs(config)).as_dict())


def split_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The ``splits`` rule's params for ``dataset`` of a validated config
    (:func:`segbench.splits.prepared_splits` reads them).

    ``folds`` and ``val_fraction`` are the dataset's overrides, else the study's; ``fractions``
    every fraction the grid uses for it. ``datasets.<key>.split: official`` adds ``source:
    official``; a random split (the default) has no ``source`` key, so its params, and the
    params trigger of existing split files, are what they always were.
    """
    entry = config["datasets"][dataset]
    params: dict[str, Any] = {
        "folds": entry.get("folds", config["folds"]),
        "seed": config["split_seed"],
        "val_fraction": entry.get("val_fraction", config["val_fraction"]),
        "fractions": all_fractions(config, dataset),
    }
    if entry.get("split", "random") != "random":
        params["source"] = entry["split"]
    return params


_SEARCH_CACHE: dict[int, tuple[dict[str, Any], str, dict[str, SearchConfig]]] = {}


def cached_search_configs(config: dict[str, Any]) -> dict[str, SearchConfig]:
    """:func:`segbench.config.search_configs`, computed once per config object and content
    (every train job's params call it)."""
    import json

    text = json.dumps([config.get("grid"), config["losses"]], sort_keys=True, default=str)
    hit = _SEARCH_CACHE.get(id(config))
    if hit is None or hit[0] is not config or hit[1] != text:
        hit = (config, text, search_configs(config))
        _SEARCH_CACHE[id(config)] = hit
    return hit[2]


def setup_logging(log_path: str | None) -> logging.Logger:
    """Send INFO and above to stderr and, when given, append to ``log_path`` (its folder made);
    return the ``segbench`` logger. One format for every script."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        # append: a retried, requeued or resumed job keeps the earlier attempts' lines
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("segbench")


@contextlib.contextmanager
def script_logging(log_path: str | None) -> Iterator[logging.Logger]:
    """Log to the rule's log file (and stderr); record a traceback there before re-raising,
    except for a damaged run folder or split file (RunFolderError, SplitError): their one line
    (which names the file and the recovery), then exit 1."""
    logger = setup_logging(log_path)
    try:
        yield logger
    except (RunFolderError, SplitError) as err:  # a damaged input: its one line, no traceback
        logger.error("error: %s", " ".join(str(err).split()))
        raise SystemExit(1) from None
    except BaseException:
        logger.error("job failed:\n%s", traceback.format_exc())
        raise


def script_main(
    namespace: Mapping[str, Any],
    run_snakemake: Callable[[Any], None],
    main: Callable[[], int],
    user_errors: tuple[type[BaseException], ...],
) -> None:
    """Entry point of a script that is both a Snakemake ``script:`` and a command line tool.

    Under Snakemake (``snakemake`` in ``namespace``, the script's ``globals()``) it runs
    ``run_snakemake(snakemake)`` inside :func:`script_logging` of the rule's first log file
    (none when the rule has no ``log:``). Otherwise it exits with ``main()``'s status, after
    :func:`setup_logging` to stderr; an exception of ``user_errors`` is printed as one line
    ``error: ...`` (white space folded, no traceback) and exits with status 1.
    """
    smk = namespace.get("snakemake")
    if smk is not None:
        with script_logging(smk.log[0] if len(smk.log) else None):
            run_snakemake(smk)
        return
    setup_logging(None)
    try:
        status = main()
    except user_errors as err:
        sys.exit("error: " + " ".join(str(err).split()))
    sys.exit(status)
