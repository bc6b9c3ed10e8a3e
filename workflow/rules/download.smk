# Real datasets: download -> verify -> extract -> verify manifest -> prepare.
#
#   data/downloads/{raw}/{file}        rule download_file    (archive sha256 checked when pinned)
#   data/raw/{raw}/                    rule extract_dataset  (safe unpack + per-file manifest check)
#   data/prepared/{dataset}.npz/.json  rule prepare_dataset  (recipe from config/datasets.yaml)
#
# Config keys (all optional; defaults in brackets):
#   download.registry   [config/datasets.yaml]  the dataset registry
#   download.mirror     [null]  folder or base URL holding {mirror}/{raw}/{file} or {mirror}/{file};
#                               the environment variable SEGBENCH_MIRROR is used when unset
#   download.retries [5], download.timeout_s [60], download.backoff_s [1.0]
#   download.allow_unpinned [true]  accept content with neither a pinned archive sha256 nor a
#                                   committed manifest (a warning says how to pin it)
#   datasets.<key>: {source: registry, registry_id: <id>}  prepares data/prepared/<key>.npz from
#                                   registry entry <id> (default <key>)
# Rerun policy: inputs are ancient(): once data/raw/{raw} and data/prepared/* exist (for example
# after `dvc pull` on a fresh clone) nothing is downloaded or prepared again, whatever the mtimes.
# Changing an entry's checksums, manifest or recipe changes the rule params, so Snakemake's params
# trigger re-runs it where metadata exists. The logic lives in segbench.data.download.WorkflowData.
import sys as _dl_sys
from pathlib import Path as _DlPath

_dl_sys.path.insert(0, str(_DlPath(workflow.current_basedir).parents[1] / "src"))

from segbench.data.download import DOWNLOAD_FILE as _DL_FILE
from segbench.data.download import RAW_DIR as _DL_RAW
from segbench.data.download import WorkflowData as _DlWorkflowData
from segbench.paths import alternation as _dl_alternation

DATA_SOURCES = _DlWorkflowData(
    config, base=_DlPath(workflow.current_basedir).parents[1]
)
_DL_ENV = "../../envs/segbench.yaml"
_DL_SCRIPTS = _DlPath(workflow.current_basedir).parents[1] / "scripts"


rule download_file:
    output:
        _DL_FILE.replace("{dataset}", "{raw}"),
    log:
        "logs/download_file/{raw}/{file}.log",
    wildcard_constraints:
        raw=_dl_alternation(DATA_SOURCES.raw_names()),
        file=r"[^/]+",
    localrule: True
    conda:
        _DL_ENV
    resources:
        mem_mb=500,
        runtime=120,
    params:
        source=lambda w: DATA_SOURCES.download_params(w.raw, w.file),
    script:
        str(_DL_SCRIPTS / "download.py")


rule extract_dataset:
    input:
        lambda w: [ancient(p) for p in DATA_SOURCES.download_paths(w.raw)],
    output:
        directory(_DL_RAW.replace("{dataset}", "{raw}")),
    log:
        log="logs/extract_dataset/{raw}.log",
        manifest="logs/extract_dataset/{raw}.sha256",
    wildcard_constraints:
        raw=_dl_alternation(DATA_SOURCES.raw_names()),
    localrule: True
    conda:
        _DL_ENV
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        spec=lambda w: DATA_SOURCES.extract_params(w.raw),
    script:
        str(_DL_SCRIPTS / "download.py")


rule prepare_dataset:
    input:
        raw=lambda w: ancient(DATA_SOURCES.raw_path(w.dataset)),
    output:
        npz="data/prepared/{dataset}.npz",
        meta="data/prepared/{dataset}.json",
    log:
        "logs/prepare_dataset/{dataset}.log",
    wildcard_constraints:
        dataset=_dl_alternation(DATA_SOURCES.prepared_names()),
    group:
        "data"
    conda:
        _DL_ENV
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        spec=lambda w: DATA_SOURCES.prepare_params(w.dataset),
    script:
        str(_DL_SCRIPTS / "prepare.py")
