"""Downloads over a real HTTP server on 127.0.0.1: resume, retry, verification, mirrors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from datahelpers import LocalServer, zip_dir

from segbench.data.extract import extract_dataset
from segbench.data.fetch import (
    ChecksumError,
    DownloadError,
    candidate_urls,
    fetch,
    fetch_dataset_file,
)
from segbench.data.manifest import ManifestError, compute_manifest, write_manifest
from segbench.data.registry import DatasetEntry, SourceFile

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # > 3 read chunks
SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _no_leftovers(dest: Path) -> None:
    assert not dest.exists()
    assert not dest.with_name(dest.name + ".part").exists()


def test_plain_download_is_verified_then_renamed(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("files/a.bin", PAYLOAD)
    dest = tmp_path / "dl" / "a.bin"
    res = fetch(url, dest, sha256=SHA, size=len(PAYLOAD), backoff=0)
    assert dest.read_bytes() == PAYLOAD and res.sha256 == SHA and res.attempts == 1
    assert not dest.with_name("a.bin.part").exists()
    # Present and matching: nothing fetched again.
    n = len(http_server.state.requests)
    assert fetch(url, dest, sha256=SHA).attempts == 0
    assert len(http_server.state.requests) == n


def test_truncated_transfer_resumes_with_range(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    http_server.state.truncate_once["/a.bin"] = 1_000_000
    dest = tmp_path / "a.bin"
    res = fetch(url, dest, sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert res.attempts == 2
    assert http_server.state.requests == [("/a.bin", None), ("/a.bin", "bytes=1000000-")]


def test_existing_part_file_resumes(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(PAYLOAD[:777])
    res = fetch(url, dest, sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD and res.resumed_from == 777
    assert http_server.state.requests == [("/a.bin", "bytes=777-")]


def test_complete_part_file_416_is_verified(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(PAYLOAD)
    fetch(url, dest, sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    http_server.state.ignore_range.add("/a.bin")
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(b"garbage-prefix")
    fetch(url, dest, sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD


def test_wrong_checksum_fails_cleanly(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    wrong = "0" * 64
    dest = tmp_path / "a.bin"
    with pytest.raises(ChecksumError) as err:
        fetch(url, dest, sha256=wrong, backoff=0)
    msg = str(err.value)
    assert "a.bin" in msg and wrong in msg and SHA in msg and url in msg
    _no_leftovers(dest)


def test_wrong_size_fails_cleanly(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    dest = tmp_path / "a.bin"
    with pytest.raises(ChecksumError, match=f"expected 5 bytes, got {len(PAYLOAD)}"):
        fetch(url, dest, size=5, backoff=0)
    _no_leftovers(dest)


def test_stale_part_is_discarded_once(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    dest = tmp_path / "a.bin"
    dest.with_name("a.bin.part").write_bytes(b"X" * 1000)  # wrong bytes, right offset semantics
    fetch(url, dest, sha256=SHA, backoff=0)
    assert dest.read_bytes() == PAYLOAD
    assert http_server.state.requests == [("/a.bin", "bytes=1000-"), ("/a.bin", None)]


def test_transient_errors_are_retried(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    http_server.state.fail_status["/a.bin"] = [503, 500]
    res = fetch(url, tmp_path / "a.bin", sha256=SHA, backoff=0)
    assert res.attempts == 3


def test_404_falls_through_to_next_url_and_all_failing_raises(http_server: LocalServer, tmp_path: Path) -> None:
    good = http_server.add("real/a.bin", PAYLOAD)
    missing = f"{http_server.url}/mirror/a.bin"
    res = fetch([missing, good], tmp_path / "a.bin", sha256=SHA, backoff=0)
    assert res.url == good
    with pytest.raises(DownloadError, match="could not be downloaded from any of 2 URL"):
        fetch([missing, f"{http_server.url}/nope"], tmp_path / "b.bin", backoff=0)


def test_giving_up_keeps_part_for_later_resume(http_server: LocalServer, tmp_path: Path) -> None:
    url = http_server.add("a.bin", PAYLOAD)
    http_server.state.truncate_once["/a.bin"] = 500_000
    http_server.state.fail_status["/a.bin"] = []
    dest = tmp_path / "a.bin"
    # retries=0: the truncated first attempt is all we get.
    with pytest.raises(DownloadError, match="partial data kept"):
        fetch(url, dest, sha256=SHA, retries=0, backoff=0)
    assert dest.with_name("a.bin.part").stat().st_size == 500_000 and not dest.exists()
    res = fetch(url, dest, sha256=SHA, backoff=0)
    assert res.resumed_from == 500_000 and dest.read_bytes() == PAYLOAD


def test_local_path_and_file_url(tmp_path: Path) -> None:
    src = tmp_path / "mirror" / "a.bin"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    fetch(str(src), tmp_path / "x" / "a.bin", sha256=SHA)
    fetch(src.as_uri(), tmp_path / "y" / "a.bin", sha256=SHA)
    assert (tmp_path / "y" / "a.bin").read_bytes() == PAYLOAD


def test_candidate_urls_put_mirror_first(monkeypatch: pytest.MonkeyPatch) -> None:
    official = ["https://example.org/a.zip"]
    assert candidate_urls("a.zip", official) == official
    assert candidate_urls("a b.zip", official, "http://127.0.0.1:9/m/", "ds") == [
        "http://127.0.0.1:9/m/ds/a%20b.zip", "http://127.0.0.1:9/m/a%20b.zip", *official,
    ]
    assert candidate_urls("a.zip", official, "/srv/mirror", "ds")[:2] == ["/srv/mirror/ds/a.zip", "/srv/mirror/a.zip"]
    monkeypatch.setenv("SEGBENCH_OFFLINE", "1")
    assert candidate_urls("a.zip", official, "/srv/mirror", "ds") == ["/srv/mirror/ds/a.zip", "/srv/mirror/a.zip"]


def _entry(**kw) -> DatasetEntry:  # noqa: ANN003
    base = dict(id="tiny", title="t", access="download", licence="l", citation="c", classes=("bg", "fg"))
    base.update(kw)
    return DatasetEntry(**base)


def test_manual_entry_without_mirror_explains(tmp_path: Path) -> None:
    e = _entry(access="manual", instructions="Ask the authors nicely.", files=(SourceFile("x.zip"),))
    with pytest.raises(DownloadError) as err:
        fetch_dataset_file(e, "x.zip", tmp_path / "x.zip")
    assert "Ask the authors nicely." in str(err.value) and "x.zip" in str(err.value)


def test_manual_entry_from_mirror_folder(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "tiny"
    mirror.mkdir(parents=True)
    (mirror / "x.bin").write_bytes(PAYLOAD)
    e = _entry(access="manual", instructions="i", files=(SourceFile("x.bin", sha256=SHA),))
    fetch_dataset_file(e, "x.bin", tmp_path / "dl" / "x.bin", mirror=str(tmp_path / "mirror"))
    assert (tmp_path / "dl" / "x.bin").read_bytes() == PAYLOAD


def test_extract_dataset_verifies_manifest_atomically(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "sub").mkdir(parents=True)
    (content / "sub" / "a.txt").write_text("a")
    (content / "b.txt").write_text("b")
    arc = zip_dir(content, tmp_path / "dl" / "t.zip", prefix="Top/")
    manifest = tmp_path / "m.sha256"
    write_manifest(manifest, compute_manifest(content))
    e = _entry(files=(SourceFile("t.zip", urls=("x",), extract=True),))
    rep = extract_dataset(e, {"t.zip": arc}, tmp_path / "raw" / "tiny", manifest=manifest)
    assert rep["pinned"] and rep["files"] == 2
    assert (tmp_path / "raw" / "tiny" / "sub" / "a.txt").read_text() == "a"

    (content / "b.txt").write_text("tampered")
    arc2 = zip_dir(content, tmp_path / "dl" / "t2.zip", prefix="Top/")
    e2 = _entry(files=(SourceFile("t2.zip", urls=("x",), extract=True),))
    with pytest.raises(ManifestError, match="b.txt: expected sha256"):
        extract_dataset(e2, {"t2.zip": arc2}, tmp_path / "raw" / "tiny2", manifest=manifest)
    assert not (tmp_path / "raw" / "tiny2").exists()
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["tiny"]


def test_extract_dataset_rechecks_archive_checksum(tmp_path: Path) -> None:
    arc = tmp_path / "t.zip"
    zip_dir(Path(__file__).parent / "workflow", arc)
    e = _entry(files=(SourceFile("t.zip", urls=("x",), sha256="1" * 64, extract=True),))
    with pytest.raises(ChecksumError, match="expected sha256 1111"):
        extract_dataset(e, {"t.zip": arc}, tmp_path / "raw", manifest=None)
    assert not (tmp_path / "raw").exists()


def test_unpinned_content_can_be_refused(tmp_path: Path) -> None:
    arc = zip_dir(Path(__file__).parent / "workflow", tmp_path / "t.zip")
    e = _entry(files=(SourceFile("t.zip", urls=("x",), extract=True),))
    with pytest.raises(ManifestError, match="no committed manifest"):
        extract_dataset(e, {"t.zip": arc}, tmp_path / "raw", manifest=tmp_path / "none.sha256",
                        allow_unpinned=False)
    assert not (tmp_path / "raw").exists()


def test_folder_only_manual_entry_explains(tmp_path: Path) -> None:
    e = _entry(access="manual", instructions="Run their script and move data/ here.")
    with pytest.raises(DownloadError, match="Run their script and move data/ here.") as err:
        extract_dataset(e, {}, tmp_path / "raw" / "tiny", manifest=None)
    assert str(tmp_path / "raw" / "tiny") in str(err.value)
    assert not (tmp_path / "raw").exists()
