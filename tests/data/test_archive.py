"""Safe extraction: zip and tar, top-folder stripping, and refusal of malicious or corrupt
archives without leaving anything behind."""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from datahelpers import tar_add_bytes

from segbench.data.archive import (
    ArchiveError,
    UnsafeArchiveError,
    archive_kind,
    list_members,
    safe_extract,
)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _zip_symlink(path: Path, name: str, target: str, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in (extra or {}).items():
            zf.writestr(n, d)
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return path


def _tar(path: Path, build) -> Path:  # noqa: ANN001
    with tarfile.open(path, "w:gz") as tf:
        build(tf)
    return path


def _assert_clean(dest: Path) -> None:
    """Nothing at dest and no temporary extraction folder next to it."""
    assert not dest.exists()
    leftovers = [p.name for p in dest.parent.iterdir() if p.name.startswith(f".{dest.name}.")]
    assert leftovers == []


def test_zip_strips_single_top_folder(tmp_path: Path) -> None:
    arc = _zip(tmp_path / "a.zip", {"Top/x.txt": b"x", "Top/sub/y.txt": b"y", "__MACOSX/Top/._x.txt": b"j"})
    written = safe_extract(arc, tmp_path / "out")
    assert written == ["sub/y.txt", "x.txt"]
    assert (tmp_path / "out" / "x.txt").read_bytes() == b"x"
    assert not (tmp_path / "out" / "__MACOSX").exists()


def test_flat_zip_is_not_stripped_and_explicit_strip_works(tmp_path: Path) -> None:
    arc = _zip(tmp_path / "a.zip", {"a.txt": b"a", "b/c.txt": b"c"})
    assert safe_extract(arc, tmp_path / "o1") == ["a.txt", "b/c.txt"]
    arc2 = _zip(tmp_path / "b.zip", {"r/Top/x.txt": b"x"})
    assert safe_extract(arc2, tmp_path / "o2", strip_components=2) == ["x.txt"]
    assert safe_extract(arc2, tmp_path / "o3", strip_components=0) == ["r/Top/x.txt"]


def test_tar_gz_with_internal_links(tmp_path: Path) -> None:
    def build(tf: tarfile.TarFile) -> None:
        tar_add_bytes(tf, "pkg/data/file.txt", b"content")
        link = tarfile.TarInfo("pkg/alias.txt")
        link.type = tarfile.SYMTYPE
        link.linkname = "data/file.txt"
        tf.addfile(link)
        hard = tarfile.TarInfo("pkg/hard.txt")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "pkg/data/file.txt"
        tf.addfile(hard)

    arc = _tar(tmp_path / "a.tar.gz", build)
    assert archive_kind(arc) == "tar"
    out = tmp_path / "out"
    written = safe_extract(arc, out)
    assert written == ["data/file.txt", "hard.txt"]
    assert (out / "alias.txt").is_symlink() and (out / "alias.txt").read_bytes() == b"content"
    assert (out / "hard.txt").read_bytes() == b"content"


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "a/../../evil", "C:/evil"])
def test_zip_refuses_absolute_and_dotdot(tmp_path: Path, name: str) -> None:
    arc = tmp_path / "bad.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("ok.txt", b"fine")
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # ZipInfo() would sanitise it; real malicious zips are not
        zf.writestr(info, b"evil")
    with pytest.raises(UnsafeArchiveError, match="refusing") as err:
        safe_extract(arc, tmp_path / "out")
    assert str(arc) in str(err.value)
    _assert_clean(tmp_path / "out")
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", ["/tmp/evil", "../evil", "x/../../evil"])
def test_tar_refuses_absolute_and_dotdot(tmp_path: Path, name: str) -> None:
    arc = _tar(tmp_path / "bad.tar.gz", lambda tf: (tar_add_bytes(tf, "ok", b"1"), tar_add_bytes(tf, name, b"evil")))
    with pytest.raises(UnsafeArchiveError, match="refusing"):
        safe_extract(arc, tmp_path / "out")
    _assert_clean(tmp_path / "out")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../outside", "../.."])
def test_tar_refuses_symlink_leaving_target(tmp_path: Path, target: str) -> None:
    def build(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("top/link")
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tf.addfile(info)
        tar_add_bytes(tf, "top/file", b"x")

    arc = _tar(tmp_path / "bad.tar.gz", build)
    with pytest.raises(UnsafeArchiveError, match="symlink"):
        safe_extract(arc, tmp_path / "out")
    _assert_clean(tmp_path / "out")


def test_tar_refuses_symlink_chain_escape(tmp_path: Path) -> None:
    # a/b -> .. stays inside, but a/b/c -> .. then resolves to the parent of the target.
    def build(tf: tarfile.TarFile) -> None:
        tar_add_bytes(tf, "r/a/keep", b"k")
        for name, link in (("r/a/b", ".."), ("r/a/b/c", "..")):
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = link
            tf.addfile(info)

    arc = _tar(tmp_path / "chain.tar.gz", build)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(arc, tmp_path / "out")
    _assert_clean(tmp_path / "out")


def test_tar_refuses_write_through_symlinked_dir(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()

    def build(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("r/d")
        info.type = tarfile.SYMTYPE
        info.linkname = "."
        tf.addfile(info)
        tar_add_bytes(tf, "r/d/x", b"ok")  # through an inside link: allowed

    arc = _tar(tmp_path / "ok.tar.gz", build)
    safe_extract(arc, tmp_path / "out")
    assert (tmp_path / "out" / "x").read_bytes() == b"ok"
    assert list(outside.iterdir()) == []


def test_tar_refuses_hardlink_outside_and_devices(tmp_path: Path) -> None:
    def hard(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("r/h")
        info.type = tarfile.LNKTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)

    with pytest.raises(UnsafeArchiveError):
        safe_extract(_tar(tmp_path / "h.tar.gz", hard), tmp_path / "o1")
    _assert_clean(tmp_path / "o1")

    def dev(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("r/dev")
        info.type = tarfile.CHRTYPE
        info.devmajor, info.devminor = 1, 3
        tf.addfile(info)

    with pytest.raises(UnsafeArchiveError, match="special"):
        safe_extract(_tar(tmp_path / "d.tar.gz", dev), tmp_path / "o2")
    _assert_clean(tmp_path / "o2")


@pytest.mark.parametrize("target", ["/etc/passwd", "../../../outside"])
def test_zip_refuses_symlink_leaving_target(tmp_path: Path, target: str) -> None:
    arc = _zip_symlink(tmp_path / "l.zip", "top/link", target, {"top/f.txt": b"f"})
    with pytest.raises(UnsafeArchiveError, match="symlink"):
        safe_extract(arc, tmp_path / "out")
    _assert_clean(tmp_path / "out")


def test_zip_inside_symlink_is_kept(tmp_path: Path) -> None:
    arc = _zip_symlink(tmp_path / "l.zip", "top/link", "f.txt", {"top/f.txt": b"f"})
    safe_extract(arc, tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "link") == "f.txt"


def test_duplicate_member_refused(tmp_path: Path) -> None:
    arc = tmp_path / "dup.zip"
    with zipfile.ZipFile(arc, "w") as zf:
        zf.writestr("a.txt", b"1")
        with pytest.warns(UserWarning):
            zf.writestr("a.txt", b"2")
    with pytest.raises(UnsafeArchiveError, match="twice"):
        safe_extract(arc, tmp_path / "out")
    _assert_clean(tmp_path / "out")


def test_corrupt_zip_names_file_and_leaves_nothing(tmp_path: Path) -> None:
    payload = os.urandom(50_000)
    arc = _zip(tmp_path / "c.zip", {"top/a.bin": payload, "top/b.bin": payload})
    raw = bytearray(arc.read_bytes())
    raw[200:240] = bytes(40)  # inside the first member's compressed data -> CRC/zlib error
    arc.write_bytes(bytes(raw))
    with pytest.raises(ArchiveError, match="corrupt") as err:
        safe_extract(arc, tmp_path / "out")
    assert str(arc) in str(err.value)
    _assert_clean(tmp_path / "out")


def test_truncated_tar_gz_and_non_archive(tmp_path: Path) -> None:
    arc = _tar(tmp_path / "t.tar.gz", lambda tf: tar_add_bytes(tf, "r/a.bin", os.urandom(100_000)))
    data = arc.read_bytes()
    arc.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError) as err:
        safe_extract(arc, tmp_path / "out")
    assert str(arc) in str(err.value)
    _assert_clean(tmp_path / "out")
    other = tmp_path / "x.zip"
    other.write_bytes(b"<html>not found</html>")
    with pytest.raises(ArchiveError, match="not a zip or tar"):
        safe_extract(other, tmp_path / "out2")
    _assert_clean(tmp_path / "out2")


def test_existing_destination_refused(tmp_path: Path) -> None:
    arc = _zip(tmp_path / "a.zip", {"x": b"1"})
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        safe_extract(arc, tmp_path / "out")


def test_list_members(tmp_path: Path) -> None:
    arc = _zip(tmp_path / "a.zip", {"T/x": b"1", "T/y/z": b"22"})
    assert [(m.name, m.kind, m.size) for m in list_members(arc)] == [("T/x", "file", 1), ("T/y/z", "file", 2)]
