"""The dataset registry: ``config/datasets.yaml`` loaded into checked, typed entries.

Each entry says where a dataset comes from (official URLs, archive names, archive sha256 where
one is published), how its extracted content is pinned (a committed per-file sha256 manifest
under ``config/manifests/``), its licence and citation, its classes and label mapping, and the
preparation recipe that turns the raw files into ``data/prepared/{dataset}.npz`` (see
docs/CONVENTIONS.md and docs/datasets.md).

Two access kinds:

- ``download``: files are fetched from ``urls`` (or a configured mirror) and verified.
- ``manual``: the files cannot be fetched without a licence click-through or login; the entry's
  ``instructions`` say where to get them and where to put them, and the workflow verifies them.

Everything is validated on load; errors raise :class:`RegistryError` naming the file, the
dataset, the key and the offending value.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segbench.data.archive import is_archive_name
from segbench.data.manifest import SHA256_RE

DEFAULT_REGISTRY = "config/datasets.yaml"
"""Registry path relative to the repository root (the workflow's working directory)."""

ACCESS_KINDS = ("download", "manual")
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+() -]*$")

_ENTRY_KEYS = {
    "title", "papers", "access", "homepage", "doi", "licence", "citation", "files",
    "instructions", "manifest", "expect", "classes", "label_map", "recipe", "raw_from", "notes",
}
_FILE_KEYS = {"name", "urls", "sha256", "size", "extract", "strip_components", "note"}


class RegistryError(ValueError):
    """The dataset registry file is malformed, or a dataset id is unknown."""


@dataclass(frozen=True)
class SourceFile:
    """One file to fetch (an archive, or a plain file such as a NIfTI volume).

    Attributes:
        name: file name under ``data/downloads/{dataset}/`` and on a mirror.
        urls: official URLs, in order of preference (empty for manual entries).
        sha256: published archive checksum, or None when none is known.
        size: size in bytes, or None.
        extract: whether to unpack it (default: True for zip/tar names).
        strip_components: leading folders to drop when unpacking, or ``"auto"`` (drop a single
            common top-level folder).
    """

    name: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size: int | None = None
    extract: bool = False
    strip_components: int | str = "auto"
    note: str = ""


@dataclass(frozen=True)
class Expectation:
    """A layout check for data without a pinned manifest: ``glob`` must match ``count`` files
    (exactly) or at least ``min`` files."""

    glob: str
    count: int | None = None
    min: int | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the registry (see the module docstring and docs/datasets.md)."""

    id: str
    title: str
    access: str
    licence: str
    citation: str
    classes: tuple[str, ...]
    papers: tuple[str, ...] = ()
    homepage: str = ""
    doi: str = ""
    files: tuple[SourceFile, ...] = ()
    instructions: str = ""
    manifest: Path | None = None
    expect: tuple[Expectation, ...] = ()
    label_map: Mapping[str, Any] = field(default_factory=dict)
    recipe: Mapping[str, Any] | None = None
    raw_from: str | None = None
    notes: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def raw_id(self) -> str:
        """The dataset whose raw folder this entry prepares from (itself unless ``raw_from``)."""
        return self.raw_from or self.id

    @property
    def recipe_name(self) -> str | None:
        return None if self.recipe is None else str(self.recipe["name"])

    @property
    def recipe_params(self) -> dict[str, Any]:
        return {} if self.recipe is None else dict(self.recipe.get("params") or {})

    def file(self, name: str) -> SourceFile:
        """The source file called ``name``.

        Raises:
            RegistryError: naming the dataset and its files, if there is none.
        """
        for f in self.files:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.files) or "(none)"
        raise RegistryError(f"dataset {self.id!r} has no file {name!r}; its files: {known}")


class DatasetRegistry(Mapping[str, DatasetEntry]):
    """Read-only mapping ``dataset id -> DatasetEntry`` loaded from a YAML file."""

    def __init__(self, entries: dict[str, DatasetEntry], path: Path) -> None:
        self._entries = dict(sorted(entries.items()))
        self.path = path

    def __getitem__(self, name: str) -> DatasetEntry:
        try:
            return self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise RegistryError(
                f"unknown dataset {name!r} in {self.path}; known datasets: {', '.join(known)}.{hint}"
            ) from None

    def get_entry(self, name: str) -> DatasetEntry:
        """Same as ``registry[name]`` (raises :class:`RegistryError` for unknown names)."""
        return self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def preparable(self) -> list[str]:
        """Ids of entries with a preparation recipe (those that can become ``data/prepared``)."""
        return [k for k, e in self._entries.items() if e.recipe is not None]


def _fail(where: str, msg: str) -> RegistryError:
    return RegistryError(f"{where}: {msg}")


def _str(where: str, key: str, value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _fail(where, f"key {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_file(where: str, raw: Any, access: str) -> SourceFile:
    if not isinstance(raw, dict):
        raise _fail(where, f"each entry of 'files' must be a mapping, got {raw!r}")
    unknown = set(raw) - _FILE_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {sorted(unknown)} in a file entry; allowed: {sorted(_FILE_KEYS)}")
    name = _str(where, "files[].name", raw.get("name"))
    if not FILE_RE.match(name) or name in (".", ".."):
        raise _fail(where, f"file name {name!r} must be a plain file name (no folders)")
    urls = raw.get("urls") or []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise _fail(where, f"file {name!r}: 'urls' must be a list of strings, got {urls!r}")
    if access == "download" and not urls:
        raise _fail(where, f"file {name!r}: access 'download' needs at least one URL in 'urls'")
    sha = raw.get("sha256")
    if sha is not None:
        sha = str(sha).lower()
        if not SHA256_RE.match(sha):
            raise _fail(where, f"file {name!r}: sha256 {raw.get('sha256')!r} is not 64 hex digits")
    size = raw.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise _fail(where, f"file {name!r}: size must be a non-negative integer, got {size!r}")
    extract = raw.get("extract", is_archive_name(name))
    if not isinstance(extract, bool):
        raise _fail(where, f"file {name!r}: extract must be true or false, got {extract!r}")
    strip = raw.get("strip_components", "auto")
    if not (strip == "auto" or (isinstance(strip, int) and not isinstance(strip, bool) and strip >= 0)):
        raise _fail(where, f"file {name!r}: strip_components must be 'auto' or an integer >= 0, got {strip!r}")
    return SourceFile(
        name=name, urls=tuple(urls), sha256=sha, size=size, extract=extract,
        strip_components=strip, note=str(raw.get("note") or ""),
    )


def _parse_label_map(where: str, raw: Any, num_classes: int) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(where, f"label_map must be a mapping, got {raw!r}")
    if "threshold" in raw:
        if set(raw) != {"threshold"} or not isinstance(raw["threshold"], int | float):
            raise _fail(where, f"label_map {{threshold: T}} takes one number, got {raw!r}")
        if num_classes != 2:
            raise _fail(where, f"label_map 'threshold' needs exactly 2 classes, got {num_classes}")
        return {"threshold": raw["threshold"]}
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if not isinstance(k, int) or isinstance(k, bool) or not isinstance(v, int) or isinstance(v, bool):
            raise _fail(where, f"label_map entries must be <raw int>: <class index>, got {k!r}: {v!r}")
        if not 0 <= v < num_classes:
            raise _fail(where, f"label_map value {k}: {v} is outside the class indices 0..{num_classes - 1}")
        out[str(k)] = v
    return {"values": out}


def _parse_entry(
    path: Path, name: str, raw: Any, recipe_names: set[str] | None
) -> DatasetEntry:
    where = f"{path}: dataset {name!r}"
    if not ID_RE.match(name):
        raise _fail(f"{path}", f"dataset id {name!r} must match {ID_RE.pattern}")
    if not isinstance(raw, dict):
        raise _fail(where, f"entry must be a mapping, got {type(raw).__name__}")
    unknown = set(raw) - _ENTRY_KEYS
    if unknown:
        close = {k: difflib.get_close_matches(k, sorted(_ENTRY_KEYS), n=1) for k in unknown}
        hints = ", ".join(f"{k!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for k, c in close.items())
        raise _fail(where, f"unknown key(s) {hints}; allowed: {sorted(_ENTRY_KEYS)}")
    access = raw.get("access")
    if access not in ACCESS_KINDS:
        raise _fail(where, f"key 'access' must be one of {list(ACCESS_KINDS)}, got {access!r}")
    classes = raw.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) and c for c in classes):
        raise _fail(where, f"key 'classes' must list at least 2 class names, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise _fail(where, f"key 'classes' has duplicates: {classes!r}")
    files_raw = raw.get("files") or []
    if not isinstance(files_raw, list):
        raise _fail(where, f"key 'files' must be a list, got {files_raw!r}")
    files = tuple(_parse_file(where, f, access) for f in files_raw)
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise _fail(where, f"file names must be unique, got {names!r}")
    raw_from = raw.get("raw_from")
    if raw_from is not None and (files or not isinstance(raw_from, str)):
        raise _fail(where, "key 'raw_from' (reuse another dataset's raw folder) excludes 'files'")
    if access == "download" and not files and raw_from is None:
        raise _fail(where, "access 'download' needs at least one entry in 'files'")
    instructions = _str(where, "instructions", raw.get("instructions"), required=access == "manual")
    manifest = raw.get("manifest")
    manifest_path: Path | None = None
    if manifest is not None:
        manifest_path = Path(_str(where, "manifest", manifest))
        if not manifest_path.is_absolute():
            manifest_path = path.parent / manifest_path
    expect_raw = raw.get("expect") or []
    if not isinstance(expect_raw, list):
        raise _fail(where, f"key 'expect' must be a list, got {expect_raw!r}")
    expect = []
    for e in expect_raw:
        if not isinstance(e, dict) or not isinstance(e.get("glob"), str) or set(e) - {"glob", "count", "min"}:
            raise _fail(where, f"each 'expect' item is {{glob: str, count: int}} or {{glob, min}}, got {e!r}")
        expect.append(Expectation(glob=e["glob"], count=e.get("count"), min=e.get("min")))
    recipe = raw.get("recipe")
    if recipe is not None:
        if not isinstance(recipe, dict) or not isinstance(recipe.get("name"), str):
            raise _fail(where, f"key 'recipe' must be null or {{name: str, params: mapping}}, got {recipe!r}")
        if set(recipe) - {"name", "params"}:
            raise _fail(where, f"key 'recipe' allows only 'name' and 'params', got {sorted(recipe)}")
        if not isinstance(recipe.get("params") or {}, dict):
            raise _fail(where, f"recipe params must be a mapping, got {recipe.get('params')!r}")
        if recipe_names is not None and recipe["name"] not in recipe_names:
            close = difflib.get_close_matches(recipe["name"], sorted(recipe_names), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _fail(
                where,
                f"recipe {recipe['name']!r} is not registered; known recipes: "
                f"{', '.join(sorted(recipe_names))}.{hint}",
            )
    papers = raw.get("papers") or []
    if not isinstance(papers, list):
        raise _fail(where, f"key 'papers' must be a list, got {papers!r}")
    return DatasetEntry(
        id=name,
        title=_str(where, "title", raw.get("title")),
        access=access,
        licence=_str(where, "licence", raw.get("licence")),
        citation=_str(where, "citation", raw.get("citation")),
        classes=tuple(classes),
        papers=tuple(str(p) for p in papers),
        homepage=_str(where, "homepage", raw.get("homepage"), required=False),
        doi=_str(where, "doi", raw.get("doi"), required=False),
        files=files,
        instructions=instructions,
        manifest=manifest_path,
        expect=tuple(expect),
        label_map=_parse_label_map(where, raw.get("label_map"), len(classes)),
        recipe=None if recipe is None else {"name": recipe["name"], "params": dict(recipe.get("params") or {})},
        raw_from=raw_from,
        notes=_str(where, "notes", raw.get("notes"), required=False),
    )


def load_registry(
    path: str | os.PathLike[str] = DEFAULT_REGISTRY,
    *,
    recipe_names: Iterable[str] | None = None,
) -> DatasetRegistry:
    """Load and validate the dataset registry.

    Args:
        path: the YAML file (default ``config/datasets.yaml``). Relative ``manifest`` paths in
            it are resolved against the file's folder.
        recipe_names: the registered preparation recipes (callers pass
            ``segbench.data.recipes.RECIPES.names()``); every entry's recipe name must be one
            of them. None (default) skips that check. The registry does not import the recipes
            itself: the recipes read registry entries, so that import would close a circle.

    Raises:
        RegistryError: naming the file, dataset, key and value of the first problem found.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"{path}: dataset registry file does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise RegistryError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("datasets"), dict):
        raise RegistryError(f"{path}: expected a mapping with a 'datasets' mapping at the top")
    known_recipes = None if recipe_names is None else set(recipe_names)
    entries = {
        str(name): _parse_entry(path, str(name), raw, known_recipes)
        for name, raw in doc["datasets"].items()
    }
    for e in entries.values():
        if e.raw_from is not None:
            if e.raw_from not in entries:
                raise RegistryError(
                    f"{path}: dataset {e.id!r}: raw_from {e.raw_from!r} is not a dataset of this file"
                )
            if entries[e.raw_from].raw_from is not None:
                raise RegistryError(
                    f"{path}: dataset {e.id!r}: raw_from {e.raw_from!r} must name a dataset with "
                    "its own files (no chains)"
                )
    return DatasetRegistry(entries, path)


def default_manifest_path(registry: DatasetRegistry, dataset: str) -> Path:
    """Where the committed manifest of ``dataset`` lives: the entry's ``manifest`` key, else
    ``<registry folder>/manifests/<dataset>.sha256``."""
    entry = registry[dataset]
    return entry.manifest or registry.path.parent / "manifests" / f"{entry.raw_id}.sha256"
