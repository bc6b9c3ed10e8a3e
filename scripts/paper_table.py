"""Snakemake entry point: one dataset's table in the paper-000 Table 1 layout (CSV, MD, LaTeX)."""

import pandas as pd

from segbench.io_utils import atomic_write_text
from segbench.reporting.tables import paper_table, to_csv, to_latex, to_markdown
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    ds = snakemake.wildcards.dataset
    p = snakemake.params
    tidy = pd.read_csv(snakemake.input[0], dtype={"fraction": str})
    long = paper_table(tidy, ds, p.metric, p.scale, loss_order=p.losses, model_order=p.models)
    title = f"{p.study}: {ds}, {p.metric.upper()} (%) mean ± std over seeds and folds"
    atomic_write_text(snakemake.output.csv, to_csv(long))
    atomic_write_text(snakemake.output.md, to_markdown(long, title))
    atomic_write_text(snakemake.output.tex, to_latex(long, title))
    log.info("tables for %s written", ds)
