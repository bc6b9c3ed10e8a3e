"""Snakemake entry point: rank the search configurations by validation score, keep the best
(segbench.reporting.search), write the selection table and the tidy table of the kept runs."""

import io

from segbench.io_utils import atomic_write_text
from segbench.reporting import search
from segbench.reporting.common import load_tidy
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    runs = search.read_search_runs(snakemake.input.runs)
    selection = search.select_configs(runs, p.keep)
    tidy = search.selected_tidy(load_tidy(snakemake.input.tidy), selection)
    for out, df in ((snakemake.output.csv, selection), (snakemake.output.tidy, tidy)):
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        atomic_write_text(out, buf.getvalue())
    title = (
        f"{p.study}: hyper-parameter search, configurations ranked by validation score "
        "(kept ones enter the tables)"
    )
    atomic_write_text(snakemake.output.md, search.selection_markdown(selection, title))
    log.info(
        "search selection: %d of %d configurations kept (%d runs)",
        int(selection["kept"].sum()),
        len(selection),
        len(runs),
    )
