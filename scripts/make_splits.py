"""Snakemake entry point: the split file of one dataset (segbench.splits.prepared_splits).

Random (default): k-fold splits with nested training fractions; split options of the prepared
dataset (its sidecar's ``recipe.split`` / ``recipe.train_only``, set by the registry recipe,
e.g. paper 000's Drosophila protocol) apply on top of the study's folds / seed / val_fraction /
fractions; a ``split`` dict in the rule's spec overrides them. ``source: official`` in the spec
(``datasets.<key>.split: official``): one fold from the sidecar's ``recipe.official_split``.
"""

from pathlib import Path

from segbench.data.io import load_prepared
from segbench.io_utils import atomic_write_text
from segbench.smk import script_logging
from segbench.splits import dumps, prepared_splits, split_options

with script_logging(snakemake.log[0]) as log:
    spec = snakemake.params.spec
    data = load_prepared(snakemake.input.npz)
    sidecar = Path(snakemake.input.npz).with_suffix(".json")
    if spec.get("source", "random") == "official":
        log.info("official split of %s (recipe.official_split)", sidecar)
    else:
        options = split_options(data.meta, spec)
        if options:
            shown = {k: (len(v) if k == "train_only" else v) for k, v in options.items()}
            log.info("split options of the prepared dataset: %s", shown)
            if "test_groups" in options:
                log.info(
                    "group-count folds: the study's val_fraction %s is not used",
                    spec["val_fraction"],
                )
    splits = prepared_splits(
        data.ids, data.groups, data.meta, spec, snakemake.wildcards.dataset, sidecar
    )
    atomic_write_text(snakemake.output[0], dumps(splits))
    log.info("wrote %s (%d folds)", snakemake.output[0], len(splits["folds"]))
