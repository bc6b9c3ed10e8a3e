"""Snakemake entry point: one dataset's tables in the papers' layouts (CSV, Markdown, LaTeX).

``table``: the main metric (report.metric) as class mean and per class (paper 000 Table 1);
``metrics``: one column per run-level metric the runs computed (paper 002 Table 1 / 004).
Markdown and LaTeX carry the aggregation note (``evaluation.aggregate``, docs/metrics.md).
"""

from segbench.io_utils import atomic_write_text
from segbench.reporting.common import load_tidy
from segbench.reporting.notes import header_note, snakemake_aggregate
from segbench.reporting.tables import metrics_table, paper_table, to_csv, to_latex, to_markdown
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    ds = snakemake.wildcards.dataset
    p = snakemake.params
    out = snakemake.output
    tidy = load_tidy(snakemake.input[0])
    note = header_note(snakemake_aggregate(snakemake))
    order = {"loss_order": p.losses, "model_order": p.models, "replicate": p.replicate}
    spread = "seeds (folds averaged per seed)" if p.replicate == "seed" else "seeds and folds"
    main = paper_table(tidy, ds, p.metric, p.scale, **order)
    title = f"{p.study}: {ds}, {p.metric.upper()} (%) mean ± std over {spread}"
    atomic_write_text(out.csv, to_csv(main))
    atomic_write_text(out.md, to_markdown(main, title, note))
    atomic_write_text(out.tex, to_latex(main, title, note))
    allm = metrics_table(tidy, ds, p.table_metrics, p.scale, **order)
    title = f"{p.study}: {ds}, run-level metrics, mean ± std over {spread}"
    atomic_write_text(out.metrics_csv, to_csv(allm))
    atomic_write_text(out.metrics_md, to_markdown(allm, title, note))
    atomic_write_text(out.metrics_tex, to_latex(allm, title, note))
    log.info(
        "tables for %s written (%d rows)",
        ds,
        main[["model", "fraction", "loss"]].drop_duplicates().shape[0],
    )
