"""Prepare a registry dataset: ``data/raw/{raw}`` -> ``data/prepared/{dataset}.npz`` + ``.json``.

Under Snakemake (rule ``prepare_dataset`` in workflow/rules/download.smk) the dataset is the
``{dataset}`` wildcard. Command line (from the repository root)::

    python scripts/prepare.py DATASET [--registry config/datasets.yaml] [--out data/prepared]

The raw folder is verified against the committed manifest again before the recipe runs, and the
sidecar records the archive sha256s, the manifest digest and the recipe parameters. Every
declared class must occur in the prepared masks (a label_map that does not fit the masks fails,
naming the raw values and files). On the command line an error prints one ``error: ...`` line and
exits with status 1.
"""

import argparse
import logging
from pathlib import Path

from segbench.data.io import DatasetFormatError
from segbench.data.manifest import ManifestError
from segbench.data.recipes import RECIPES, RecipeError, prepare_dataset
from segbench.data.registry import (
    DEFAULT_REGISTRY,
    DatasetRegistry,
    RegistryError,
    default_manifest_path,
    load_registry,
)
from segbench.data.verify import verify_raw
from segbench.paths import RAW_DIR
from segbench.smk import script_main

log = logging.getLogger("segbench.prepare")


def prepare(
    registry: DatasetRegistry,
    registry_id: str,
    raw_dir: Path,
    out_npz: Path,
    *,
    name: str | None = None,
    allow_unpinned: bool = True,
) -> None:
    """Verify ``raw_dir`` and run the entry's recipe, writing ``out_npz`` and its sidecar."""
    entry = registry[registry_id]
    raw_entry = registry[entry.raw_id]
    provenance = verify_raw(
        raw_entry,
        raw_dir,
        default_manifest_path(registry, raw_entry.id),
        allow_unpinned=allow_unpinned,
        archives_verified=bool(raw_entry.files) and all(f.sha256 for f in raw_entry.files),
    )
    source = {
        "registry": str(registry.path),
        "registry_id": entry.id,
        "raw_id": raw_entry.id,
        "raw_dir": str(raw_dir),
        "homepage": raw_entry.homepage,
        "doi": raw_entry.doi,
        "files": [
            {"name": f.name, "urls": list(f.urls), "sha256": f.sha256, "size": f.size}
            for f in raw_entry.files
        ],
        **{k: v for k, v in provenance.items() if k != "extra_files"},
    }
    if name is not None and name != entry.id:
        from dataclasses import replace

        entry = replace(entry, id=name)
    arrays = prepare_dataset(entry, raw_dir, out_npz, source=source)
    counts = arrays.masks.reshape(-1)
    log.info(
        "%s: %d samples, images %s, classes %s, proportions %s",
        out_npz,
        len(arrays.ids),
        list(arrays.images.shape),
        list(entry.classes),
        [round(float((counts == k).mean()), 4) for k in range(entry.num_classes)],
    )


def run_snakemake(smk) -> None:  # noqa: ANN001 (the Snakemake object)
    """Entry point under Snakemake's ``script:`` directive."""
    dl = dict(smk.config).get("download") or {}
    registry = load_registry(dl.get("registry", DEFAULT_REGISTRY), recipe_names=RECIPES.names())
    prepare(
        registry,
        smk.params.spec["registry_id"],
        Path(smk.input.raw),
        Path(smk.output.npz),
        name=smk.wildcards["dataset"],
        allow_unpinned=bool(dl.get("allow_unpinned", True)),
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("dataset")
    p.add_argument("--registry", default=DEFAULT_REGISTRY)
    p.add_argument("--out", default="data/prepared", help="output folder")
    args = p.parse_args(argv)
    registry = load_registry(args.registry, recipe_names=RECIPES.names())
    entry = registry[args.dataset]
    prepare(
        registry,
        entry.id,
        Path(RAW_DIR.format(raw=entry.raw_id)),
        Path(args.out) / f"{entry.id}.npz",
    )
    return 0


if __name__ == "__main__":
    script_main(
        globals(),
        run_snakemake,
        main,
        (RecipeError, RegistryError, ManifestError, DatasetFormatError),
    )
