"""Snakemake entry point: qualitative panel of two losses where they disagree most."""

from segbench.reporting.qualitative import qualitative_figure
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    inp = snakemake.input
    pair = tuple(snakemake.params.pair)
    choice = qualitative_figure(
        list(zip(inp.run_a, inp.probs_a, strict=True)),
        list(zip(inp.run_b, inp.probs_b, strict=True)),
        inp.npz,
        pair,
        snakemake.output[0],
        dataset=snakemake.wildcards.dataset,
    )
    if choice is not None:
        log.info("image %s of %s: %.1f %% of pixels differ", choice.image_id, choice.cell,
                 100 * choice.disagreement)  # fmt: skip
