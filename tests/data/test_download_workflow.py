"""The real download -> verify -> extract -> prepare rules (workflow/rules/download.smk) run by
Snakemake as a subprocess, against archives served on 127.0.0.1.

- Real data: archives built from ../shared/datasets/{drosophila_vnc,drive} (skipped, saying
  so, when the copies are absent), fetched through ``download.mirror`` with the committed
  registry and manifests; the first transfer is cut short to exercise resuming.
- Fixtures made here: a good archive, one with a wrong pinned checksum, a malicious one and a
  corrupt one, all in one ``--keep-going`` run.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from datahelpers import (
    REPO,
    LocalServer,
    build_tiny_archive,
    run_cmd,
    shared_dataset,
    snakemake_cmd,
    tiny_entry,
    zip_dir,
)

from segbench.data.io import load_prepared

pytestmark = pytest.mark.slow

DROS_ZIP = "groundtruth-drosophila-vnc-4a5f051466d24d8dc1e855ab55658bb1b1dcd6bf.zip"
REAL = {
    # dataset: (shared copy, archive name, member prefix, shape, num classes)
    "drosophila_vnc": ("drosophila_vnc", DROS_ZIP, DROS_ZIP.removesuffix(".zip") + "/", (320, 1, 256, 256), 5),
    "drive": ("drive", "DRIVE.zip", "DRIVE/", (40, 3, 256, 256), 2),
}


@pytest.mark.parametrize("dataset", sorted(REAL))
def test_real_dataset_download_to_prepared(dataset: str, http_server: LocalServer, tmp_path: Path) -> None:
    shared, archive, prefix, shape, n_classes = REAL[dataset]
    src = shared_dataset(shared)
    zip_dir(src, http_server.root / dataset / archive, prefix=prefix, skip=("SHA256SUMS", "SOURCE.md"))
    served = f"/{dataset}/{archive}"
    http_server.state.truncate_once[served] = 4_000_000  # first transfer dropped after 4 MB
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"download": {
        "registry": str(REPO / "config" / "datasets.yaml"), "mirror": http_server.url,
        "backoff_s": 0, "allow_unpinned": False,
    }}))
    wd = tmp_path / "wd"
    target = f"data/prepared/{dataset}.npz"
    # SEGBENCH_OFFLINE=1: only the mirror is tried, never the official URL.
    res = run_cmd(snakemake_cmd(wd, cfg, target), cwd=tmp_path, env={"SEGBENCH_OFFLINE": "1"})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    # The cut transfer was resumed with a Range request, and nothing but the mirror was asked.
    assert (served, None) in http_server.state.requests
    assert (served, "bytes=4000000-") in http_server.state.requests
    assert all(path == served for path, _ in http_server.state.requests)
    assert (wd / "data" / "downloads" / dataset / archive).is_file()
    assert not list((wd / "data" / "downloads" / dataset).glob("*.part"))

    ds = load_prepared(wd / target)
    assert ds.images.shape == shape and ds.masks.shape == (shape[0], *shape[2:])
    assert ds.num_classes == n_classes and set(np.unique(ds.masks)) == set(range(n_classes))
    meta = json.loads((wd / f"data/prepared/{dataset}.json").read_text())
    assert meta["source"]["pinned"] is True and meta["source"]["manifest"].endswith(f"{dataset}.sha256")
    props = meta["class_proportions"]
    if dataset == "drosophila_vnc":
        assert len(set(ds.groups or [])) == 20 and ds.ids[0] == "stack1_00_r0c0"
        # membrane, glia/extracellular, mitochondria, synapse, intracellular
        assert props == pytest.approx([0.1716, 0.0285, 0.0538, 0.0056, 0.7406], abs=5e-4)
    else:
        assert ds.ids[0] == "drive_01" and ds.ids[-1] == "drive_40"
        assert props == pytest.approx([0.9129, 0.0871], abs=5e-4)
    assert (wd / "logs" / "extract_dataset" / f"{dataset}.sha256").is_file()

    # Up to date: a second run has nothing to do.
    again = run_cmd(snakemake_cmd(wd, cfg, target, extra=("-n",)), cwd=tmp_path, env={"SEGBENCH_OFFLINE": "1"})
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr


def test_fixture_failures_are_clean(http_server: LocalServer, tmp_path: Path) -> None:
    good = build_tiny_archive(tmp_path)
    sha_good = hashlib.sha256(good).hexdigest()
    u_ok = http_server.add("tiny_ok/tiny.zip", good)
    u_bad = http_server.add("tiny_badsum/tiny.zip", good)
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("CHASE/Image_01L.jpg", b"x")
        info = zipfile.ZipInfo("x")
        info.filename = "CHASE/../../escaped.txt"
        zf.writestr(info, b"pwned")
    u_evil = http_server.add("tiny_evil/tiny.zip", evil.read_bytes())
    corrupt = bytearray(good)
    corrupt[100:160] = bytes(60)
    u_corrupt = http_server.add("tiny_corrupt/tiny.zip", bytes(corrupt))
    wrong = "f" * 64
    registry = {"datasets": {
        "tiny_ok": tiny_entry(u_ok, sha_good),
        "tiny_badsum": tiny_entry(u_bad, wrong),
        "tiny_evil": tiny_entry(u_evil, hashlib.sha256(evil.read_bytes()).hexdigest()),
        "tiny_corrupt": tiny_entry(u_corrupt, hashlib.sha256(bytes(corrupt)).hexdigest()),
    }}
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(registry))
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump({"download": {
        "registry": str(tmp_path / "registry.yaml"), "backoff_s": 0, "retries": 1}}))
    wd = tmp_path / "wd"
    targets = [f"data/prepared/{d}.npz" for d in registry["datasets"]]
    res = run_cmd(snakemake_cmd(wd, cfg, *targets, extra=("--keep-going",)), cwd=tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]

    ds = load_prepared(wd / "data/prepared/tiny_ok.npz")
    assert ds.images.shape == (6, 3, 32, 32)
    assert ds.groups == ["child_01", "child_01", "child_02", "child_02", "child_03", "child_03"]

    # Wrong checksum: the message names the file and both hashes; nothing kept.
    log = (wd / "logs/download_file/tiny_badsum/tiny.zip.log").read_text()
    assert "tiny.zip" in log and wrong in log and sha_good in log
    assert not (wd / "data/downloads/tiny_badsum").exists() or not any((wd / "data/downloads/tiny_badsum").iterdir())

    # Malicious archive: refused, nothing extracted anywhere.
    log = (wd / "logs/extract_dataset/tiny_evil.log").read_text()
    assert "refusing" in log and "escaped.txt" in log
    assert not (wd / "data/raw/tiny_evil").exists()
    assert not list(tmp_path.rglob("escaped.txt"))

    # Corrupt archive (pinned to its own bytes, so the download passes): refused at extraction.
    log = (wd / "logs/extract_dataset/tiny_corrupt.log").read_text()
    assert "corrupt" in log
    assert not (wd / "data/raw/tiny_corrupt").exists()
    leftovers = [p.name for p in (wd / "data/raw").iterdir() if p.name.startswith(".")]
    assert leftovers == []
