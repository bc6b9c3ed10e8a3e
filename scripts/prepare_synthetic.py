"""Snakemake entry point: generate one synthetic dataset (segbench.data.synthetic)."""

from segbench.data.io import save_prepared
from segbench.data.synthetic import generate
from segbench.smk import script_logging

with script_logging(snakemake.log[0]) as log:
    spec = dict(snakemake.params.spec)
    images, masks, ids, meta = generate(
        spec["generator"], n=spec["n"], size=spec["size"], seed=spec["seed"], **spec["params"]
    )
    meta["name"] = snakemake.wildcards.dataset
    save_prepared(snakemake.output.npz, images, masks, ids, meta)
    log.info("wrote %s: images %s", snakemake.output.npz, images.shape)
