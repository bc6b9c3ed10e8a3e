"""Safe extraction of zip and tar archives.

Every member is checked before anything is written, and again (against the real, resolved
path) while writing. Extraction refuses, naming the archive and the member:

- absolute paths (``/etc/x``, ``C:\\x``) and paths with a ``..`` component;
- symbolic links whose target resolves outside the destination, and hard links to anything
  that is not an earlier regular member of the same archive;
- device files, FIFOs and other special members; the same path listed twice.

Files are written by this module (never by ``ZipFile.extractall`` / ``TarFile.extractall``),
so the checks do not depend on the Python version. Extraction goes to a temporary folder next
to the destination which is renamed into place only when every member was written, so a
corrupt or malicious archive leaves nothing half-extracted.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from segbench.data.manifest import IGNORED_DIRS, IGNORED_NAMES

StripSpec = int | Literal["auto"]

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
"""File name endings treated as archives (anything else is copied as a plain file)."""


class ArchiveError(RuntimeError):
    """An archive is corrupt, of an unsupported type, or cannot be extracted."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would write outside the destination or is not a plain file/folder/link."""


@dataclass(frozen=True)
class Member:
    """One archive entry, reduced to what extraction needs.

    ``kind`` is one of ``file``, ``dir``, ``symlink``, ``hardlink``, ``special``.
    ``link`` is the link target (symlink: relative to the member's folder; hardlink: a
    member path) and is empty otherwise.
    """

    name: str
    kind: str
    link: str = ""
    size: int = 0


def is_archive_name(name: str) -> bool:
    """True if ``name`` ends with one of :data:`ARCHIVE_SUFFIXES` (case-insensitive)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_kind(path: str | os.PathLike[str]) -> Literal["zip", "tar"]:
    """Detect the archive type from the file content (not the name).

    Raises:
        ArchiveError: naming the file, if it is neither a zip nor a (compressed) tar archive.
    """
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"{path}: archive does not exist")
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, zlib.error) as err:
        raise ArchiveError(f"{path}: corrupt archive ({type(err).__name__}: {err})") from None
    raise ArchiveError(f"{path}: not a zip or tar archive (corrupt, truncated or another format)")


def _is_junk(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and (parts[-1] in IGNORED_NAMES or any(p in IGNORED_DIRS for p in parts))


def _clean_name(archive: Path, raw: str) -> str:
    """Normalise a member name to a relative POSIX path, refusing absolute and ``..`` paths."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {raw!r} has an absolute path; refusing to extract")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"{archive}: member {raw!r} contains '..'; refusing to extract")
    return "/".join(parts)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> list[tuple[Member, zipfile.ZipInfo]]:
    out = []
    for info in zf.infolist():
        name = _clean_name(archive, info.filename)
        mode = (info.external_attr >> 16) & 0xFFFF
        ftype = stat.S_IFMT(mode)
        if info.is_dir():
            kind, link = "dir", ""
        elif ftype == stat.S_IFLNK:
            kind, link = "symlink", zf.read(info).decode("utf-8", "surrogateescape")
        elif ftype in (0, stat.S_IFREG):
            kind, link = "file", ""
        else:
            kind, link = "special", ""
        out.append((Member(name, kind, link, info.file_size), info))
    return out


def _tar_members(archive: Path, tf: tarfile.TarFile) -> list[tuple[Member, tarfile.TarInfo]]:
    out = []
    for info in tf.getmembers():
        name = _clean_name(archive, info.name)
        if info.isdir():
            kind, link = "dir", ""
        elif info.isreg():
            kind, link = "file", ""
        elif info.issym():
            kind, link = "symlink", info.linkname
        elif info.islnk():
            kind, link = "hardlink", _clean_name(archive, info.linkname)
        else:
            kind, link = "special", ""
        out.append((Member(name, kind, link, info.size), info))
    return out


def _strip_count(names: list[str], strip: StripSpec) -> int:
    if strip != "auto":
        if not isinstance(strip, int) or strip < 0:
            raise ValueError(f"strip_components must be 'auto' or an int >= 0, got {strip!r}")
        return strip
    tops = {n.split("/", 1)[0] for n in names if n}
    nested = any("/" in n for n in names)
    # One common top-level folder (and something inside it): strip it.
    return 1 if len(tops) == 1 and nested else 0


def _stripped(name: str, count: int) -> str:
    return "/".join(name.split("/")[count:])


def _inside(root_real: str, path: str) -> bool:
    return path == root_real or path.startswith(root_real + os.sep)


def check_members(archive: Path, members: list[Member], strip: int) -> list[Member]:
    """Validate members (after stripping ``strip`` leading folders); return the ones to extract.

    Raises:
        UnsafeArchiveError: naming the archive, the member and the reason.
    """
    seen: dict[str, str] = {}
    keep: list[Member] = []
    files: set[str] = set()
    for m in members:
        if _is_junk(m.name):
            continue
        if m.kind == "special":
            raise UnsafeArchiveError(
                f"{archive}: member {m.name!r} is a device, FIFO or other special file; refusing"
            )
        name = _stripped(m.name, strip)
        if not name:
            continue  # the stripped top folder itself
        if name in seen and not (m.kind == "dir" and seen[name] == "dir"):
            raise UnsafeArchiveError(f"{archive}: member {m.name!r} appears twice; refusing")
        seen[name] = m.kind
        link = m.link
        if m.kind == "symlink":
            if link.startswith("/") or (len(link) > 1 and link[1] == ":"):
                raise UnsafeArchiveError(
                    f"{archive}: symlink {m.name!r} -> {link!r} points to an absolute path; refusing"
                )
            target = os.path.normpath(os.path.join(os.path.dirname(name), link))
            if target == ".." or target.startswith("../") or os.path.isabs(target):
                raise UnsafeArchiveError(
                    f"{archive}: symlink {m.name!r} -> {link!r} leaves the target folder; refusing"
                )
        elif m.kind == "hardlink":
            link = _stripped(link, strip)
            if link not in files:
                raise UnsafeArchiveError(
                    f"{archive}: hard link {m.name!r} -> {m.link!r} does not point to an earlier "
                    "regular file of the archive; refusing"
                )
        if m.kind == "file":
            files.add(name)
        keep.append(Member(name, m.kind, link, m.size))
    return keep


def list_members(archive: str | os.PathLike[str]) -> list[Member]:
    """List an archive's members (names normalised, nothing stripped or written).

    Raises:
        ArchiveError: corrupt or unsupported archive. UnsafeArchiveError: absolute/``..`` names.
    """
    archive = Path(archive)
    handle, pairs = _open(archive)
    with handle:
        return [m for m, _ in pairs]


_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)


def _open(archive: Path) -> tuple[zipfile.ZipFile | tarfile.TarFile, list[tuple[Member, object]]]:
    """Open ``archive`` and list its members; the caller closes the returned handle."""
    kind = archive_kind(archive)
    handle: zipfile.ZipFile | tarfile.TarFile | None = None
    try:
        if kind == "zip":
            handle = zipfile.ZipFile(archive)
            return handle, list(_zip_members(archive, handle))
        handle = tarfile.open(archive, "r:*")  # noqa: SIM115 (closed by the caller)
        return handle, list(_tar_members(archive, handle))
    except _READ_ERRORS as err:
        if handle is not None:
            handle.close()
        raise ArchiveError(f"{archive}: corrupt archive ({type(err).__name__}: {err})") from None
    except BaseException:
        if handle is not None:
            handle.close()
        raise


def _copy_member(
    archive: Path, handle: zipfile.ZipFile | tarfile.TarFile, info: object, name: str, path: str
) -> None:
    """Stream one member to ``path`` (created exclusively); read errors become ArchiveError."""
    try:
        if isinstance(handle, zipfile.ZipFile):
            src: BinaryIO | None = handle.open(info)  # type: ignore[arg-type,assignment]
        else:
            src = handle.extractfile(info)  # type: ignore[arg-type,assignment]
        if src is None:
            raise ArchiveError(f"{archive}: cannot read member {name!r}")
    except _READ_ERRORS as err:
        raise ArchiveError(
            f"{archive}: corrupt member {name!r} ({type(err).__name__}: {err})"
        ) from None
    with src, open(path, "xb") as dst:
        while True:
            try:
                chunk = src.read(1 << 20)
            except _READ_ERRORS as err:
                raise ArchiveError(
                    f"{archive}: corrupt member {name!r} ({type(err).__name__}: {err})"
                ) from None
            if not chunk:
                break
            dst.write(chunk)


def safe_extract(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    strip_components: StripSpec = "auto",
) -> list[str]:
    """Extract ``archive`` into ``dest`` (which must not exist yet), safely and atomically.

    Args:
        archive: a zip or tar(.gz/.bz2/.xz) file; the type is detected from the content.
        dest: destination folder; created by renaming a fully written temporary folder.
        strip_components: leading path components to drop from every member, or ``"auto"``
            (default): drop the single top-level folder when all members share one, as in
            ``Kvasir-SEG/...`` or ``repo-<commit>/...``. ``__MACOSX/`` and ``.DS_Store`` are
            skipped.

    Returns:
        The relative POSIX paths of the regular files written, sorted.

    Raises:
        FileExistsError: ``dest`` exists.
        UnsafeArchiveError: an absolute, ``..``, escaping-link, special or duplicate member.
        ArchiveError: a corrupt or truncated archive (CRC error, bad header, short read).
        In every case nothing is left at ``dest`` or in the temporary folder.
    """
    archive = Path(archive)
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest}: extraction target already exists; remove it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        written = _extract_into(archive, tmp, strip_components)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return written


def _extract_into(archive: Path, root: Path, strip: StripSpec) -> list[str]:
    root_real = os.path.realpath(root)
    written: list[str] = []
    handle, pairs = _open(archive)
    with handle:
        names = [m.name for m, _ in pairs if not _is_junk(m.name)]
        count = _strip_count(names, strip)
        checked = check_members(archive, [m for m, _ in pairs], count)
        infos: dict[str, object] = {}
        for m, info in pairs:
            name = _stripped(m.name, count)
            if name and not _is_junk(m.name):
                infos.setdefault(name, info)
        for m in checked:
            path = os.path.join(root, *m.name.split("/"))
            parent_real = os.path.realpath(os.path.dirname(path))
            if not _inside(root_real, parent_real):
                raise UnsafeArchiveError(
                    f"{archive}: member {m.name!r} would be written through a link outside "
                    "the target folder; refusing"
                )
            if os.path.lexists(path) and m.kind != "dir":
                raise UnsafeArchiveError(f"{archive}: member {m.name!r} appears twice; refusing")
            if m.kind == "dir":
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if m.kind == "symlink":
                target_real = os.path.realpath(os.path.join(parent_real, m.link))
                if not _inside(root_real, target_real):
                    raise UnsafeArchiveError(
                        f"{archive}: symlink {m.name!r} -> {m.link!r} leaves the target "
                        "folder; refusing"
                    )
                os.symlink(m.link, path)
            elif m.kind == "hardlink":
                shutil.copyfile(os.path.join(root, *m.link.split("/")), path)
                written.append(m.name)
            else:
                _copy_member(archive, handle, infos[m.name], m.name, path)
                written.append(m.name)
    return sorted(written)
