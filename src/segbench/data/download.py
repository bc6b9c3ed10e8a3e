"""Resumable, retried, checksum-verified downloads (stdlib only).

:func:`fetch` streams a URL (``http(s)://``, ``file://`` or a plain local path) into
``<dest>.part`` next to the destination, resuming an interrupted transfer with an HTTP
``Range`` request, retrying transient failures with exponential back-off, then checks the size
and sha256 and only then renames the ``.part`` file to ``dest``. So ``dest`` exists only when
complete and verified:

- a network failure keeps ``<dest>.part`` (clearly named as partial) so the next call resumes;
- a checksum or size mismatch deletes ``<dest>.part`` and raises :class:`ChecksumError`
  naming the file, the URL and both hashes.

:func:`candidate_urls` puts a local mirror (a folder or a base URL, for air-gapped clusters)
before the official URLs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.data.archive import safe_extract
from segbench.data.manifest import (
    CHUNK,
    ManifestError,
    compute_manifest,
    manifest_digest,
    read_manifest,
    sha256_file,
    verify_manifest,
    write_manifest,
)

if TYPE_CHECKING:
    from segbench.data.registry import DatasetEntry

log = logging.getLogger(__name__)

USER_AGENT = "segbench-download/0.1 (+https://github.com/; research data fetcher)"
RETRYABLE_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
"""HTTP status codes worth retrying; other 4xx errors move on to the next URL at once."""

DOWNLOAD_FILE = "data/downloads/{dataset}/{file}"
"""Where a verified download lives (workflow-relative path template)."""

RAW_DIR = "data/raw/{dataset}"
"""Where a dataset's verified, extracted content lives (workflow-relative path template)."""


class DownloadError(RuntimeError):
    """A file could not be fetched from any of its URLs."""


class ChecksumError(DownloadError):
    """A fetched file does not have the expected sha256 or size (nothing is kept)."""


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
    unless the environment variable ``SEGBENCH_OFFLINE`` is ``1``.

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
    if not (mirror and os.environ.get("SEGBENCH_OFFLINE") == "1"):
        out.extend(urls)
    return out


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

    Returns:
        A :class:`FetchResult`. If ``dest`` already exists and matches ``sha256`` (when given),
        nothing is fetched.

    Raises:
        ChecksumError: the downloaded bytes do not match ``sha256``/``size``; the message names
            the file, the URL and both hashes; ``<dest>.part`` is removed.
        DownloadError: no URL worked; ``<dest>.part`` is kept so a later call resumes.
    """
    urls = [url_or_urls] if isinstance(url_or_urls, str) else list(url_or_urls)
    if not urls:
        raise DownloadError(f"{dest}: no URL to download from")
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
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors: list[str] = []
    for url in urls:
        try:
            return _fetch_one(url, dest, part, sha256, size, retries, timeout, backoff, progress)
        except ChecksumError:
            raise
        except DownloadError as err:
            errors.append(str(err))
            log.warning("%s", err)
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

    Raises:
        DownloadError: for a ``manual`` entry with no mirror and no URL, the message gives the
            entry's instructions and where to put the file; otherwise see :func:`fetch`.
        ChecksumError: see :func:`fetch`.
    """
    src = entry.file(file)
    urls = candidate_urls(src.name, src.urls, mirror, entry.id)
    dest = Path(dest)
    if not urls or (entry.access == "manual" and not mirror and not src.urls):
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
    )


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
        ArchiveError / UnsafeArchiveError: corrupt or malicious archive.
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
                safe_extract(path, sub, strip_components=f.strip_components)
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


# ----------------------------------------------------------------------------- workflow wiring


class WorkflowData:
    """What workflow/rules/download.smk asks about the registry, in one testable place.

    Args:
        config: the Snakemake config. Keys read: ``download.registry`` (default
            ``config/datasets.yaml``; relative to the working directory, else to ``base``) and ``datasets`` (entries with ``source: registry`` and an
            optional ``registry_id`` map a prepared name to a registry entry).
        base: the workflow's root, where a relative registry path missing from the working
            directory is looked up.
    """

    def __init__(self, config: Mapping[str, object], base: str | Path | None = None) -> None:
        from segbench.data.registry import DEFAULT_REGISTRY, load_registry

        dl = config.get("download") or {}
        if not isinstance(dl, Mapping):
            raise ValueError(f"config key 'download' must be a mapping, got {dl!r}")
        registry = Path(str(dl.get("registry", DEFAULT_REGISTRY)))
        # ``snakemake --directory elsewhere``: a relative registry path missing from the working
        # directory is the workflow's own (``base``: the repository root).
        fallback = Path(base) / registry if base is not None else None
        if not registry.exists() and fallback is not None and fallback.exists():
            registry = fallback
        self.registry = load_registry(str(registry))
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
        return [DOWNLOAD_FILE.format(dataset=entry.id, file=f.name) for f in entry.files]

    def download_params(self, raw: str, file: str) -> dict[str, object]:
        """Tracked parameters of one download (a changed URL list or checksum re-runs it)."""
        src = self.registry[raw].file(file)
        return {"urls": list(src.urls), "sha256": src.sha256, "size": src.size}

    def extract_params(self, raw: str) -> dict[str, object]:
        """Tracked parameters of an extraction: the files and the committed manifest's digest."""
        from segbench.data.registry import default_manifest_path

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
        return RAW_DIR.format(dataset=entry.raw_id)

    def prepare_params(self, dataset: str) -> dict[str, object]:
        """Tracked parameters of a preparation (classes, label map, recipe)."""
        entry = self.registry[self.registry_id(dataset)]
        return {
            "registry_id": entry.id,
            "classes": list(entry.classes),
            "label_map": dict(entry.label_map),
            "recipe": dict(entry.recipe or {}),
        }
