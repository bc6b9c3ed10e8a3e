"""Snakemake entry point: violin plots of per-image scores per loss (paper 003 Fig. 4)."""

from segbench.reporting.figures import score_violins
from segbench.reporting.runs import load_image_scores
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    p = snakemake.params
    scores, diverged = load_image_scores(
        snakemake.input.metrics, snakemake.input.per_image, p.metric
    )
    score_violins(scores, snakemake.output[0], p.metric, p.scale, p.losses)
    log.info("%d image scores (%d diverged runs left out)", len(scores), diverged)
