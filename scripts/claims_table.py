"""Snakemake entry point: the claims table (report.claims, segbench.stats.evaluate_claims)."""

import yaml

from segbench.io_utils import atomic_write_text
from segbench.reporting.common import load_tidy, write_csv
from segbench.reporting.comparison import claims_markdown, claims_table, no_claims_frame
from segbench.reporting.notes import snakemake_aggregate
from segbench.reporting.statistics import add_table_note
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    aggregate = snakemake_aggregate(snakemake)  # worded in the table header
    tidy = load_tidy(snakemake.input.tidy)
    if snakemake.input.get("claims"):
        with open(snakemake.input.claims) as fh:
            claims = yaml.safe_load(fh) or []
        if not isinstance(claims, list):
            raise ValueError(f"{snakemake.input.claims}: expected a list of claims")
        table = claims_table(tidy, claims, p.alpha)
    else:
        table = no_claims_frame("report.claims is null for this study")
    write_csv(table, snakemake.output.csv)
    title = f"{p.study}: claims of the paper on the reproduced runs"
    md = claims_markdown(table, title, p.alpha)
    mean_over = (
        "mean_better / mean_than / mean_diff are means over the paired (dataset, model, "
        "fraction, seed, fold) runs of the comparison"
    )
    atomic_write_text(snakemake.output.md, add_table_note(md, aggregate, mean_over))
    log.info("claims: %s", table["verdict"].value_counts().to_dict())
