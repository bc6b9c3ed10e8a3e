"""Datasets: prepared-array I/O, the embedded synthetic benchmark, and real datasets.

Real datasets, one concept per module: ``registry`` (config/datasets.yaml entries), ``fetch``
(HTTP, mirrors, retries, resume), ``archive`` (safe unpacking), ``manifest`` (per-file sha256),
``verify`` (raw-folder checks), ``extract`` (downloads -> data/raw/{raw}), ``recipes``
(data/raw -> data/prepared). Imports run one way: recipes -> registry -> archive -> manifest.
"""

from segbench.data.io import PreparedDataset, load_prepared, save_prepared

__all__ = ["PreparedDataset", "load_prepared", "save_prepared"]
