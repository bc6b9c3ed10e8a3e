"""Resumable, retried, checksum-verified downloads (stdlib only).

:func:`fetch` streams a URL (``http(s)://``, ``file://`` or a plain local path) into
``<dest>.part`` next to the destination, resuming an interrupted transfer with an HTTP
``Range`` request, retrying transient failures with exponential back-off, then checks the size
and sha256 and only then renames the ``.part`` file to ``dest``. So ``dest`` exists only when
complete and verified:

- a network failure keeps ``<dest>.part`` (clearly named as partial) so the next call resumes;
- a checksum or size mismatch deletes ``<dest>.part`` and raises :class:`ChecksumError`
  naming the file, the URL and both hashes;
- a file that must be an archive but has no pinned sha256 is opened as one first
  (``validate``); one that fails (an HTML login or error page, a truncated archive) is never
  renamed to ``dest``: it is moved aside to ``<dest>.rejected``, named in the
  :class:`RejectedDownloadError`, and the next call downloads it again.

:func:`candidate_urls` puts a local mirror (a folder or a base URL, for air-gapped clusters)
before the official URLs; :func:`fetch_dataset_file` does both for one file of a registry entry.
Unpacking and checking the content is :mod:`segbench.data.extract` and :mod:`segbench.data.verify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.data.archive import ArchiveError, list_members
from segbench.data.manifest import CHUNK, sha256_file

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

log = logging.getLogger(__name__)

USER_AGENT = "segbench-download/0.1 (+https://github.com/; research data fetcher)"
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP status codes worth retrying; other 4xx errors move on to the next URL at once."""


class DownloadError(RuntimeError):
    """A file could not be fetched from any of its URLs."""


class ChecksumError(DownloadError):
    """A fetched file does not have the expected sha256 or size (nothing is kept)."""


class RejectedDownloadError(DownloadError):
    """A downloaded file is not what it must be (e.g. not an archive); it was moved aside."""


class _Transient(Exception):
    """A failure worth retrying on the same URL."""


@dataclass
class FetchResult:
    """What :func:`fetch` did."""

    path: Path
    url: str
    sha256: str
    size: int
    resumed_from: int = 0
    attempts: int = 1


def is_url(text: str) -> bool:
    """True for ``http://``, ``https://`` and ``file://`` URLs."""
    return urllib.parse.urlsplit(text).scheme in ("http", "https", "file")


def candidate_urls(
    file: str, urls: Sequence[str], mirror: str | None = None, dataset: str | None = None
) -> list[str]:
    """URLs to try for one file, mirror first.

    A mirror (folder path or base URL) is tried as ``<mirror>/<dataset>/<file>`` and then
    ``<mirror>/<file>``. With a mirror set, the official URLs are still tried afterwards
    unless the environment variable ``SEGBENCH_OFFLINE`` is ``1``; with ``SEGBENCH_OFFLINE=1``
    the official URLs are never returned (:func:`fetch_dataset_file` then asks for a mirror).

    Args:
        file: the file name (archive name in the registry).
        urls: official URLs, in order of preference.
        mirror: a folder or a base URL, or None.
        dataset: the dataset id (used for the ``<mirror>/<dataset>/<file>`` layout).
    """
    out: list[str] = []
    if mirror:
        base = mirror.rstrip("/")
        quoted = urllib.parse.quote(file)
        if is_url(base):
            if dataset:
                out.append(f"{base}/{urllib.parse.quote(dataset)}/{quoted}")
            out.append(f"{base}/{quoted}")
        else:
            if dataset:
                out.append(str(Path(base) / dataset / file))
            out.append(str(Path(base) / file))
    if not offline():
        out.extend(urls)
    return out


OFFLINE_ENV = "SEGBENCH_OFFLINE"
MIRROR_ENV = "SEGBENCH_MIRROR"


def offline() -> bool:
    """True when ``SEGBENCH_OFFLINE=1``: only a mirror may be used, never the official URLs."""
    return os.environ.get(OFFLINE_ENV) == "1"


def _open_source(url: str, offset: int, timeout: float) -> tuple[object, int, int | None]:
    """Open ``url`` at byte ``offset``.

    Returns:
        (readable, start, total): ``start`` is where the returned stream begins (``offset``
        when the server honoured the range, 0 when it sent the whole file); ``total`` is the
        full file size when known.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("", "file"):
        path = urllib.request.url2pathname(parts.path) if parts.scheme == "file" else url
        if not os.path.isfile(path):
            raise DownloadError(f"{path}: no such file")
        fh = open(path, "rb")  # noqa: SIM115 (closed by the caller)
        total = os.fstat(fh.fileno()).st_size
        start = offset if offset <= total else 0
        fh.seek(start)
        return fh, start, total
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (scheme checked)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset > 0:
            # Range not satisfiable: the partial file is already complete (or too long).
            crange = err.headers.get("Content-Range", "")
            total = int(crange.rsplit("/", 1)[1]) if "/" in crange and crange[-1] != "*" else None
            return _Empty(), offset, total
        if err.code in RETRYABLE_HTTP:
            raise _Transient(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise _Transient(f"{type(err).__name__}: {reason}") from None
    status = resp.status
    length = resp.headers.get("Content-Length")
    if status == 206:
        crange = resp.headers.get("Content-Range", "")
        try:
            unit_range, total_text = crange.split(" ", 1)[1].split("/")
            start = int(unit_range.split("-")[0])
            total = None if total_text == "*" else int(total_text)
        except (IndexError, ValueError):
            resp.close()
            raise _Transient(f"malformed Content-Range {crange!r}") from None
        if start != offset:
            resp.close()
            raise _Transient(f"server resumed at byte {start}, asked for {offset}")
        return resp, start, total
    return resp, 0, int(length) if length is not None else None


class _Empty:
    def read(self, n: int = -1) -> bytes:
        return b""

    def close(self) -> None:
        pass


def fetch(
    url_or_urls: str | Sequence[str],
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    size: int | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    progress: Callable[[int, int | None], None] | None = None,
    validate: Callable[[Path], None] | None = None,
) -> FetchResult:
    """Download one file to ``dest``: resumable, retried, verified, then renamed.

    Args:
        url_or_urls: one URL/path or several tried in order (e.g. from :func:`candidate_urls`);
            a URL answering 404 or a connection that keeps failing moves on to the next.
        dest: final path; written only after verification.
        sha256: expected lowercase hex digest, or None (then the digest is logged so that it
            can be pinned).
        size: expected size in bytes, or None.
        retries: attempts per URL after the first (default 5); each resumes where the last one
            stopped.
        timeout: socket timeout in seconds (default 60).
        backoff: first wait between attempts in seconds, doubled each time, capped at 60
            (default 1.0).
        progress: optional callback ``(bytes_so_far, total_or_None)``.
        validate: optional check of the complete, checksum-verified download before it is
            renamed to ``dest`` (e.g. :func:`check_archive`); when it raises
            :class:`~segbench.data.archive.ArchiveError` the file is moved to
            ``<dest>.rejected`` (never kept as ``dest``) and the next URL is tried.

    Returns:
        A :class:`FetchResult`. If ``dest`` already exists and matches ``sha256`` (when given),
        nothing is fetched.

    Raises:
        ChecksumError: the downloaded bytes do not match ``sha256``/``size``; the message names
            the file, the URL and both hashes; ``<dest>.part`` is removed.
        DownloadError: no URL worked; ``<dest>.part`` is kept so a later call resumes.
        RejectedDownloadError: (a :class:`DownloadError`) every URL gave a file that failed
            ``validate``; the last one is at ``<dest>.rejected``.
    """
    urls = [url_or_urls] if isinstance(url_or_urls, str) else list(url_or_urls)
    dest = Path(dest)
    if sha256 is not None:
        sha256 = sha256.lower()
    if dest.is_file():
        actual = sha256_file(dest)
        if sha256 is None or actual == sha256:
            return FetchResult(dest, str(dest), actual, dest.stat().st_size, attempts=0)
        raise ChecksumError(
            f"{dest}: existing file has sha256 {actual}, expected {sha256}; delete it to "
            "download again"
        )
    if not urls:
        raise DownloadError(f"{dest}: no URL to download from")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[str] = []
    rejected: list[str] = []
    for url in urls:
        try:
            return _fetch_one(
                url, dest, part, sha256, size, retries, timeout, backoff, progress, validate
            )
        except ChecksumError:
            raise
        except RejectedDownloadError as err:
            errors.append(str(err))
            rejected.append(str(err))
            log.warning("%s", err)
        except DownloadError as err:
            errors.append(str(err))
            log.warning("%s", err)
    if rejected and len(rejected) == len(errors):
        raise RejectedDownloadError(
            rejected[0] if len(rejected) == 1 else " | ".join(rejected)
        )
    raise DownloadError(
        f"{dest.name}: could not be downloaded from any of {len(urls)} URL(s): "
        + " | ".join(errors)
        + (f"; partial data kept in {part} for resuming" if part.exists() else "")
    )


def _fetch_one(
    url: str,
    dest: Path,
    part: Path,
    sha256: str | None,
    size: int | None,
    retries: int,
    timeout: float,
    backoff: float,
    progress: Callable[[int, int | None], None] | None,
    validate: Callable[[Path], None] | None = None,
) -> FetchResult:
    resumed_from = part.stat().st_size if part.exists() else 0
    restarted = False
    attempt = 0
    while True:
        attempt += 1
        offset = part.stat().st_size if part.exists() else 0
        try:
            total = _transfer(url, part, offset, timeout, progress)
        except _Transient as err:
            if attempt > retries:
                raise DownloadError(f"{url}: failed after {attempt} attempt(s): {err}") from None
            wait = min(backoff * 2 ** (attempt - 1), 60.0)
            log.warning("%s: %s; retry %d/%d in %.1f s", url, err, attempt, retries, wait)
            time.sleep(wait)
            continue
        got = part.stat().st_size
        if total is not None and got > total:
            part.unlink()
            if attempt > retries:
                raise DownloadError(f"{url}: got {got} bytes, more than the {total} announced")
            log.warning("%s: partial file is longer than the source; starting over", dest.name)
            continue
        if total is not None and got < total:
            if attempt > retries:
                raise DownloadError(f"{url}: got {got} of {total} bytes after {attempt} attempt(s)")
            log.warning("%s: connection ended at byte %d of %d; resuming", url, got, total)
            time.sleep(min(backoff * 2 ** (attempt - 1), 60.0))
            continue
        actual = sha256_file(part)
        bad_size = size is not None and got != size
        bad_hash = sha256 is not None and actual != sha256
        if (bad_size or bad_hash) and resumed_from > 0 and not restarted:
            # The stale partial file we resumed from may be the culprit: start over once.
            log.warning("%s: resumed file failed verification; downloading from scratch", dest.name)
            part.unlink()
            restarted = True
            resumed_from = 0
            continue
        if bad_size or bad_hash:
            part.unlink()
            what = []
            if bad_hash:
                what.append(f"expected sha256 {sha256}, got {actual}")
            if bad_size:
                what.append(f"expected {size} bytes, got {got}")
            raise ChecksumError(
                f"{dest.name}: checksum mismatch for the file downloaded from {url}: "
                + "; ".join(what)
                + f". Nothing was kept (removed {part.name})."
            )
        if validate is not None:
            try:
                validate(part)
            except ArchiveError as err:
                raise _reject(part, dest, url, err) from None
        if sha256 is None:
            log.warning(
                "%s: no sha256 pinned in the registry; downloaded file has sha256 %s (%d bytes)",
                dest.name,
                actual,
                got,
            )
        with open(part, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(part, dest)
        return FetchResult(dest, url, actual, got, resumed_from=resumed_from, attempts=attempt)


def _transfer(
    url: str,
    part: Path,
    offset: int,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
) -> int | None:
    """Append the bytes of ``url`` from ``offset`` to ``part``; return the full size if known."""
    src, start, total = _open_source(url, offset, timeout)
    try:
        mode = "ab" if start == offset else "wb"
        if start != offset:
            log.info("%s: server does not support resuming; restarting from byte 0", url)
        done = start
        with open(part, mode) as out:
            while True:
                try:
                    chunk = src.read(CHUNK)  # type: ignore[attr-defined]
                except (TimeoutError, ConnectionError, OSError) as err:
                    raise _Transient(f"read failed at byte {done}: {err}") from None
                except Exception as err:  # http.client.IncompleteRead and friends
                    raise _Transient(f"read failed at byte {done}: {err!r}") from None
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    finally:
        with contextlib.suppress(Exception):
            src.close()  # type: ignore[attr-defined]
    return total


def rejected_path(dest: str | os.PathLike[str]) -> Path:
    """Where a download that failed to open as an archive is moved: ``<dest>.rejected``."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".rejected")


def describe_content(path: str | os.PathLike[str]) -> str:
    """A short guess at what a file that should have been an archive is (for messages)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(1024)
    except OSError:
        return ""
    low = head.lstrip().lower()
    if low.startswith((b"<!doctype html", b"<html", b"<head", b"<body")) or b"<html" in low:
        return (
            f"it is an HTML page ({size} bytes), not an archive: the server sent a web page "
            "(a login, error or redirect page) instead of the file"
        )
    if low.startswith((b"<?xml", b"<")):
        return f"it is an XML/HTML document ({size} bytes), not an archive"
    if not head:
        return "it is empty (0 bytes)"
    return f"{size} bytes, starting with {head[:16]!r}"


def check_archive(path: Path) -> None:
    """Open ``path`` as a zip or tar archive and list it (the ``validate`` of unpinned archive
    downloads).

    Raises:
        ArchiveError: not an archive, or a corrupt/truncated one.
    """
    list_members(path)


def reject_file(path: str | os.PathLike[str], err: BaseException | str) -> tuple[Path, str]:
    """Move a file that failed to open as an archive to ``<path>.rejected`` (replacing an older
    one) and return that path and a sentence for the error message."""
    path = Path(path)
    target = rejected_path(path)
    what = describe_content(path)
    os.replace(path, target)
    sentence = (
        f"{err}" + (f"; {what}" if what else "") + f". Moved it aside to {target} (it is not kept "
        f"as {path}); fix the URL or mirror if needed and run again: the file is downloaded "
        "again on the next run"
    )
    return target, sentence


def _reject(part: Path, dest: Path, url: str, err: BaseException) -> RejectedDownloadError:
    """Move a downloaded ``part`` that failed validation aside; the error to raise."""
    # Name the final file in the message, not the ``.part`` (``err`` names the .part path).
    reason = str(err).replace(str(part), dest.name)
    what = describe_content(part)
    target = rejected_path(dest)
    os.replace(part, target)
    return RejectedDownloadError(
        f"{dest.name}: the file downloaded from {url} is not a usable archive ({reason})"
        + (f"; {what}" if what else "")
        + f". Moved it aside to {target}; nothing was kept as {dest}. Fix the URL or mirror and "
        "run again: the file is downloaded again on the next run."
    )


def copy_local(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Copy a user-provided file into place atomically (temp file + rename)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def hash_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data`` (helper for tests and fixtures)."""
    return hashlib.sha256(data).hexdigest()


# ----------------------------------------------------------------------------- registry level


def fetch_dataset_file(
    entry: DatasetEntry,
    file: str,
    dest: str | os.PathLike[str],
    *,
    mirror: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
) -> FetchResult:
    """Fetch one source file of a registry entry into ``dest`` (mirror first, then official URLs).

    An archive (``extract``) without a pinned sha256 is opened as one before it is kept
    (:func:`check_archive`): an HTML page or a truncated archive is moved to
    ``<dest>.rejected`` instead, so a later run downloads it again.

    Raises:
        DownloadError: for a ``manual`` entry with no mirror and no URL, the message gives the
            entry's instructions and where to put the file; with ``SEGBENCH_OFFLINE=1`` and no
            mirror (and no file at ``dest`` yet), it says which variable or key to set;
            otherwise see :func:`fetch`.
        ChecksumError: see :func:`fetch`.
    """
    src = entry.file(file)
    urls = candidate_urls(src.name, src.urls, mirror, entry.id)
    dest = Path(dest)
    manual = entry.access == "manual" and not mirror and not src.urls
    if offline() and not mirror and not manual and not dest.is_file():
        raise DownloadError(
            f"{dest.name} (dataset {entry.id!r}): {OFFLINE_ENV}=1 forbids downloading from the "
            f"official URLs, but no mirror is set. Set {MIRROR_ENV} (or download.mirror in the "
            f"study config, or --mirror on the command line) to a folder or base URL holding "
            f"{entry.id}/{src.name} or {src.name}, or put the file at {dest}, or unset "
            f"{OFFLINE_ENV}."
        )
    if not dest.is_file() and (not urls or manual):
        raise DownloadError(
            f"dataset {entry.id!r} is a manual download: {entry.instructions.strip()} "
            f"Put the file {src.name!r} at {dest} (or set download.mirror / SEGBENCH_MIRROR to a "
            "folder or URL that holds it), then run the workflow again."
        )
    return fetch(
        urls,
        dest,
        sha256=src.sha256,
        size=src.size,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        validate=check_archive if src.extract and src.sha256 is None else None,
    )
