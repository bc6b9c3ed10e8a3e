"""Per-file sha256 manifests of extracted dataset content.

A manifest lists the sha256 of every file of a raw dataset folder, one line per file, in the
format of GNU ``sha256sum`` (``<64 hex>  <relative/posix/path>``), sorted by path, so that
``cd data/raw/<dataset> && sha256sum -c config/manifests/<dataset>.sha256`` also checks it.
The project generates a manifest once from a verified copy (``scripts/download.py manifest``)
and commits it under ``config/manifests/``; every later extraction is checked against it.
This pins content even where the upstream archive has no published checksum (GitHub archives,
for example, are not byte-stable although their content is).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from segbench.io_utils import atomic_write_text

CHUNK = 1 << 20
"""Read size for hashing (1 MiB)."""

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
"""A lowercase hex sha256 digest."""

IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".snakemake_timestamp"})
"""File names never listed in, nor required by, a manifest (operating-system litter, and the
timestamp Snakemake writes into directory outputs, which .dvcignore keeps out of DVC)."""

IGNORED_DIRS = frozenset({"__MACOSX"})
"""Folder names never descended into (macOS resource forks left in zip files)."""


class ManifestError(ValueError):
    """A folder does not match its manifest, or a manifest file is malformed."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the lowercase hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def iter_files(root: str | os.PathLike[str]) -> Iterable[str]:
    """Yield the POSIX relative paths of all regular files under ``root``, sorted.

    Symbolic links are listed when they point to a file; operating-system litter
    (:data:`IGNORED_NAMES`, :data:`IGNORED_DIRS`) is skipped.
    """
    root = Path(root)
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for name in filenames:
            if name in IGNORED_NAMES:
                continue
            full = Path(dirpath) / name
            if full.is_file():
                out.append(full.relative_to(root).as_posix())
    return sorted(out)


def compute_manifest(root: str | os.PathLike[str]) -> dict[str, str]:
    """Hash every file under ``root``.

    Returns:
        ``{relative posix path: sha256}`` sorted by path.

    Raises:
        ManifestError: if ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: not a folder; cannot compute a manifest")
    return {rel: sha256_file(root / rel) for rel in iter_files(root)}


def format_manifest(entries: Mapping[str, str]) -> str:
    """Render ``entries`` in ``sha256sum`` format, sorted by path."""
    return "".join(f"{entries[rel]}  {rel}\n" for rel in sorted(entries))


def write_manifest(path: str | os.PathLike[str], entries: Mapping[str, str]) -> None:
    """Write ``entries`` to ``path`` atomically in ``sha256sum`` format."""
    atomic_write_text(path, format_manifest(entries))


def parse_manifest(text: str, where: str = "<manifest>") -> dict[str, str]:
    """Parse ``sha256sum`` output (``hash  path`` or ``hash *path``; a leading ``./`` is dropped).

    Blank lines and lines starting with ``#`` are ignored.

    Raises:
        ManifestError: naming ``where`` and the line number, for a malformed line, a bad
            digest, an absolute or ``..`` path, or a path listed twice.
    """
    entries: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        digest, sep, rel = line.partition(" ")
        if not sep or not rel:
            raise ManifestError(f"{where}:{lineno}: expected '<sha256>  <path>', got {line!r}")
        rel = rel[1:] if rel[:1] in (" ", "*") else rel
        while rel.startswith("./"):
            rel = rel[2:]
        digest = digest.lower()
        if not SHA256_RE.match(digest):
            raise ManifestError(f"{where}:{lineno}: {digest!r} is not a sha256 hex digest")
        parts = rel.split("/")
        if rel.startswith("/") or ".." in parts or not rel:
            raise ManifestError(f"{where}:{lineno}: path {rel!r} must be relative, without '..'")
        if rel in entries:
            raise ManifestError(f"{where}:{lineno}: path {rel!r} is listed twice")
        entries[rel] = digest
    return entries


def read_manifest(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a manifest file; see :func:`parse_manifest`.

    Raises:
        ManifestError: the file is missing or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest file does not exist")
    return parse_manifest(path.read_text(encoding="utf-8"), where=str(path))


def manifest_digest(entries: Mapping[str, str]) -> str:
    """sha256 of the canonical manifest text: one value that pins the whole content."""
    return hashlib.sha256(format_manifest(entries).encode("utf-8")).hexdigest()


@dataclass
class ManifestReport:
    """Outcome of :func:`verify_manifest`."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, str, str]] = field(default_factory=list)
    """(path, expected sha256, actual sha256)."""
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.mismatched


def verify_manifest(
    root: str | os.PathLike[str],
    expected: Mapping[str, str],
    *,
    allow_extra: bool = True,
    manifest_name: str = "manifest",
    show: int = 10,
) -> ManifestReport:
    """Check that every file listed in ``expected`` exists under ``root`` with that sha256.

    Args:
        root: the folder to check.
        expected: ``{relative path: sha256}``, e.g. from :func:`read_manifest`.
        allow_extra: default True (upstream archives often carry a README or licence that the
            recipe does not read); when False, files not in the manifest are errors too.
        manifest_name: how the manifest is named in error messages (its path).
        show: how many problems the error message spells out (default 10).

    Returns:
        A :class:`ManifestReport` (``extra`` lists files present but not in the manifest).

    Raises:
        ManifestError: naming the folder, the manifest and, for each bad file (up to
            ``show``), the path and both hashes; also if ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise ManifestError(f"{root}: folder does not exist; cannot check it against {manifest_name}")
    report = ManifestReport()
    for rel in sorted(expected):
        full = root / rel
        if not full.is_file():
            report.missing.append(rel)
            continue
        actual = sha256_file(full)
        report.checked += 1
        if actual != expected[rel]:
            report.mismatched.append((rel, expected[rel], actual))
    listed = set(expected)
    report.extra = [rel for rel in iter_files(root) if rel not in listed]
    if report.ok and (allow_extra or not report.extra):
        return report
    problems = [f"{rel}: expected sha256 {exp}, got {act}" for rel, exp, act in report.mismatched]
    problems += [f"{rel}: missing" for rel in report.missing]
    if not allow_extra:
        problems += [f"{rel}: not in the manifest" for rel in report.extra]
    shown = "; ".join(problems[:show])
    more = f"; ... and {len(problems) - show} more" if len(problems) > show else ""
    raise ManifestError(
        f"{root}: {len(problems)} of {len(expected)} file(s) do not match {manifest_name}: "
        f"{shown}{more}"
    )
