"""Compatibility re-export of the former download module; import from the new homes instead.

- HTTP, mirrors, retries, resume: :mod:`segbench.data.fetch`
- raw-folder checks (manifest, layout rules): :mod:`segbench.data.verify`
- unpacking into ``data/raw/{raw}``: :mod:`segbench.data.extract`
- path templates: :data:`segbench.paths.DOWNLOAD_FILE`, :data:`segbench.paths.RAW_DIR`
- Snakemake glue: :class:`segbench.smk_data.WorkflowData`

Kept only while scripts/prepare.py imports ``RAW_DIR`` and ``verify_raw`` from here; delete the
module once it imports ``segbench.paths.RAW_DIR`` and ``segbench.data.verify.verify_raw``.
"""

from __future__ import annotations

from segbench import paths
from segbench.data.extract import extract_dataset
from segbench.data.fetch import (
    ChecksumError,
    DownloadError,
    FetchResult,
    candidate_urls,
    fetch,
    fetch_dataset_file,
)
from segbench.data.verify import check_expectations, verify_raw

RAW_DIR = paths.RAW_DIR.replace("{raw}", "{dataset}")
"""The old template (``{dataset}`` placeholder) of :data:`segbench.paths.RAW_DIR`."""

DOWNLOAD_FILE = paths.DOWNLOAD_FILE.replace("{raw}", "{dataset}")
"""The old template (``{dataset}`` placeholder) of :data:`segbench.paths.DOWNLOAD_FILE`."""

__all__ = [
    "DOWNLOAD_FILE",
    "RAW_DIR",
    "ChecksumError",
    "DownloadError",
    "FetchResult",
    "candidate_urls",
    "check_expectations",
    "extract_dataset",
    "fetch",
    "fetch_dataset_file",
    "verify_raw",
]
