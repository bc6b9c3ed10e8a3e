"""Snakemake entry point: summary statistics, paired tests, Friedman-Nemenyi and the CD diagram."""

from segbench.io_utils import atomic_write_text
from segbench.reporting import statistics as st
from segbench.reporting.common import available_metrics, load_tidy, metric_info, write_csv
from segbench.reporting.figures import cd_figure
from segbench.reporting.notes import snakemake_aggregate
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    out = snakemake.output
    aggregate = snakemake_aggregate(snakemake)  # worded in every table header
    tidy = load_tidy(snakemake.input[0])
    metrics = available_metrics(tidy, p.table_metrics)
    main = metric_info(p.metric).name
    if main in metrics:  # the main metric first
        metrics = [main] + [m for m in metrics if m != main]

    summary = st.summary_table(tidy, metrics, p.scale, p.replicate, loss_order=p.losses)
    write_csv(summary, out.summary_csv)
    spread = "seeds (folds averaged per seed)" if p.replicate == "seed" else "seeds and folds"
    title = f"{p.study}: mean ± std over {spread} [95 % bootstrap CI of the mean]"
    atomic_write_text(out.summary_md, st.summary_markdown(summary, title, aggregate, p.replicate))

    paired = st.paired_table(tidy, metrics, p.scale, p.alpha)
    write_csv(paired, out.paired_csv)
    title = f"{p.study}: paired Wilcoxon signed-rank tests, Holm-corrected per block"
    atomic_write_text(out.paired_md, st.paired_markdown(paired, title, p.alpha, aggregate))

    reports = [st.friedman_analysis(tidy, m, alpha=p.alpha) for m in metrics]
    write_csv(st.friedman_frame(reports), out.friedman_csv)
    title = f"{p.study}: Friedman test, Nemenyi post-hoc, average ranks"
    atomic_write_text(out.friedman_md, st.friedman_markdown(reports, title, aggregate))
    cd_figure(reports[0], out.cd)
    log.info(
        "summary %d rows, %d paired comparisons, Friedman on %s: %s",
        len(summary),
        len(paired),
        reports[0].metric,
        "ok" if reports[0].ok else reports[0].reason,
    )
