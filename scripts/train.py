"""Snakemake entry point: train one run (segbench.train.train_run)."""

from pathlib import Path

from segbench.runspec import RunSpec
from segbench.smk import script_logging
from segbench.train import train_run

with script_logging(snakemake.log[0]) as log:
    spec = RunSpec.from_dict(snakemake.params.spec)
    result = train_run(
        spec,
        prepared_npz=snakemake.input.npz,
        splits_json=snakemake.input.splits,
        out_dir=Path(snakemake.output.run).parent,
    )
    log.info("run finished: %s", result)
