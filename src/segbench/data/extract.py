"""Unpack (or copy) a registry entry's verified downloads into ``data/raw/{raw}``, atomically.

Archives are re-checked against their pinned sha256, unpacked with
:func:`segbench.data.archive.safe_extract` into a staging folder, checked with
:func:`segbench.data.verify.verify_raw`, and only then renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.data.archive import ArchiveError, UnsafeArchiveError, safe_extract
from segbench.data.fetch import ChecksumError, DownloadError, reject_file
from segbench.data.manifest import compute_manifest, sha256_file, write_manifest
from segbench.data.verify import verify_raw

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry


def extract_dataset(
    entry: DatasetEntry,
    downloads: Mapping[str, str | os.PathLike[str]],
    raw_dir: str | os.PathLike[str],
    *,
    manifest: str | os.PathLike[str] | None,
    manifest_out: str | os.PathLike[str] | None = None,
    allow_unpinned: bool = True,
) -> dict[str, object]:
    """Unpack (or copy) an entry's downloaded files into ``raw_dir`` and verify the result.

    Everything happens in a temporary folder next to ``raw_dir`` which is renamed into place
    only after the archives were re-checked against their pinned sha256 and the content passed
    :func:`verify_raw`; on any error nothing is left at ``raw_dir``.

    Args:
        entry: the registry entry.
        downloads: ``{file name: path}`` of every file in ``entry.files``.
        raw_dir: destination folder; must not exist.
        manifest: committed manifest path (may not exist yet).
        manifest_out: where to write the manifest computed from the extracted content (for
            pinning and the log), or None.
        allow_unpinned: see :func:`verify_raw`.

    Returns:
        Provenance dict from :func:`verify_raw` plus ``archives`` (name -> sha256).

    Raises:
        ChecksumError: a download no longer matches its pinned sha256.
        ArchiveError / UnsafeArchiveError: corrupt or malicious archive (a corrupt one is moved
            to ``<download>.rejected`` first; a malicious one stays, the message names it).
        ManifestError: the content does not match the manifest or layout rules.
        FileExistsError: ``raw_dir`` exists.
    """
    raw_dir = Path(raw_dir)
    if raw_dir.exists():
        raise FileExistsError(f"{raw_dir}: already exists; remove it to extract again")
    if not entry.files:
        raise DownloadError(
            f"dataset {entry.id!r} has no files the workflow can fetch: "
            f"{entry.instructions.strip() or 'see its registry entry.'} Put the unpacked files in "
            f"{raw_dir}/ and run the workflow again (`python scripts/download.py verify "
            f"{entry.id}` checks them)."
        )
    raw_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{raw_dir.name}.stage-", dir=raw_dir.parent))
    try:
        archives: dict[str, str] = {}
        all_pinned = bool(entry.files)
        for i, f in enumerate(entry.files):
            if f.name not in downloads:
                raise DownloadError(
                    f"dataset {entry.id!r}: no downloaded path given for {f.name!r}"
                )
            path = Path(downloads[f.name])
            if not path.is_file():
                raise DownloadError(
                    f"dataset {entry.id!r}: {path} does not exist; download it first"
                )
            actual = sha256_file(path)
            archives[f.name] = actual
            if f.sha256 is None:
                all_pinned = False
            elif actual != f.sha256:
                raise ChecksumError(
                    f"{path}: checksum mismatch: expected sha256 {f.sha256}, got {actual} "
                    f"(registry entry {entry.id!r}); delete it and download again"
                )
            if f.extract:
                sub = stage / f".x{i}"
                try:
                    safe_extract(path, sub, strip_components=f.strip_components)
                except UnsafeArchiveError:
                    raise
                except ArchiveError as err:
                    _, sentence = reject_file(path, err)
                    pinned = (
                        " (its sha256 matches the registry's pin, so the pinned file itself is "
                        "broken: check the registry entry)"
                        if f.sha256
                        else ""
                    )
                    raise ArchiveError(f"dataset {entry.id!r}: {sentence}{pinned}") from None
                _merge_into(sub, stage, path)
            else:
                target = stage / f.name
                if target.exists():
                    raise DownloadError(
                        f"dataset {entry.id!r}: {f.name} collides with an extracted file"
                    )
                shutil.copyfile(path, target)
        report = verify_raw(
            entry, stage, manifest, allow_unpinned=allow_unpinned, archives_verified=all_pinned
        )
        if manifest_out is not None:
            write_manifest(manifest_out, compute_manifest(stage))
        os.replace(stage, raw_dir)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    report["archives"] = archives
    return report


def _merge_into(src: Path, dest: Path, archive: Path) -> None:
    """Move the content of ``src`` into ``dest`` (refusing collisions), then remove ``src``."""
    for dirpath, dirs, files in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        links = [d for d in dirs if (Path(dirpath) / d).is_symlink()]
        for name in [*files, *links]:
            target = dest / rel / name
            if target.exists() or target.is_symlink():
                raise DownloadError(
                    f"{archive}: member {(rel / name).as_posix()} collides with another file"
                )
            os.replace(Path(dirpath) / name, target)
    shutil.rmtree(src)
