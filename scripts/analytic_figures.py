"""Snakemake entry point: loss / gradient curves from the loss implementations (no training)."""

from pathlib import Path

from segbench.reporting.analytic import build_analytic_figure
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    for path in snakemake.output:
        build_analytic_figure(Path(path).stem, path)
        log.info("wrote %s", path)
