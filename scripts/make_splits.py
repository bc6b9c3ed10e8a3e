"""Snakemake entry point: k-fold splits with nested training fractions (segbench.splits)."""

from segbench.data.io import load_prepared
from segbench.io_utils import atomic_write_text
from segbench.smk import script_logging
from segbench.splits import dumps, make_splits

with script_logging(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    data = load_prepared(snakemake.input.npz)
    splits = make_splits(
        data.ids,
        n_folds=int(spec["folds"]),
        fractions=spec["fractions"],
        seed=int(spec["seed"]),
        val_fraction=float(spec["val_fraction"]),
        groups=data.groups,
        dataset=snakemake.wildcards.dataset,
    )
    atomic_write_text(snakemake.output[0], dumps(splits))
    log.info("wrote %s (%d folds)", snakemake.output[0], len(splits["folds"]))
