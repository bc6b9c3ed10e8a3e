"""Snakemake entry point: DSC against the Balance loss alpha (paper 004 Fig. 3), the losses run
beside it as dashed lines. Loss configurations come from the runs' run.json
(segbench.reporting.sweeps)."""

from segbench.reporting.common import load_tidy
from segbench.reporting.figures import alpha_ablation
from segbench.reporting.sweeps import sweeps_from_runs
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    tidy = load_tidy(snakemake.input.tidy)
    sweeps = sweeps_from_runs(snakemake.input.runs, "alpha")
    alpha_ablation(tidy, sweeps, snakemake.output[0], p.metric, p.scale, p.reference)
    log.info("alpha sweeps: %s", sweeps.groupby("family")["alpha"].apply(list).to_dict())
    log.info("reference losses: %s", list(p.reference))
