"""Snakemake entry point: collect every run's metrics.json into the tidy table."""

import io

from segbench.io_utils import atomic_write_text
from segbench.reporting.aggregate import tidy_from_metrics
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    tidy = tidy_from_metrics(snakemake.input)
    buf = io.StringIO()
    tidy.to_csv(buf, index=False)
    atomic_write_text(snakemake.output[0], buf.getvalue())
    log.info("tidy table: %d rows from %d runs", len(tidy), len(snakemake.input))
