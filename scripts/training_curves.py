"""Snakemake entry point: training curves per optimiser from the runs' history.csv
(paper 002 Fig. 5, App. D)."""

from segbench.reporting.figures import load_histories, training_curves
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    histories = load_histories(snakemake.input.runs, snakemake.input.history)
    training_curves(histories, snakemake.output[0], snakemake.params.losses, snakemake.params.scale)
    if not histories.empty:
        log.info("optimisers: %s", sorted(histories["optimizer"].unique()))
