"""Datasets: prepared-array I/O, the embedded synthetic benchmark, and (data.registry) real datasets."""

from segbench.data.io import PreparedDataset, load_prepared, save_prepared

__all__ = ["PreparedDataset", "load_prepared", "save_prepared"]
