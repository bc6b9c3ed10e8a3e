"""Glue between workflow/rules/download.smk and the dataset registry: the names, paths and
tracked parameters the download -> extract -> prepare rules ask for, and their input functions.

The rules file only wires these (``input: DATA_SOURCES.get_extract_input`` ...): each
``get_*`` method takes Snakemake's ``wildcards`` and is a plain input / params function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from segbench import paths
from segbench.data.manifest import manifest_digest, read_manifest
from segbench.data.recipes import RECIPES
from segbench.data.registry import DEFAULT_REGISTRY, default_manifest_path, load_registry


def retry_scaled(base: float) -> Callable[[Any, int], float]:
    """A resource that grows with each attempt (``--retries``): base, 2 x base, 3 x base, ...

    Same rule as ``retry_scaled`` in workflow/rules/common.smk; here because download.smk is
    also included on its own (tests/data/workflow/Snakefile), without common.smk.
    """
    return lambda wildcards, attempt: base * attempt


class WorkflowData:
    """What workflow/rules/download.smk asks about the registry, in one testable place.

    Args:
        config: the Snakemake config. Keys read: ``download.registry`` (default
            ``config/datasets.yaml``; relative to the working directory, else to ``base``) and
            ``datasets`` (entries with ``source: registry`` and an optional ``registry_id`` map
            a prepared name to a registry entry).
        base: the workflow's root, where a relative registry path missing from the working
            directory is looked up.

    The registry is loaded with the recipe names of :data:`segbench.data.recipes.RECIPES`, so
    an entry naming an unknown recipe fails while the DAG is built.
    """

    def __init__(self, config: Mapping[str, object], base: str | Path | None = None) -> None:
        dl = config.get("download") or {}
        if not isinstance(dl, Mapping):
            raise ValueError(f"config key 'download' must be a mapping, got {dl!r}")
        registry = Path(str(dl.get("registry", DEFAULT_REGISTRY)))
        # ``snakemake --directory elsewhere``: a relative registry path missing from the working
        # directory is the workflow's own (``base``: the repository root).
        fallback = Path(base) / registry if base is not None else None
        if not registry.exists() and fallback is not None and fallback.exists():
            registry = fallback
        self.registry = load_registry(str(registry), recipe_names=RECIPES.names())
        datasets = config.get("datasets") or {}
        self.datasets: Mapping[str, Mapping[str, object]] = (
            datasets if isinstance(datasets, Mapping) else {}
        )

    def registry_id(self, dataset: str) -> str:
        """Registry entry behind a prepared dataset name (a config key or a registry id)."""
        spec = self.datasets.get(dataset) or {}
        if spec.get("source") == "registry":
            return str(spec.get("registry_id", dataset))
        return dataset

    def raw_names(self) -> list[str]:
        """Registry ids (values of the ``{raw}`` wildcard)."""
        return self.registry.names()

    def prepared_names(self) -> list[str]:
        """Names rule prepare_dataset may produce: registry ids with a recipe, plus config keys
        with ``source: registry``."""
        names = set(self.registry.preparable())
        names.update(k for k, v in self.datasets.items() if (v or {}).get("source") == "registry")
        # a study key declared with another source (e.g. synthetic smoke data) is not ours
        names -= {
            k for k, v in self.datasets.items() if (v or {}).get("source", "registry") != "registry"
        }
        return sorted(names)

    def download_paths(self, raw: str) -> list[str]:
        """The files rule download_file fetches for registry entry ``raw``."""
        entry = self.registry[raw]
        return [paths.DOWNLOAD_FILE.format(raw=entry.id, file=f.name) for f in entry.files]

    def download_params(self, raw: str, file: str) -> dict[str, object]:
        """Tracked parameters of one download (a changed URL list or checksum re-runs it)."""
        src = self.registry[raw].file(file)
        return {"urls": list(src.urls), "sha256": src.sha256, "size": src.size}

    def extract_params(self, raw: str) -> dict[str, object]:
        """Tracked parameters of an extraction: the files and the committed manifest's digest."""
        entry = self.registry[raw]
        manifest = default_manifest_path(self.registry, entry.id)
        return {
            "files": [[f.name, f.sha256, f.extract, f.strip_components] for f in entry.files],
            "manifest_sha256": manifest_digest(read_manifest(manifest))
            if manifest.is_file()
            else None,
        }

    def raw_path(self, dataset: str) -> str:
        """The raw folder a prepared dataset is made from."""
        entry = self.registry[self.registry_id(dataset)]
        return paths.RAW_DIR.format(raw=entry.raw_id)

    def prepare_params(self, dataset: str) -> dict[str, object]:
        """Tracked parameters of a preparation (classes, label map, recipe)."""
        entry = self.registry[self.registry_id(dataset)]
        return {
            "registry_id": entry.id,
            "classes": list(entry.classes),
            "label_map": dict(entry.label_map),
            "recipe": dict(entry.recipe or {}),
        }

    # ------------------------------------------------------------------ Snakemake input functions
    # Inputs are ancient(): once data/downloads/* or data/raw/{raw} exist (e.g. after `dvc pull`)
    # their mtimes never re-run a job; the tracked params above do.

    def get_download_params(self, wildcards: Any) -> dict[str, object]:
        """params of rule download_file."""
        return self.download_params(wildcards.raw, wildcards.file)

    def get_extract_input(self, wildcards: Any) -> list[Any]:
        """input of rule extract_dataset: the entry's downloads, ancient()."""
        from snakemake.io import ancient

        return [ancient(p) for p in self.download_paths(wildcards.raw)]

    def get_extract_params(self, wildcards: Any) -> dict[str, object]:
        """params of rule extract_dataset."""
        return self.extract_params(wildcards.raw)

    def get_prepare_input(self, wildcards: Any) -> Any:
        """input ``raw`` of rule prepare_dataset: the raw folder, ancient()."""
        from snakemake.io import ancient

        return ancient(self.raw_path(wildcards.dataset))

    def get_prepare_params(self, wildcards: Any) -> dict[str, object]:
        """params of rule prepare_dataset."""
        return self.prepare_params(wildcards.dataset)
