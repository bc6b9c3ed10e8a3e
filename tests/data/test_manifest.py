"""Per-file sha256 manifests: format (GNU sha256sum compatible), verification, messages."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from segbench.data.manifest import (
    ManifestError,
    compute_manifest,
    manifest_digest,
    parse_manifest,
    read_manifest,
    verify_manifest,
    write_manifest,
)


def _tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"alpha", "sub/b.bin": bytes(range(256)), "sub/deeper/c": b""}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / ".DS_Store").write_bytes(b"junk")
    return files


def test_compute_matches_hashlib_and_skips_litter(tmp_path: Path) -> None:
    files = _tree(tmp_path)
    m = compute_manifest(tmp_path)
    assert m == {rel: hashlib.sha256(data).hexdigest() for rel, data in sorted(files.items())}
    assert list(m) == sorted(m)


def test_roundtrip_and_sha256sum_compatibility(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    _tree(root)
    out = tmp_path / "m.sha256"
    write_manifest(out, compute_manifest(root))
    assert read_manifest(out) == compute_manifest(root)
    if shutil.which("sha256sum"):
        # The committed format is what `sha256sum -c` reads (paths relative to the folder).
        res = subprocess.run(["sha256sum", "-c", "--quiet", str(out)], cwd=root, capture_output=True)
        assert res.returncode == 0, res.stdout + res.stderr


def test_parse_accepts_dot_slash_and_binary_marker() -> None:
    h = "a" * 64
    assert parse_manifest(f"{h}  ./x/y.png\n{h} *z.bin\n# comment\n\n") == {"x/y.png": h, "z.bin": h}


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("nothex  a", "not a sha256"),
        ("a" * 64 + "  /abs", "must be relative"),
        ("a" * 64 + "  x/../y", "must be relative"),
        ("a" * 64, "expected '<sha256>  <path>'"),
    ],
)
def test_parse_rejects_malformed(line: str, fragment: str) -> None:
    with pytest.raises(ManifestError, match="m.sha256:1") as err:
        parse_manifest(line + "\n", where="m.sha256")
    assert fragment in str(err.value)


def test_parse_rejects_duplicates() -> None:
    h = "b" * 64
    with pytest.raises(ManifestError, match="listed twice"):
        parse_manifest(f"{h}  a\n{h}  a\n")


def test_verify_reports_both_hashes_and_missing(tmp_path: Path) -> None:
    _tree(tmp_path)
    expected = compute_manifest(tmp_path)
    good = expected["a.txt"]
    (tmp_path / "a.txt").write_bytes(b"tampered")
    bad = hashlib.sha256(b"tampered").hexdigest()
    (tmp_path / "sub" / "b.bin").unlink()
    with pytest.raises(ManifestError) as err:
        verify_manifest(tmp_path, expected, manifest_name="config/manifests/x.sha256")
    msg = str(err.value)
    assert "config/manifests/x.sha256" in msg and str(tmp_path) in msg
    assert f"a.txt: expected sha256 {good}, got {bad}" in msg
    assert "sub/b.bin: missing" in msg


def test_verify_extra_files_allowed_or_refused(tmp_path: Path) -> None:
    _tree(tmp_path)
    expected = compute_manifest(tmp_path)
    (tmp_path / "README.md").write_text("upstream readme")
    report = verify_manifest(tmp_path, expected)
    assert report.ok and report.extra == ["README.md"] and report.checked == 3
    with pytest.raises(ManifestError, match="README.md: not in the manifest"):
        verify_manifest(tmp_path, expected, allow_extra=False)


def test_digest_is_order_independent() -> None:
    a = {"x": "1" * 64, "y": "2" * 64}
    assert manifest_digest(a) == manifest_digest(dict(reversed(list(a.items()))))
