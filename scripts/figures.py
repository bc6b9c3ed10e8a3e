"""Snakemake entry point: figures rebuilt from the tidy table."""

import pandas as pd

from segbench.reporting.figures import miou_vs_fraction
from segbench.smk import script_logging

with script_logging(snakemake.log[0]):
    tidy = pd.read_csv(snakemake.input[0], dtype={"fraction": str})
    miou_vs_fraction(tidy, snakemake.output[0], snakemake.params.metric, snakemake.params.scale)
