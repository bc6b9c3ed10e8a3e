"""Helpers for the data tests: a local HTTP server with Range support and fault injection,
and builders for tiny image/archive fixtures (imported by conftest.py and the test modules;
a distinct module name so it never clashes with other folders' conftest modules).

The server binds 127.0.0.1 on an ephemeral port; nothing else is contacted.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "datasets"
VENV_BIN = REPO / ".venv" / "bin"
TEST_SNAKEFILE = Path(__file__).resolve().parent / "workflow" / "Snakefile"


@dataclass
class ServerState:
    """What the server serves and what it saw."""

    root: Path
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    """(path, Range header) of every GET."""
    truncate_once: dict[str, int] = field(default_factory=dict)
    """path -> byte count: the next GET of path sends the full Content-Length but only this many
    bytes, then drops the connection."""
    fail_status: dict[str, list[int]] = field(default_factory=dict)
    """path -> status codes to answer (one per GET) before serving normally."""
    ignore_range: set[str] = field(default_factory=set)
    """paths for which Range headers are ignored (200 + whole file)."""


class _Handler(BaseHTTPRequestHandler):
    state: ServerState  # set on the subclass made per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass

    def do_GET(self) -> None:  # noqa: N802 (stdlib name)
        st = self.state
        path = self.path.split("?", 1)[0]
        rng = self.headers.get("Range")
        st.requests.append((path, rng))
        from urllib.parse import unquote

        rel = unquote(path).lstrip("/")
        codes = st.fail_status.get(path)
        if codes:
            code = codes.pop(0)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        full = (st.root / rel).resolve()
        if not str(full).startswith(str(st.root.resolve())) or not full.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            return
        data = full.read_bytes()
        total = len(data)
        start = 0
        if rng and path not in st.ignore_range:
            spec = rng.split("=", 1)[1]
            first, _, last = spec.partition("-")
            start = int(first)
            end = int(last) if last else total - 1
            if start >= total:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{total}")
                self.send_header("Content-Length", "0")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                return
            body = data[start : end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{total}")
        else:
            body = data
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Connection", "close")
        self.end_headers()
        cut = st.truncate_once.pop(path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)
        self.close_connection = True


@dataclass
class LocalServer:
    """A running server: ``url`` is ``http://127.0.0.1:<port>``; files live under ``root``."""

    url: str
    state: ServerState

    @property
    def root(self) -> Path:
        return self.state.root

    def add(self, rel: str, data: bytes) -> str:
        """Serve ``data`` at ``/<rel>``; return its URL."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"{self.url}/{rel}"


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    """Serve ``tmp_path/www`` on 127.0.0.1 (ephemeral port) for the duration of a test."""
    root = tmp_path / "www"
    root.mkdir()
    state = ServerState(root=root)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield LocalServer(f"http://127.0.0.1:{server.server_address[1]}", state)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ----------------------------------------------------------------------------- fixtures data


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def write_pairs(
    raw: Path, pairs: list[tuple[np.ndarray, np.ndarray]], mask_name: str = "{k:02d}.png"
) -> None:
    """A ``paired_2d`` fixture: pair ``k`` as ``raw/img/{k:02d}.tif`` and ``raw/lab/<mask_name>``
    (``mask_name`` formatted with ``k``)."""
    (raw / "img").mkdir(parents=True, exist_ok=True)
    (raw / "lab").mkdir(exist_ok=True)
    for k, (img, lab) in enumerate(pairs):
        Image.fromarray(img).save(raw / "img" / f"{k:02d}.tif")
        Image.fromarray(lab).save(raw / "lab" / mask_name.format(k=k))


def make_chase_like(root: Path, children: int = 3, size: tuple[int, int] = (40, 48)) -> None:
    """Write a CHASE-DB1-shaped folder: Image_NN{L,R}.jpg + Image_NN{L,R}_1stHO.png."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for c in range(1, children + 1):
        for eye in "LR":
            img = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
            Image.fromarray(img).save(root / f"Image_{c:02d}{eye}.jpg", quality=95)
            mask = np.zeros(size, dtype=np.uint8)
            mask[5 + c : 15 + c, 10:20] = 255
            Image.fromarray(mask).save(root / f"Image_{c:02d}{eye}_1stHO.png")


def zip_dir(
    src: Path, dest: Path, prefix: str = "", level: int = 1, skip: tuple[str, ...] = ()
) -> Path:
    """Zip the files under ``src`` into ``dest`` with member names ``prefix + relpath``,
    leaving out top-level files named in ``skip``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for p in sorted(src.rglob("*")):
            if p.is_file() and not (p.parent == src and p.name in skip):
                zf.write(p, prefix + p.relative_to(src).as_posix())
    return dest


def tar_add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def run_cmd(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command with the repo's venv first on PATH; return the completed process."""
    full_env = dict(os.environ)
    full_env["PATH"] = f"{VENV_BIN}{os.pathsep}{full_env.get('PATH', '')}"
    full_env.setdefault("DVC_NO_ANALYTICS", "1")
    full_env.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def snakemake_cmd(workdir: Path, configfile: Path, *targets: str, extra: tuple[str, ...] = ()) -> list[str]:
    """The test Snakefile (which includes workflow/rules/download.smk) run in ``workdir``."""
    exe = VENV_BIN / "snakemake"
    if not exe.exists():
        pytest.skip(f"{exe} not found (make venv)")
    return [
        str(exe), "-s", str(TEST_SNAKEFILE), "-d", str(workdir), "--configfile", str(configfile),
        "--cores", "1", "--nolock", *extra, *targets,
    ]


def shared_dataset(name: str) -> Path:
    """Path of a real dataset copy under ../shared/datasets, or skip the test saying why."""
    path = SHARED / name
    if not (path / "SHA256SUMS").is_file():
        pytest.skip(f"real dataset copy {path} is absent (needs ../shared/datasets/{name})")
    return path


TINY_RECIPE = {
    "name": "paired_2d",
    "params": {
        "sets": [{
            "images": "**/Image_*.jpg",
            "regex": r"Image_(?P<child>\d\d)(?P<eye>[LR])\.jpg$",
            "mask": "{dir}/Image_{child}{eye}_1stHO.png",
            "id": "tiny_{child}{eye}",
            "group": "child_{child}",
        }],
        "size": [32, 32],
        "count": 6,
    },
}


def tiny_entry(url: str, sha256: str | None, recipe: bool = True) -> dict:
    """A registry entry (YAML mapping) for a CHASE-like fixture archive served at ``url``."""
    return {
        "title": "tiny CHASE-like fixture", "access": "download", "licence": "test fixture",
        "citation": "none", "classes": ["background", "vessel"], "label_map": {"threshold": 128},
        "files": [{"name": url.rsplit("/", 1)[1], "urls": [url], "sha256": sha256}],
        "recipe": TINY_RECIPE if recipe else None,
    }


def build_tiny_archive(tmp: Path) -> bytes:
    """A zip of a 3-child CHASE-like folder under a top folder ``CHASE/``."""
    make_chase_like(tmp / "tiny_src", children=3)
    return zip_dir(tmp / "tiny_src", tmp / "tiny.zip", prefix="CHASE/").read_bytes()
