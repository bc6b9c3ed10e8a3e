"""Checks of a raw dataset folder: the committed per-file manifest and the registry entry's
``expect`` layout rules (used after extraction and before preparation)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.data.manifest import (
    ManifestError,
    compute_manifest,
    manifest_digest,
    read_manifest,
    verify_manifest,
)

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

log = logging.getLogger(__name__)


def check_expectations(entry: DatasetEntry, root: Path) -> list[str]:
    """Check ``entry.expect`` layout rules under ``root``; return the problems found."""
    problems = []
    for e in entry.expect:
        n = sum(1 for p in root.glob(e.glob) if p.is_file())
        if e.count is not None and n != e.count:
            problems.append(f"{e.glob!r} matches {n} file(s), expected {e.count}")
        if e.min is not None and n < e.min:
            problems.append(f"{e.glob!r} matches {n} file(s), expected at least {e.min}")
    return problems


def verify_raw(
    entry: DatasetEntry,
    root: str | os.PathLike[str],
    manifest: str | os.PathLike[str] | None,
    *,
    allow_unpinned: bool = True,
    archives_verified: bool = False,
) -> dict[str, object]:
    """Verify a raw dataset folder: the committed manifest when there is one, plus the entry's
    ``expect`` layout rules.

    Args:
        entry: registry entry (for ``expect`` and messages).
        root: the folder (``data/raw/{raw}`` or a staging folder).
        manifest: path of the committed manifest (may not exist yet).
        allow_unpinned: default True: without a manifest, accept the content with a warning
            (when ``archives_verified`` or the layout rules pass); False raises instead.
        archives_verified: every source file had a pinned sha256 that matched.

    Returns:
        Provenance: ``{"manifest": path or None, "manifest_sha256": digest, "files": n,
        "pinned": bool, "extra_files": [...]}``.

    Raises:
        ManifestError: a file is missing or differs (message names file and both hashes), or
            the layout rules fail, or the content is unpinned and ``allow_unpinned`` is False.
    """
    root = Path(root)
    problems = check_expectations(entry, root) if root.is_dir() else [f"{root} does not exist"]
    if problems:
        raise ManifestError(
            f"{root}: dataset {entry.id!r} does not have the expected layout: "
            + "; ".join(problems)
        )
    mpath = Path(manifest) if manifest is not None else None
    if mpath is not None and mpath.is_file():
        expected = read_manifest(mpath)
        report = verify_manifest(root, expected, manifest_name=str(mpath))
        if report.extra:
            log.info(
                "%s: %d file(s) not in %s (ignored): %s",
                root,
                len(report.extra),
                mpath,
                report.extra[:5],
            )
        return {
            "manifest": str(mpath),
            "manifest_sha256": manifest_digest(expected),
            "files": report.checked,
            "pinned": True,
            "extra_files": report.extra,
        }
    computed = compute_manifest(root)
    msg = (
        f"dataset {entry.id!r}: no committed manifest at {mpath}; computed one over "
        f"{len(computed)} file(s) (digest {manifest_digest(computed)}). Pin it with "
        f"`python scripts/download.py manifest {entry.id} --write` and commit the file."
    )
    if not allow_unpinned and not archives_verified:
        raise ManifestError(msg + " Refusing unpinned content (download.allow_unpinned is false).")
    log.warning("%s", msg)
    return {
        "manifest": None,
        "manifest_sha256": manifest_digest(computed),
        "files": len(computed),
        "pinned": archives_verified,
        "extra_files": [],
    }
