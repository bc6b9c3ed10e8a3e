"""Snakemake entry point: collect every run's metrics.json into the tidy table.

The run-level aggregation (``evaluation.aggregate``: image | dataset) picks which of the two
aggregations every metrics.json holds fills the table (docs/metrics.md "Aggregation").
"""

import io

from segbench.io_utils import atomic_write_text
from segbench.reporting.aggregate import tidy_from_metrics
from segbench.reporting.notes import snakemake_aggregate
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    aggregate = snakemake_aggregate(snakemake)
    tidy = tidy_from_metrics(snakemake.input, aggregate)
    buf = io.StringIO()
    tidy.to_csv(buf, index=False)
    atomic_write_text(snakemake.output[0], buf.getvalue())
    log.info(
        "tidy table (%s aggregation): %d rows from %d runs",
        aggregate,
        len(tidy),
        len(snakemake.input),
    )
