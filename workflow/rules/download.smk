# Real datasets: download -> verify -> extract -> verify manifest -> prepare.
#
#   data/downloads/{raw}/{file}     rule download_file    (archive sha256 checked when pinned)
#   data/raw/{raw}/                 rule extract_dataset  (safe unpack + per-file manifest check)
#   data/prepared/{dataset}.npz/.json  rule prepare_dataset (recipe from config/datasets.yaml)
#
# Config keys (all optional; defaults in brackets):
#   download.registry   [config/datasets.yaml]  the dataset registry
#   download.mirror     [null]  folder or base URL holding {mirror}/{raw}/{file} or {mirror}/{file};
#                               the environment variable SEGBENCH_MIRROR is used when unset
#   download.retries [5], download.timeout_s [60], download.backoff_s [1.0]
#   download.allow_unpinned [true]  accept content with neither a pinned archive sha256 nor a
#                                   committed manifest (a warning tells how to pin it)
#   datasets.<key>: {source: registry, registry_id: <id>}  prepares data/prepared/<key>.npz from
#                                   registry entry <id> (default <key>)
# Rerun policy: inputs are ancient(): once data/raw/{raw} and data/prepared/* exist (for example
# after `dvc pull` on a fresh clone) nothing is downloaded or prepared again, whatever the mtimes.
# Changing an entry's checksums, manifest or recipe changes the rule params, so Snakemake's params
# trigger re-runs it where metadata exists.
import os as _dl_os
import sys as _dl_sys
from pathlib import Path as _DlPath

_dl_sys.path.insert(0, str(_DlPath(workflow.current_basedir).parents[1] / "src"))

from segbench.data.download import DOWNLOAD_FILE as _DL_FILE, RAW_DIR as _DL_RAW
from segbench.data.registry import load_registry as _dl_load_registry

_DL_CFG = config.get("download") or {}
DATA_REGISTRY = _dl_load_registry(_DL_CFG.get("registry", "config/datasets.yaml"))
_DL_ENV = "../../envs/segbench.yaml"
_DL_SCRIPTS = _DlPath(workflow.current_basedir).parents[1] / "scripts"


def _dl_alternation(values):
    import re

    vals = sorted({str(v) for v in values}, key=len, reverse=True)
    return "|".join(re.escape(v) for v in vals) if vals else "^$"


def get_registry_id(dataset):
    """Registry entry behind a prepared dataset name (a config key or a registry id)."""
    spec = (config.get("datasets") or {}).get(dataset) or {}
    if spec.get("source") == "registry":
        return spec.get("registry_id", dataset)
    return dataset


def get_registry_prepared_names():
    """Names rule prepare_dataset may produce: registry ids with a recipe, plus config keys
    with source: registry."""
    names = set(DATA_REGISTRY.preparable())
    for key, spec in (config.get("datasets") or {}).items():
        if (spec or {}).get("source") == "registry":
            names.add(key)
    return sorted(names)


def get_download_inputs(wildcards):
    entry = DATA_REGISTRY[wildcards.raw]
    return [
        ancient(_DL_FILE.format(dataset=entry.id, file=f.name)) for f in entry.files
    ]


def get_download_params(wildcards):
    entry = DATA_REGISTRY[wildcards.raw]
    src = entry.file(wildcards.file)
    return {"urls": list(src.urls), "sha256": src.sha256, "size": src.size}


def get_extract_params(wildcards):
    from segbench.data.registry import default_manifest_path
    from segbench.data.manifest import read_manifest, manifest_digest

    entry = DATA_REGISTRY[wildcards.raw]
    manifest = default_manifest_path(DATA_REGISTRY, entry.id)
    return {
        "files": [
            [f.name, f.sha256, f.extract, f.strip_components] for f in entry.files
        ],
        "manifest_sha256": (
            manifest_digest(read_manifest(manifest)) if manifest.is_file() else None
        ),
    }


def get_prepare_raw(wildcards):
    entry = DATA_REGISTRY[get_registry_id(wildcards.dataset)]
    return ancient(_DL_RAW.format(dataset=entry.raw_id))


def get_prepare_params(wildcards):
    entry = DATA_REGISTRY[get_registry_id(wildcards.dataset)]
    return {
        "registry_id": entry.id,
        "classes": list(entry.classes),
        "label_map": dict(entry.label_map),
        "recipe": dict(entry.recipe or {}),
    }


rule download_file:
    output:
        _DL_FILE.replace("{dataset}", "{raw}"),
    log:
        "logs/download_file/{raw}/{file}.log",
    wildcard_constraints:
        raw=_dl_alternation(DATA_REGISTRY.names()),
        file=r"[^/]+",
    localrule: True
    conda:
        _DL_ENV
    resources:
        mem_mb=500,
        runtime=120,
    params:
        source=get_download_params,
    script:
        str(_DL_SCRIPTS / "download.py")


rule extract_dataset:
    input:
        get_download_inputs,
    output:
        directory(_DL_RAW.replace("{dataset}", "{raw}")),
    log:
        log="logs/extract_dataset/{raw}.log",
        manifest="logs/extract_dataset/{raw}.sha256",
    wildcard_constraints:
        raw=_dl_alternation(DATA_REGISTRY.names()),
    localrule: True
    conda:
        _DL_ENV
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        spec=get_extract_params,
    script:
        str(_DL_SCRIPTS / "download.py")


rule prepare_dataset:
    input:
        raw=get_prepare_raw,
    output:
        npz="data/prepared/{dataset}.npz",
        meta="data/prepared/{dataset}.json",
    log:
        "logs/prepare_dataset/{dataset}.log",
    wildcard_constraints:
        dataset=_dl_alternation(get_registry_prepared_names()),
    conda:
        _DL_ENV
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        spec=get_prepare_params,
    script:
        str(_DL_SCRIPTS / "prepare.py")
