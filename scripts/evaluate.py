"""Snakemake entry point: metrics of one run from its saved test probabilities."""

from segbench.evaluate import evaluate_run
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    summary = evaluate_run(
        snakemake.input.probs,
        snakemake.input.npz,
        snakemake.input.run,
        dict(snakemake.params.evaluation),
        snakemake.output.metrics,
        snakemake.output.per_image,
        snakemake.output.reliability,
    )
    log.info("mIoU %.4f over %d images", summary["mean_iou"], summary["n_images"])
