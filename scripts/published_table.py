"""Snakemake entry point: reproduced vs published numbers (report.paper_results)."""

from segbench.io_utils import atomic_write_text
from segbench.reporting import comparison
from segbench.reporting.common import load_tidy, write_csv
from segbench.reporting.notes import snakemake_aggregate
from segbench.schema import resolve_section
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    tidy = load_tidy(snakemake.input.tidy)
    if snakemake.input.get("published"):
        table = comparison.published_comparison(
            tidy, comparison.read_published(snakemake.input.published), p.replicate
        )
    else:
        table = comparison.no_published_frame("report.paper_results is null for this study")
    write_csv(table, snakemake.output.csv)
    title = f"{p.study}: reproduced vs published"
    aggregate = snakemake_aggregate(snakemake)
    rows = resolve_section("report", snakemake.config.get("report"))["published_rows"]
    atomic_write_text(
        snakemake.output.md, comparison.comparison_markdown(table, title, aggregate, rows)
    )
    log.info("published comparison: %s", table["status"].value_counts().to_dict())
