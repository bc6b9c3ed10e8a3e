"""Snakemake entry point: metric against the `lam` parameter per loss family (paper 003 Fig. 3).

The loss configurations come from the runs' run.json (segbench.reporting.sweeps), not the
study config."""

from segbench.reporting.common import load_tidy
from segbench.reporting.figures import lambda_ablation
from segbench.reporting.sweeps import sweeps_from_runs
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    tidy = load_tidy(snakemake.input.tidy)
    sweeps = sweeps_from_runs(snakemake.input.runs)
    lambda_ablation(tidy, sweeps, snakemake.output[0], p.metric, p.scale)
    log.info("lambda sweeps: %s", sweeps.groupby("family")["lam"].apply(list).to_dict())
