"""Snakemake entry point: train every run of a pack in one process (segbench.train.train_pack)."""

from pathlib import Path

from segbench.runspec import RunSpec
from segbench.smk import script_logging
from segbench.train import train_pack

with script_logging(snakemake.log[0]) as log:
    specs = [RunSpec.from_dict(spec) for spec in snakemake.params.specs]
    out_dirs = [Path(p).parent for p in snakemake.output.run]
    results = train_pack(specs, snakemake.input.npz, snakemake.input.splits, out_dirs)
    for spec, result in zip(specs, results, strict=True):
        log.info("fold %d: %s", spec.fold, result)
