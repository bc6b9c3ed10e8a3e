"""Snakemake entry point: reliability diagrams pooled per (dataset, loss) (paper 002)."""

from segbench.reporting.common import write_csv
from segbench.reporting.figures import pool_reliability, reliability_diagram
from segbench.reporting.runs import load_reliability
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    frames, diverged = load_reliability(snakemake.input.metrics, snakemake.input.reliability)
    pooled = pool_reliability(frames)
    write_csv(pooled, snakemake.output.csv)
    reliability_diagram(pooled, snakemake.output.png, snakemake.params.losses)
    log.info("pooled %d runs (%d diverged runs left out)", len(frames), diverged)
