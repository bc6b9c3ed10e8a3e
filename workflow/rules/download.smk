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
# trigger re-runs it where metadata exists. The logic lives in segbench.smk_data.WorkflowData.
# This file is also included on its own (tests/data/workflow/Snakefile), so it imports what it
# uses instead of relying on common.smk.
from pathlib import Path as _DlPath

from segbench import paths as _dl_paths
from segbench.paths import alternation as _dl_alternation
from segbench.smk_data import WorkflowData as _DlWorkflowData
from segbench.smk_data import retry_scaled as _dl_retry_scaled

DATA_SOURCES = _DlWorkflowData(
    config, base=_DlPath(workflow.current_basedir).parents[1]
)
_DL_ENV = "../../envs/segbench.yaml"


rule download_file:
    output:
        _dl_paths.DOWNLOAD_FILE,
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
        source=DATA_SOURCES.get_download_params,
    script:
        "../../scripts/download.py"


rule extract_dataset:
    input:
        DATA_SOURCES.get_extract_input,
    output:
        directory(_dl_paths.RAW_DIR),
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
        spec=DATA_SOURCES.get_extract_params,
    script:
        "../../scripts/download.py"


rule prepare_dataset:
    input:
        raw=DATA_SOURCES.get_prepare_input,
    output:
        npz=_dl_paths.PREPARED_NPZ,
        meta=_dl_paths.PREPARED_JSON,
    log:
        "logs/prepare_dataset/{dataset}.log",
    wildcard_constraints:
        dataset=_dl_alternation(DATA_SOURCES.prepared_names()),
    group:
        "data"
    conda:
        _DL_ENV
    resources:
        mem_mb=_dl_retry_scaled(8000),
        runtime=_dl_retry_scaled(60),
    params:
        spec=DATA_SOURCES.get_prepare_params,
    script:
        "../../scripts/prepare.py"
