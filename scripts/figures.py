"""Snakemake entry point: figures rebuilt from the tidy table."""

from segbench.reporting.common import load_tidy
from segbench.reporting.figures import miou_vs_fraction
from segbench.smk import script_logging

with script_logging(snakemake.log[0]):
    tidy = load_tidy(snakemake.input[0])
    miou_vs_fraction(tidy, snakemake.output[0], snakemake.params.metric, snakemake.params.scale)
